"""The production restore beside production: `pgvdrill restore pitr` makes a data directory
that starts with pg_ctl (as an operator starts it, not through pgvdrill's own scratch
clusters) without archiving into the repository, stops at the requested target despite
an earlier PITR's leftover target, and follows the timeline the source is on, not a stray
branch a restored copy archived into the same archive; `verify --all` flags that branch."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from fixtures.cli import Cli
from fixtures.data_directory import empty_data_directory
from fixtures.pgctl import StartFn
from fixtures.wal_repository import branched_copy, reachable_config
from pgvdrill import osuser
from pgvdrill.cluster import Cluster
from pgvdrill.cluster.conffile import read_conf
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.proc.runner import ToolCall
from pgvdrill.wal.archiving import enable_archiving, switch_and_wait
from pgvdrill.wal.timelines import current_timeline

LOCAL = pytest.mark.local_server("pgvdrill restore pitr writes a restore_command that runs "
                                 "pgvdrill on the server's machine")


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def archive_files(repo: Path) -> dict[str, str]:
    """Every file under the repository and its sha256."""
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(repo.rglob("*")) if p.is_file()}


def backup_role(source: Cluster, directory: Path) -> Path:
    """A backup role that is no superuser (LOGIN REPLICATION + pg_read_all_data) on
    `source`; its passfile in `directory`."""
    source.query("CREATE ROLE backup_role LOGIN REPLICATION PASSWORD 'least-secret' "
                 "IN ROLE pg_read_all_data")
    passfile = directory / "backup_role.pgpass"
    passfile.write_text("*:*:*:backup_role:least-secret\n")
    passfile.chmod(0o600)
    return passfile


def least_privilege(source: Cluster, config: Path, tmp_path: Path) -> Path:
    """`config` reaching the source as `backup_role`."""
    passfile = backup_role(source, tmp_path)
    info = source.conninfo
    least = tmp_path / "least.toml"
    least.write_text(config.read_text().replace(f"user={info.user}", "user=backup_role")
                     .replace(f"passfile={info.passfile}", f"passfile={passfile}"))
    assert "backup_role" in least.read_text()
    return least


def rows(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    return [str(r[0]) for r in conn.execute("SELECT note FROM marks ORDER BY id").fetchall()]


@LOCAL
def test_restore_pitr_starts_beside_the_source_reaches_its_target_and_archives_nothing(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        reachable: Path, tmp_path: Path,
        pg_ctl: StartFn) -> None:
    """The source's postgresql.auto.conf carries archive_mode = on with an archive_command
    into the repository and an earlier PITR's recovery_target_time: restored as it is, the
    copy refuses to start ("multiple recovery targets specified") and, once promoted,
    would archive its 00000002.history into production's archive."""
    config, repo = reachable_config(ops_config, tmp_path, reachable)
    for statement in ("ALTER SYSTEM SET archive_mode = 'on'",
                      f"ALTER SYSTEM SET archive_command = "
                      f"'{prod_source.archive_command(repo.wal).replace(chr(39), chr(39) * 2)}'",
                      "ALTER SYSTEM SET recovery_target_time = '2020-01-01 00:00:00+00'"):
        prod_source.query(statement)
    prod_source.stop()
    prod_source.start()

    def write(note: str) -> str:
        """Commit a row; the WAL position just after its commit."""
        prod_source.query(f"INSERT INTO marks (note) VALUES ('{note}')", SOURCE_DB)
        return str(prod_source.query("SELECT pg_current_wal_insert_lsn()")[0][0])

    prod_source.query("CREATE TABLE marks (id serial PRIMARY KEY, note text)", SOURCE_DB)
    write("before the backup")
    ok(pgvdrill_cli("backup", "physical", "--config", config))
    target = write("the target")
    write("after the target")
    switch_and_wait(prod_source, repo.wal)
    datadir = empty_data_directory(reachable, "pitr")

    said = ok(pgvdrill_cli("restore", "pitr", "latest", "--pgdata", datadir, "--target-lsn",
                           target, "--config", config))

    before = archive_files(repo.root)
    started = pg_ctl(datadir, prod_source)
    with started.promoted() as copy:
        assert rows(copy) == ["before the backup", "the target"]
        assert copy.execute("SHOW archive_mode").fetchone() == ("off",)
        copy.execute("INSERT INTO marks (note) VALUES ('in the copy')")
        copy.execute("SELECT pg_switch_wal()")
        copy.execute("CHECKPOINT")
        assert copy.execute("SELECT archived_count, failed_count FROM pg_stat_archiver"
                            ).fetchone() == (0, 0)
    assert archive_files(repo.root) == before
    with psycopg.connect(started.dsn, dbname="postgres", autocommit=True) as copy:
        copy.execute(re.findall(r'psql -c "(ALTER SYSTEM [^"]+)"', said)[0].encode())
    assert read_conf(datadir / "postgresql.auto.conf", datadir).settings["archive_mode"] \
        .value == "on"  # the printed way back works (after a restart, not done here)
    assert "recovery_target_time commented out" in said
    assert "archive_mode = 'off'" in said and "timeline: following 1, the source's" in said
    assert f"the source's port {prod_source.conninfo.port} (in use on this host now)" in said
    assert "psql -c \"ALTER SYSTEM SET archive_mode = 'on'\"" in said


@LOCAL
def test_a_stray_timeline_is_flagged_and_not_followed(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        reachable: Path, tmp_path: Path, cli_cache: Path,
        restore_backup: Callable[..., tuple[Cluster, float]],
        pg_ctl: StartFn) -> None:
    """A restored copy of the source, archiving into the SAME wal/ (on purpose here),
    promoted at its backup's end: timeline 2 with a history file and a segment, while the
    source goes on on timeline 1 and writes newer rows. Before, verify said ok and restore
    pitr followed timeline 2 ('latest'), losing the source's newest rows."""
    config, repo = reachable_config(ops_config, tmp_path, reachable)
    enable_archiving(prod_source, repo.wal)
    prod_source.query("CREATE TABLE marks (id serial PRIMARY KEY, note text)", SOURCE_DB)
    prod_source.query("INSERT INTO marks (note) VALUES ('before the backup')", SOURCE_DB)
    ok(pgvdrill_cli("backup", "physical", "--config", config))
    stray = branched_copy(repo, restore_backup, "stray")
    stray.query("INSERT INTO marks (note) VALUES ('on the stray branch')", SOURCE_DB)
    switch_and_wait(stray, repo.wal)
    for note in ("newest 1", "newest 2"):  # the source goes on, past the branch point
        prod_source.query(f"INSERT INTO marks (note) VALUES ('{note}')", SOURCE_DB)
        switch_and_wait(prod_source, repo.wal)
    assert (repo.wal / "00000002.history").is_file()
    stray.stop()
    least = least_privilege(prod_source, config, tmp_path)

    followed = empty_data_directory(reachable, "followed")
    said = ok(pgvdrill_cli("restore", "pitr", "latest", "--pgdata", followed, "--config",
                           least))
    with pg_ctl(followed, prod_source).promoted() as copy:
        assert rows(copy) == ["before the backup", "newest 1", "newest 2"]
    assert "timeline: following 1, the source's current timeline" in said
    assert "not following timeline(s) 2" in said
    assert "recovery_target_timeline = '1'" in (followed / "postgresql.auto.conf").read_text()

    checked = pgvdrill_cli("verify", "--all", "--config", least)

    assert checked.returncode == 4, checked.stdout + checked.stderr
    [problem] = [line for line in checked.stdout.splitlines() if "is a branch" in line]
    assert "timeline 2 (00000002.history: from 1 at" in problem
    assert ": 00000002.history, 000000020000" in problem
    assert "current timeline 1 does not descend from" in problem
    assert f"mkdir -p {repo.root}/set-aside/timeline-2 && mv -n " in problem
    assert "the source is on timeline 1 (read from its current WAL file)" in checked.stdout

    # the DR drill's archive replay follows the source's timeline too (it followed the
    # latest, the stray branch, and compared a copy without the source's newest rows)
    drilled = pgvdrill_cli("drill", "--config", least, "--kinds", "physical", "--cache-dir",
                           cli_cache, "--reports-dir", "reports")
    [report] = (tmp_path / "reports").glob("*/report.json")
    [physical] = json.loads(report.read_text())["drills"]
    assert physical["ok"] is True, drilled.stdout + drilled.stderr
    assert {c["name"]: c["ok"] for c in physical["verification"]["checks"]}["wal_replay"]

    branch = empty_data_directory(reachable, "branch")
    said = ok(pgvdrill_cli("restore", "pitr", "latest", "--pgdata", branch,
                           "--target-timeline", "latest", "--config", config))
    assert "timeline: following latest (timeline 2 now" in said
    with pg_ctl(branch, prod_source).promoted() as copy:
        assert rows(copy) == ["before the backup", "on the stray branch"]

    # the source out of reach: which branch is production's cannot be told
    blind = tmp_path / "blind.toml"
    blind.write_text(f'[repository]\npath = "{repo.root}"\n')
    nowhere = reachable / "nowhere"
    refused = pgvdrill_cli("restore", "pitr", "latest", "--pgdata", nowhere, "--config", blind)
    assert refused.returncode == 5, refused.stdout + refused.stderr
    assert "the archive's timelines fork" in refused.stderr
    assert "--target-timeline 1 --config" in refused.stderr
    assert not nowhere.exists()


@pytest.mark.local_server("a standby started by pg_ctl on this machine")
def test_a_backup_role_reads_the_current_timeline_of_a_primary_and_of_a_standby(
        prod_source: Cluster, reachable: Path, pg_ctl: StartFn) -> None:
    """LOGIN REPLICATION + pg_read_all_data, no superuser: the primary's current WAL file
    names its timeline; a hot standby (made by pg_basebackup -R) answers through
    pg_control_checkpoint(), which PostgreSQL 18 lets any role run."""
    passfile = backup_role(prod_source, reachable)
    osuser.chown_tree(passfile, osuser.server_user())  # the standby's primary_conninfo
    info = prod_source.conninfo
    login = {"user": "backup_role", "passfile": str(passfile)}
    with psycopg.connect(host=info.host, port=info.port, dbname="postgres",
                         autocommit=True, **login) as primary:
        assert current_timeline(primary) == (1, "its current WAL file")
    standby = reachable / "standby"
    prod_source.run_tool(ToolCall("pg_basebackup", [
        "-D", standby, "-R", "-X", "stream", "-c", "fast", "-U", "backup_role", "-h", info.host,
        "-p", str(info.port), "-d", f"passfile={passfile}"]))
    osuser.chown_tree(standby, osuser.server_user())
    standby.chmod(0o700)

    with pg_ctl(standby, prod_source).promoted(
            "postgres", recovering=True, **login) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        assert current_timeline(conn) == (
            1, "a standby: SELECT timeline_id FROM pg_control_checkpoint()")
