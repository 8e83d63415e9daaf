"""The monthly DR drill of a real source, as an operator runs it: `pgvdrill backup`, then
`pgvdrill drill --config`; the source is only read."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fixtures.cli import Cli
from fixtures.ops import conninfo
from fixtures.wal_repository import reachable_config
from fixtures.writes import Writer
from pgvdrill import osuser
from pgvdrill.cluster import Cluster
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.repository.catalog import read_entries
from pgvdrill.verify import snapshot, verify
from pgvdrill.wal.archiving import enable_archiving, switch_and_wait
from pgvdrill.wal.names import Segment, parse_lsn


def _report(tmp_path: Path) -> dict[str, Any]:
    (path,) = (tmp_path / "reports").glob("*/report.json")
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def _verdicts(drill: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["status"] for v in drill["verdicts"]}


def test_dr_drill_of_the_newest_backups_of_each_kind(
        pgvdrill_cli: Cli, cli_cache: Path, ops_config: Callable[..., Path],
        prod_source: Cluster, tmp_path: Path) -> None:
    config = ops_config()
    for kind in ("logical", "physical"):
        taken = pgvdrill_cli("backup", kind, "--config", config)
        assert taken.returncode == 0, taken.stdout + taken.stderr
    with prod_source.connect(SOURCE_DB) as conn:
        before = snapshot(conn)

    result = pgvdrill_cli("drill", "--config", config, "--cache-dir", cli_cache,
                          "--reports-dir", "reports")

    assert result.returncode == 0, result.stdout + result.stderr
    report = _report(tmp_path)
    assert [(d["kind"], d["ok"]) for d in report["drills"]] == \
        [("logical", True), ("physical", True)]
    logical, physical = report["drills"]
    assert _verdicts(logical)["rto.logical"] == "pass"
    assert _verdicts(logical)["backup_age.logical"] == "pass"
    assert _verdicts(physical)["rto.physical"] == "pass"
    assert _verdicts(physical)["backup_age.physical"] == "pass"
    assert report["server"]["source"].endswith(f"/{SOURCE_DB}")
    with prod_source.connect(SOURCE_DB) as conn:  # read-only towards the source
        verify(before, conn).raise_for_problems()


def test_dr_drill_take_is_exact_while_the_source_is_written(
        pgvdrill_cli: Cli, cli_cache: Path, ops_config: Callable[..., Path],
        prod_source: Cluster, tmp_path: Path) -> None:
    """--take: the logical backup and the source snapshot share one exported snapshot, so
    rows committed meanwhile neither fail nor fool the comparison; the sequence feeding a
    table that is written (not held by any snapshot) is compared with the source's values
    read before and after pg_dump."""
    with Writer(conninfo(prod_source)) as writer:
        result = pgvdrill_cli("drill", "--config", ops_config(), "--take", "--kinds",
                              "logical", "--cache-dir", cli_cache, "--reports-dir", "reports")

    assert result.returncode == 0, result.stdout + result.stderr
    assert writer.commits > 10
    (drill,) = _report(tmp_path)["drills"]
    assert drill["ok"] is True and drill["kind"] == "logical"


def test_dr_drill_command_and_drill_config_run_the_same_drill(
        pgvdrill_cli: Cli, cli_cache: Path, ops_config: Callable[..., Path],
        tmp_path: Path) -> None:
    """`pgvdrill dr-drill` is the DR drill; `drill --config` still runs it, with one
    deprecation line on stderr naming dr-drill."""
    config = ops_config()
    taken = pgvdrill_cli("backup", "logical", "--config", config)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    options = ["--config", config, "--kinds", "logical", "--cache-dir", cli_cache,
               "--reports-dir", "reports"]

    new = pgvdrill_cli("dr-drill", *options)
    old = pgvdrill_cli("drill", *options)

    assert new.returncode == old.returncode == 0, new.stderr + old.stderr
    assert "deprecated" not in new.stderr
    [line] = [w for w in old.stderr.splitlines() if "deprecated" in w]
    assert "pgvdrill dr-drill" in line
    reports = sorted((tmp_path / "reports").glob("*/report.json"))
    assert len(reports) == 2
    for path in reports:
        [drill] = json.loads(path.read_text())["drills"]
        assert (drill["kind"], drill["ok"]) == ("logical", True)


def test_dr_drill_fails_on_a_corrupt_newest_backup_and_a_missing_kind(
        pgvdrill_cli: Cli, cli_cache: Path, ops_config: Callable[..., Path],
        tmp_path: Path) -> None:
    config = ops_config()
    taken = pgvdrill_cli("backup", "logical", "--config", config)
    assert taken.returncode == 0, taken.stderr
    (dump,) = (tmp_path / "repo" / "logical").glob("*/*.dump")
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))

    result = pgvdrill_cli("drill", "--config", config, "--cache-dir", cli_cache,
                          "--reports-dir", "reports")

    assert result.returncode == 1, result.stdout + result.stderr
    logical, physical = _report(tmp_path)["drills"]
    assert logical["ok"] is False and "changed (sha256 differs)" in logical["error"]
    assert _verdicts(logical)["rto.logical"] == "unknown"
    assert physical["ok"] is False and "no complete physical backup" in physical["error"]
    assert _verdicts(physical)["backup_age.physical"] == "unknown"


def test_dr_drill_fails_when_the_wal_archive_cannot_carry_recovery(
        pgvdrill_cli: Cli, cli_cache: Path, ops_config: Callable[..., Path],
        prod_source: Cluster, reachable: Path, tmp_path: Path) -> None:
    """The drill restores the base backup, replays the archive to its end and verifies;
    it fails when a record after the backup cannot be replayed (its segment's header
    intact), when a segment is missing, and when the source's archiving fails now,
    saying where each time."""
    config, repo = reachable_config(ops_config, tmp_path, reachable)
    enable_archiving(prod_source, repo.wal)
    taken = pgvdrill_cli("backup", "physical", "--config", config)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    prod_source.query("CREATE TABLE after_backup (x int)")
    for _ in range(2):  # two segments of WAL after the backup, archived
        prod_source.query("INSERT INTO after_backup VALUES (1)")
        switch_and_wait(prod_source, repo.wal)
    drill = ["drill", "--config", config, "--kinds", "physical", "--cache-dir", cli_cache,
             "--reports-dir", "reports"]

    def physical_problems() -> list[str]:
        result = pgvdrill_cli(*drill)
        assert result.returncode == 1, result.stdout + result.stderr
        reports = sorted((tmp_path / "reports").glob("*/report.json"))
        [physical] = json.loads(reports[-1].read_text())["drills"]
        assert physical["ok"] is False
        problems: list[str] = physical["problems"]
        return problems

    ok = pgvdrill_cli(*drill)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    [entry] = read_entries(repo)
    start = Segment.containing(parse_lsn(entry.start_lsn or ""), entry.timeline or 1)
    after = repo.wal / Segment(start.timeline, start.number + 1).name
    kept = after.read_bytes()
    after.write_bytes(kept[:64] + bytes(64) + kept[128:])  # its first record, not the header
    assert any(p.startswith("wal_replay: recovery through the WAL archive") and
               "stopped at" in p for p in physical_problems())
    after.unlink()  # and, independently, the source's archiving starts failing
    prod_source.configure(archive_command="/bin/false")
    prod_source.reload()
    prod_source.query("INSERT INTO after_backup VALUES (2)")
    failing = str(prod_source.query("SELECT pg_walfile_name(pg_switch_wal())")[0][0])
    deadline = time.monotonic() + 60
    while prod_source.query("SELECT last_failed_wal FROM pg_stat_archiver")[0][0] != failing:
        assert time.monotonic() < deadline, prod_source.server_log(20)
        time.sleep(0.2)
    problems = physical_problems()
    assert any(f"segment {after.name} is missing" in p for p in problems)
    assert any(f"is failing: {failing} failed at" in p for p in problems)
    after.write_bytes(kept)

    if os.geteuid() == 0:  # root's alone: the scratch server (another user) recovers from
        osuser.chown_tree(repo.wal, "root")  # the drill's own copy of it
        repo.wal.chmod(0o700)
        problems = physical_problems()
        assert problems and all("is failing" in p for p in problems), problems
