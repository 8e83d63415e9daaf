"""Attacks on the provider drills of issue 16 with real servers and real tools: a drill
that passes when the backup is broken, or that touches production. Each test names its
finding in /work/helpers/attack-findings-16.md (B<n>); a strict xfail is a finding not
fixed yet."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from drills.test_provider_command import _problems, _run
from fixtures.cli import Cli
from fixtures.ops import _toml
from fixtures.production import PROD_USER, Production, _give
from fixtures.provider_barman import BARMAN_BIN, SERVER, barman_for, barman_or_skip
from fixtures.provider_command import TeamBackups
from fixtures.provider_pgbackrest import Stanza, pgbackrest_stanza  # noqa: F401
from pgvdrill import config
from pgvdrill.backends import default_workdir
from pgvdrill.errors import RestoreError
from pgvdrill.providers.registry import make


def _with_source(config: Path, source: Production) -> Path:
    """`config` (a TeamBackups config) drilled against `source` instead of its own server."""
    conninfo, _ = source.conninfo("pgpass")
    lines = config.read_text().splitlines(keepends=True)
    config.write_text("".join(f"conninfo = {_toml(conninfo)}\n" if line.startswith("conninfo")
                              else line for line in lines))
    return config


def test_a_backup_of_another_server_fails_the_drill_of_the_source(
        production: Production, make_production: Any, pgvdrill_cli: Cli, cli_cache: Path,
        tmp_path: Path) -> None:
    """The team's job backs up staging (built from the same data) instead of production: the
    drill restores staging's backup, replays staging's WAL, and compares with production's
    rows. Production has no backup at all; the drill must say the backup is not its."""
    staging: Production = make_production()
    team = TeamBackups(tmp_path / "team", tmp_path / "team" / "backups", staging)
    team.backups.mkdir(parents=True)
    line = team.take("staging")
    staging.quiesce()
    team.index([line])
    config = _with_source(team.config(tmp_path), production)
    production.quiesce()
    ours = production.admin("SELECT system_identifier::text FROM pg_control_system()")[0][0]
    theirs = staging.admin("SELECT system_identifier::text FROM pg_control_system()")[0][0]
    assert ours != theirs

    code, output, report = _run(pgvdrill_cli, cli_cache, tmp_path, config)

    (drill,) = report["drills"]
    assert code != 0 and drill["ok"] is False, output
    assert "system identifier" in _problems(drill), _problems(drill)


def test_a_wal_gap_fails_even_when_the_archiver_statistics_were_reset(
        team_backups: TeamBackups, production: Production, pgvdrill_cli: Cli,
        cli_cache: Path, tmp_path: Path) -> None:
    """Writes after the backup (to the `postgres` database, which the drill does not
    compare), three segments, the middle one gone from the team's archive. A command
    provider cannot list its archive; a monitoring job reset the archiver's statistics
    (pg_stat_reset_shared('archiver'), as pg_stat_statements users do), so the source no
    longer says what it archived last. Recovery stops at the gap: a real restore loses
    every later transaction; the drill must not pass."""
    production.admin("CREATE TABLE IF NOT EXISTS after_gap (x int)", "postgres")
    segments = []
    for _ in range(3):
        production.admin("INSERT INTO after_gap VALUES (1)", "postgres")
        segments.append(production.quiesce())
    archive = tmp_path / "archive"
    shutil.copytree(production.repository / "wal", archive)
    (archive / segments[1]).unlink()
    production.admin("SELECT pg_stat_reset_shared('archiver')", "postgres")
    assert production.admin("SELECT last_archived_wal FROM pg_stat_archiver")[0][0] is None
    config = team_backups.config(tmp_path, archive=archive)

    code, output, report = _run(pgvdrill_cli, cli_cache, tmp_path, config,
                                  "--provider", "team", "--backup", "good")

    (drill,) = report["drills"]
    wal = (drill.get("restore") or {}).get("wal")
    assert code != 0 and drill["ok"] is False, (output, wal)


def test_pgbackrest_checks_leave_the_repository_and_productions_wal_as_they_were(
        pgbackrest_stanza: Stanza) -> None:  # noqa: F811
    """Provider health runs without a restore; production and the tool's repository are
    read-only for pgvdrill. `pgbackrest check` forces a WAL switch on the source (a write:
    pg_switch_wal, a new segment) and archives it into the repository."""
    stanza = pgbackrest_stanza
    stanza.switch_and_archive()
    before_files = stanza.files()
    before_lsn = stanza.production.admin("SELECT pg_current_wal_lsn()::text")[0][0]

    checks = make(stanza.provider()).checks()

    after_lsn = stanza.production.admin("SELECT pg_current_wal_lsn()::text")[0][0]
    new = sorted(set(stanza.files()) - set(before_files))
    assert all(c.status == "pass" for c in checks), [c.as_dict() for c in checks]
    assert (after_lsn, new) == (before_lsn, []), json.dumps(
        {"lsn": [before_lsn, after_lsn], "new files": new[:5]})


def test_the_rto_counts_the_wal_fetch_and_the_rpo_is_judged(
        team_backups: TeamBackups, production: Production, pgvdrill_cli: Cli,
        cli_cache: Path, tmp_path: Path) -> None:
    """B8: a real recovery runs the tool's restore_command for every segment while it
    replays; the drill fetches them all before the server starts. That time belongs to the
    RTO (for barman-cloud from S3 it can be most of it). B16: the data a restore would
    lose is judged (rpo.wal_archiving: pass, fail, or unknown with why), never left out."""
    production.quiesce()
    config_path = team_backups.config(tmp_path)

    code, output, report = _run(pgvdrill_cli, cli_cache, tmp_path, config_path,
                                  "--provider", "team", "--backup", "good")

    (drill,) = report["drills"]
    assert code == 0, output
    phases = {p["phase"]: p["seconds"] for p in drill["phases"]}
    wal = [name for name in phases if "wal" in name.lower()]
    assert wal, phases
    restore = drill["restore"]
    assert restore["seconds"] >= round(restore["tool_seconds"] + phases[wal[0]]
                                       + restore["recovery_seconds"] - 0.01, 3), (phases, restore)
    rpo = [v for v in drill["verdicts"] if v["name"] == "rpo.wal_archiving"]
    assert rpo and (rpo[0]["status"] != "unknown" or "archive_timeout" in rpo[0]["detail"]), (
        drill["verdicts"])


def test_barman_refuses_a_backup_with_tablespaces_before_recovering_it(
        make_production: Any) -> None:
    """`barman recover` without --tablespace puts each tablespace back at its original
    location: the source's own directory (or the same path on the Barman host). The
    pgbackrest and barman-cloud providers refuse such a backup before running the tool."""
    barman_or_skip()
    staging: Production = make_production()
    location = staging.directory / "tblspc"
    location.mkdir()
    _give(location, PROD_USER, 0o700)
    staging.admin(f"CREATE TABLESPACE attack_ts LOCATION '{location}'", "postgres")
    staging.admin("CREATE TABLE public.in_ts (x int) TABLESPACE attack_ts")
    staging.admin("INSERT INTO public.in_ts SELECT generate_series(1, 100)")
    staging.admin("CHECKPOINT", "postgres")
    before = sorted((str(p), p.stat().st_mtime_ns) for p in location.rglob("*"))
    work = Path(tempfile.mkdtemp(prefix="attack-barman-", dir=default_workdir()))
    work.chmod(0o755)  # Barman runs as its own user below it
    try:
        with barman_for(work, staging) as setup:
            backup_id = setup.backup()
            tool = make(config.Provider(name="barman", type="barman", bin=BARMAN_BIN,
                                        config=setup.config, server=SERVER))
            (backup,) = [b for b in tool.backups() if b.id == backup_id]
            into = work / "data"
            into.mkdir(mode=0o700)
            with pytest.raises(RestoreError) as refused:
                tool.restore(backup, into)
            said = refused.value.message
            log = (setup.directory / "log" / "barman.log").read_text()[-3000:]
            assert "tablespace" in said and not said.startswith("barman recover"), (said, log)
            assert not any(into.iterdir())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert sorted((str(p), p.stat().st_mtime_ns) for p in location.rglob("*")) == before


def test_barman_cloud_run_as_another_user_fetches_wal_into_the_drills_directory(
        cloud_production: Any) -> None:
    """The drill fetches into a directory of its own (root's, mode 0700, as
    drill/provider.py's _empty makes it); a provider configured with `user` (the tool's
    credentials are that user's) must still deliver the file there."""
    tool = make(cloud_production.provider(user=PROD_USER))
    backup = tool.backups()[-1]
    first = str(backup.details["begin_wal"])
    work = Path(tempfile.mkdtemp(prefix="attack-cloud-", dir=default_workdir()))
    try:
        work.chmod(0o711)
        wal = work / "wal"
        wal.mkdir(mode=0o700)
        assert tool.fetch_wal(first, wal / first) is True
        assert (wal / first).stat().st_size == 16 << 20
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_a_backup_missing_a_file_of_another_database_fails(
        production: Production, pgvdrill_cli: Cli, cli_cache: Path, tmp_path: Path) -> None:
    """The meta-drill's "a file removed from the provider's backup", in the cluster's other
    database (`postgres`, where this team keeps a ledger). A physical backup restores the
    whole cluster; a restore of it loses the ledger's rows. The drill compares only the
    configured database, so nothing reads the missing file."""
    production.admin("CREATE TABLE IF NOT EXISTS public.ledger AS "
                     "SELECT g AS id, md5(g::text) AS entry FROM generate_series(1, 2000) g",
                     "postgres")
    production.admin("CHECKPOINT", "postgres")
    ledger = str(production.admin("SELECT pg_relation_filepath('public.ledger')",
                                  "postgres")[0][0])
    team = TeamBackups(tmp_path / "team", tmp_path / "team" / "backups", production)
    team.backups.mkdir(parents=True)
    line = team.take("partial")
    production.quiesce()
    (team.backups / "partial" / ledger).unlink()
    team.index([line])
    config_path = team.config(tmp_path, verify="")  # a tool without one (WAL-G: none)

    code, output, report = _run(pgvdrill_cli, cli_cache, tmp_path, config_path,
                                  "--provider", "team", "--backup", "partial")

    (drill,) = report["drills"]
    assert code != 0 and drill["ok"] is False, output
    assert ledger in _problems(drill) or "ledger" in _problems(drill), _problems(drill)
