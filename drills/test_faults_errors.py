"""Faults whose errors must be classified truthfully, and reports that survive failures
(issue 13, class 6): the machine failing is never a broken backup or a failed
verification; a cleanup never hides the first error; a drill run writes its report with
every problem found; an index is judged against the source's own figure; a copy without
backup_label, a gzip file cut short and a WAL segment damaged in its middle are named.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drills.test_faults import _free_port, catalog, failed, source_config, tmpfs
from fixtures.cli import Cli
from fixtures.wal_repository import branched_copy, reachable_config
from pgvdrill.cluster import Cluster
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.physical.lowlevel import low_level_backup
from pgvdrill.repository import Repository
from pgvdrill.repository.catalog import read_entries, sha256_of
from pgvdrill.wal.archiving import enable_archiving, switch_and_wait
from pgvdrill.wal.names import SEGMENT_RE

pytestmark = pytest.mark.local_server("faults are injected into local server processes, "
                                      "files and mounts")

ENVIRONMENT = 8  # EnvironmentFailure.exit_code: the machine failed, not the backup


def _reports(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text())
            for p in sorted((tmp_path / "reports").glob("*/report.json"))]


# -- the machine failing is not a broken backup ----------------------------------------------

def test_fault_disk_full_during_restore_physical_is_not_a_broken_backup(
        pgvdrill_cli: Cli, ops_config: Callable[..., Path], tmp_path: Path) -> None:
    """The restore target on a 2 MiB filesystem: the extraction fails with ENOSPC, which is
    the machine's fault: exit 8 saying so, never exit 4 "do not restore from this backup"
    (the backup is fine: a restore into a roomy directory works)."""
    config = ops_config()
    taken = pgvdrill_cli("backup", "physical", "--config", config)
    assert taken.returncode == 0, taken.stdout + taken.stderr

    with tmpfs(tmp_path / "small", "2m") as small:
        result = pgvdrill_cli("restore", "physical", "latest", "--config", config,
                              "--pgdata", small / "data")

    failed(result, ENVIRONMENT, "No space left on device", "EnvironmentFailure",
           "not the backup")
    assert "do not restore" not in result.stderr and "corrupt" not in result.stderr
    roomy = pgvdrill_cli("restore", "physical", "latest", "--config", config,
                         "--pgdata", tmp_path / "roomy")
    assert roomy.returncode == 0, roomy.stdout + roomy.stderr


def test_fault_unreachable_source_ends_the_dr_drill_with_a_named_error_and_a_report(
        pgvdrill_cli: Cli, tmp_path: Path) -> None:
    """`drill --config` with the source down was a traceback with exit 1 (the code for a
    failed verification) and an empty report directory."""
    info = f"host=127.0.0.1 port={_free_port()} user=backup dbname=vector_db connect_timeout=5"
    config = source_config(tmp_path / "pgvdrill.toml", tmp_path / "repo", info)

    result = pgvdrill_cli("drill", "--config", config, "--reports-dir", "reports")

    failed(result, 2, "cannot connect to source", "Connection refused",
           "hint: check the conninfo")
    (report,) = _reports(tmp_path)
    (aborted,) = report["drills"]
    assert aborted["ok"] is False and "cannot connect to source" in aborted["error"]
    assert "Connection refused" in aborted["environment"]


# -- a scratch server killed mid-drill ---------------------------------------------------------

TRIPWIRE = """
CREATE FUNCTION public.tripwire_fire() RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN  -- SIGKILL this server's postmaster (a backend's working directory is its data
       -- dir) and this backend (the shell's parent), so that the query fails at once
  EXECUTE 'COPY (SELECT 1) TO PROGRAM ''kill -KILL $(head -n 1 postmaster.pid) $PPID''';
END $$;
CREATE FUNCTION public.tripwire(source_port int, x int) RETURNS int
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN  -- fires in any server but the source, in a session with the DateStyle only the
       -- drill's verification sets (amcheck's heapallindexed pass evaluates it there)
  IF current_setting('port')::int <> source_port
     AND current_setting('DateStyle') = 'ISO, YMD' THEN
    PERFORM public.tripwire_fire();
  END IF;
  RETURN x;
END $$;
CREATE TABLE public.tripwire_rows (x int);
INSERT INTO public.tripwire_rows VALUES (1);
CREATE INDEX tripwire_idx ON public.tripwire_rows (public.tripwire({port}, x));
"""


def test_fault_dr_drill_scratch_server_killed_is_reported(
        pgvdrill_cli: Cli, cli_cache: Path, ops_config: Callable[..., Path],
        prod_source: Cluster, tmp_path: Path) -> None:
    """The DR drill's scratch server is SIGKILLed while the drill verifies the restored
    copy (deterministically: by an index expression amcheck evaluates there and only
    there). The run used to end in a traceback with an empty report directory; now the
    report holds the logical drill, failed, naming the lost server, and the exit code
    says the machine failed (8), not the backup (4) or the data (1)."""
    prod_source.query(TRIPWIRE.replace("{port}", str(prod_source.conninfo.port)), SOURCE_DB)
    config = ops_config()
    taken = pgvdrill_cli("backup", "logical", "--config", config)
    assert taken.returncode == 0, taken.stdout + taken.stderr

    result = pgvdrill_cli("drill", "--config", config, "--kinds", "logical",
                          "--cache-dir", cli_cache, "--reports-dir", "reports")

    assert result.returncode == ENVIRONMENT, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    (report,) = _reports(tmp_path)
    (logical,) = report["drills"]
    assert logical["ok"] is False and logical["kind"] == "logical"
    assert "server closed the connection" in logical["environment"], logical
    assert "amcheck" not in logical["error"], logical["error"]  # not blamed on the index
    assert "by the machine, not the backup" in result.stdout
    assert prod_source.query("SELECT count(*) FROM public.tripwire_rows", SOURCE_DB) == [(1,)]


# -- a DR drill whose restore fails keeps the WAL problems it found --------------------------

def test_fault_dr_drill_restore_failure_keeps_the_wal_problems(
        pgvdrill_cli: Cli, cli_cache: Path, ops_config: Callable[..., Path],
        prod_source: Cluster, reachable: Path, tmp_path: Path) -> None:
    """A base backup that cannot be restored (its base.tar cut short, the catalog entry
    rewritten to match, as a damaged disk copy would leave it) and a WAL archive with a
    segment missing after it: the report names both, not only the restore's error."""
    config, repo = reachable_config(ops_config, tmp_path, reachable)
    enable_archiving(prod_source, repo.wal)
    taken = pgvdrill_cli("backup", "physical", "--config", config)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    prod_source.query("CREATE TABLE after_backup (x int)")
    segments = []
    for _ in range(3):
        prod_source.query("INSERT INTO after_backup VALUES (1)")
        segments.append(switch_and_wait(prod_source, repo.wal))
    (repo.wal / segments[1]).unlink()
    [entry] = read_entries(repo)
    base = repo.backup_dir("physical", entry.id) / "base.tar"
    with base.open("r+b") as fh:
        fh.truncate(base.stat().st_size // 2)
    _match_entry(repo, entry.id, "base.tar")

    result = pgvdrill_cli("drill", "--config", config, "--kinds", "physical",
                          "--cache-dir", cli_cache, "--reports-dir", "reports")

    assert result.returncode == 1, result.stdout + result.stderr
    (report,) = _reports(tmp_path)
    (physical,) = report["drills"]
    assert physical["ok"] is False and "base.tar" in physical["error"]
    assert any(f"segment {segments[1]} is missing" in p for p in physical["problems"]), \
        physical["problems"]


def _match_entry(repo: Repository, backup_id: str, name: str) -> None:
    """Rewrite the catalog entry's size and sha256 of file `name` to the file's now."""
    path = repo.entry_path(backup_id)
    data = json.loads(path.read_text())
    file = repo.backup_dir("physical", backup_id) / name
    for listed in data["files"]:
        if listed["path"] == name:
            listed["bytes"] = file.stat().st_size
            listed["sha256"] = sha256_of(file)
    data["size_bytes"] = sum(int(f["bytes"]) for f in data["files"])
    path.write_text(json.dumps(data))


# -- a procedure whose archive copies all failed ---------------------------------------------

def test_fault_procedure_archive_command_that_copies_nothing_fails(
        pgvdrill_cli: Cli, cli_cache: Path, tmp_path: Path, ops_config: Callable[..., Path]
        ) -> None:
    """An archive_command whose every copy fails but which exits 0 (the `|| true` habit):
    PostgreSQL records each segment as archived and recycles it. The step was judged
    "works" from pg_stat_archiver alone; the archive is now looked at."""
    hides = {"name": "archive hides its failures", "kind": "physical",
             "archive_command": "cp %p {wal_dir}/no-such-dir/%f || true",
             "backup": "pg_basebackup -d {dsn} -D {backup} -Ft -X stream --checkpoint=fast",
             "restore": "tar -xf {backup}/base.tar -C {pgdata}"}
    config = ops_config(procedure=[hides])

    result = pgvdrill_cli("procedures", "--config", config, "--reports-dir", "reports",
                          "--cache-dir", cli_cache)

    assert result.returncode == 1, result.stdout + result.stderr
    steps = {s["step"]: s for s in _reports(tmp_path)[0]["procedures"]}
    assert steps["archive_command"]["verdict"] == "fails", steps["archive_command"]
    assert "holds no copy of it" in steps["archive_command"]["why"]
    assert steps["backup"]["verdict"] == "works"


# -- index quality judged against the source -------------------------------------------------

def test_fault_ground_truth_recall_is_judged_against_the_source(
        pgvdrill_cli: Cli, cli_cache: Path, tmp_path: Path) -> None:
    """Random 768-d vectors at ef_search 40: the HNSW index finds well under half of the
    true top-10 neighbours, in the source as in a perfect restore. The restored copy was
    failed against an absolute 0.9; it is judged against the source's own figure on the
    same queries, while exact search still must reproduce the ground truth."""
    result = pgvdrill_cli("drill", "--rows", "5000", "--dim", "768", "--dump", "custom-z1",
                          "--restore", "parallel-j2", "--cache-dir", cli_cache,
                          "--reports-dir", "reports", timeout=900)

    assert result.returncode == 0, result.stdout + result.stderr
    (report,) = _reports(tmp_path)
    (drill,) = report["drills"]
    (truth,) = [c for c in drill["verification"]["checks"] if c["name"] == "ground_truth"]
    details = truth["details"]
    assert details["exact_recall"] >= 0.99
    assert details["source_index_recall"] < 0.9  # the source fails an absolute 0.9 too
    assert details["index_recall"] >= details["source_index_recall"] - 0.15


# -- what a backup lacks is named --------------------------------------------------------------

def test_fault_low_level_copy_without_backup_label_is_named(
        prod_source: Cluster, pgvdrill_cli: Cli, tmp_path: Path) -> None:
    """A correct low-level copy and one copied without backup_label got the same message
    (pg_verifybackup: no backup_manifest). The one without the label is not a backup and
    is named for that; the other is said to have its label (pg_verifybackup cannot check
    either: exit 4 both)."""
    copy = tmp_path / "lowlevel"
    low_level_backup(prod_source, copy)

    with_label = pgvdrill_cli("verify-backup", copy)
    (copy / "backup_label").unlink()
    without = pgvdrill_cli("verify-backup", copy)

    failed(with_label, 4, "has a backup_label but no backup_manifest (a low-level backup")
    failed(without, 4, "has no backup_label", "is not a backup")
    assert "has no backup_label" not in with_label.stderr


# -- gzip read to its end; every archived WAL record (--deep) ---------------------------------

def test_fault_gzip_trailer_cut_from_base_backup_is_broken(
        pgvdrill_cli: Cli, ops_config: Callable[..., Path], tmp_path: Path) -> None:
    """base.tar.gz without its 8-byte gzip trailer (CRC-32, length): tar and
    pg_verifybackup stop before it and passed the backup; every gzip file is now read to
    its end. `verify-backup` names the file (exit 4)."""
    config = ops_config(physical={"format": "tar", "compress": "gzip"})
    taken = pgvdrill_cli("backup", "physical", "--config", config)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    (directory,) = (tmp_path / "repo" / "physical").iterdir()
    base = directory / "base.tar.gz"
    assert pgvdrill_cli("verify-backup", directory).returncode == 0
    with base.open("r+b") as fh:
        fh.truncate(base.stat().st_size - 8)

    result = pgvdrill_cli("verify-backup", directory)

    failed(result, 4, "base.tar.gz is not an intact gzip file")


def test_fault_wal_segment_zeroed_in_its_middle_fails_verify_deep(
        pgvdrill_cli: Cli, ops_config: Callable[..., Path], prod_source: Cluster,
        reachable: Path, tmp_path: Path) -> None:
    """A full archived segment with 64 KiB zeroed in its middle (its header intact): the
    segment checks pass it; `verify --deep` reads every record with pg_waldump, names the
    segment and prints what it cost."""
    config, repo = reachable_config(ops_config, tmp_path, reachable)
    enable_archiving(prod_source, repo.wal)
    taken = pgvdrill_cli("backup", "physical", "--config", config)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    prod_source.query("CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad "
                      "FROM generate_series(1, 150000) g", SOURCE_DB)  # > 2 segments
    switch_and_wait(prod_source, repo.wal)
    clean = pgvdrill_cli("verify", "--deep", "--config", config)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "deep: pg_waldump read" in clean.stdout and "every record reads" in clean.stdout
    names = sorted(p.name for p in repo.wal.iterdir() if SEGMENT_RE.fullmatch(p.name))
    damaged = repo.wal / names[-2]  # full of the filler's records
    data = bytearray(damaged.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 65536] = bytes(65536)
    damaged.write_bytes(bytes(data))

    result = pgvdrill_cli("verify", "--deep", "--config", config)

    assert result.returncode == 4, result.stdout + result.stderr
    assert f"WAL segment {damaged.name}: pg_waldump cannot read past a record" in result.stdout
    assert "deep: pg_waldump read" in result.stdout and "MiB, in" in result.stdout
    assert os.path.getsize(damaged) == 16 * 1024 * 1024
    assert catalog(repo.root) != []


def test_fault_wal_segment_zeroed_after_a_timeline_switch_fails_verify_deep(
        pgvdrill_cli: Cli, ops_config: Callable[..., Path], prod_source: Cluster,
        reachable: Path, tmp_path: Path,
        restore_backup: Callable[..., tuple[Cluster, float]]) -> None:
    """An archive holding a real promotion (timeline 1, then timeline 2 from a copy of the
    backup promoted at its end, archiving into the same wal/): `verify --deep` reads both
    timelines without calling the switch damage (timeline 1's segment 3 holds the switch,
    timeline 2 starts in its own copy of segment 3); 64 KiB zeroed in the middle of a full
    timeline-2 segment is named."""
    config, repo = reachable_config(ops_config, tmp_path, reachable)
    enable_archiving(prod_source, repo.wal)
    taken = pgvdrill_cli("backup", "physical", "--config", config)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    promoted = branched_copy(repo, restore_backup, "promoted")
    promoted.query("CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad "
                   "FROM generate_series(1, 150000) g", SOURCE_DB)  # > 2 segments
    switch_and_wait(promoted, repo.wal)
    promoted.stop()
    assert (repo.wal / "00000002.history").is_file()
    clean = pgvdrill_cli("verify", "--deep", "--config", config)
    # the branch itself is a problem of its own (the source is still on timeline 1)
    assert "deep: pg_waldump read 5 segment(s)" in clean.stdout, clean.stdout + clean.stderr
    assert "every record reads" in clean.stdout and "pg_waldump cannot" not in clean.stdout
    assert "pg_waldump cannot" not in clean.stderr and "Traceback" not in clean.stderr
    second = sorted(p.name for p in repo.wal.iterdir()
                    if SEGMENT_RE.fullmatch(p.name) and p.name.startswith("00000002"))
    damaged = repo.wal / second[-2]  # full of the filler's records, its successor archived
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2:len(data) // 2 + 65536] = bytes(65536)
    damaged.write_bytes(bytes(data))

    result = pgvdrill_cli("verify", "--deep", "--config", config)

    assert result.returncode == 4, result.stdout + result.stderr
    assert f"WAL segment {damaged.name}: pg_waldump cannot read past a record" in result.stdout


def test_fault_bench_stopped_by_a_full_disk_still_writes_its_report(
        pgvdrill_cli: Cli, cli_cache: Path, reachable: Path, tmp_path: Path) -> None:
    """`pgvdrill bench` with its scratch servers on a 2 MiB filesystem stops at the first
    copy of a cluster; its report directory held nothing, now its report says what stopped
    it and that the machine did."""
    with tmpfs(reachable / "small", "2m") as small:
        small.chmod(0o711)
        result = pgvdrill_cli("bench", "--sizes", "500x16", "--modes", "dump:custom-z1",
                              "--workdir", small, "--cache-dir", cli_cache,
                              "--reports-dir", "reports")

    failed(result, 3, "No space left on device")
    assert "FAILED: the run stopped; report:" in result.stdout, result.stdout
    (report,) = _reports(tmp_path)
    assert (report["source"], report["ok"]) == ("pgvdrill bench", False)
    assert "No space left on device" in report["aborted"]["environment"]
    assert any("No space left on device" in p for p in report["problems"])
    assert (tmp_path / "reports" / report["run_id"] / "report.md").is_file()


def test_fault_drill_stopped_by_a_full_disk_still_writes_its_report(
        pgvdrill_cli: Cli, cli_cache: Path, reachable: Path, tmp_path: Path) -> None:
    """Scratch servers on a 2 MiB filesystem: the run stops at the first copy of a cluster;
    its report directory held nothing, now its report says what stopped it and why."""
    with tmpfs(reachable / "small", "2m") as small:
        small.chmod(0o711)  # like /var/tmp: the server's OS user enters its own session dir
        result = pgvdrill_cli("drill", "--workdir", small, "--cache-dir", cli_cache,
                              "--reports-dir", "reports")

    failed(result, 3, "No space left on device")
    (report,) = _reports(tmp_path)
    (stopped,) = report["drills"]
    assert stopped["drill"] == "run:aborted" and report["ok"] is False
    assert "No space left on device" in stopped["environment"]
