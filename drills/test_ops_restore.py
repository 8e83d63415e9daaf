"""`pgvdrill restore logical|physical|pitr` as an operator runs it, from catalog backups of a
running source: the restored copy equals the source (or, for PITR, holds exactly the marker
rows committed up to the target), and every unsafe request is refused."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import pytest

from fixtures.cli import Cli
from fixtures.data_directory import empty_data_directory
from fixtures.installations import OLD_PGVECTOR
from fixtures.ops import ArchivedRepo, conninfo
from fixtures.pgctl import StartFn
from fixtures.wal_repository import reachable_config
from pgvdrill import osuser
from pgvdrill.cluster import Backend, Cluster
from pgvdrill.drill.physical import SEQUENCE_SLACK
from pgvdrill.drill.pitr import MARKERS, RESTORE_POINT
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.ops.restore_logical import USER_TABLES
from pgvdrill.verify import snapshot, verify
from pgvdrill.wal.archiving import enable_archiving, switch_and_wait
from pgvdrill.wal.markers import MarkerWriter, boundary_problems
from pgvdrill.wal.names import SEGMENT_RE, Segment, format_lsn


@pytest.fixture
def pgdata(reachable: Path) -> Callable[[str], Path]:
    """pgdata(name): an empty data directory owned by the server's OS user, as an operator
    prepares it."""
    return functools.partial(empty_data_directory, reachable)


Done = subprocess.CompletedProcess[str]


def ok(result: Done) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def refused(result: Done, code: int, words: str) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr


def test_restore_logical_equals_the_source_and_refuses_unsafe_targets(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        make_cluster: Callable[..., Cluster]) -> None:
    config = ops_config()
    ok(pgvdrill_cli("backup", "logical", "--config", config))
    target = make_cluster("restored")
    target.query("CREATE DATABASE restored TEMPLATE template0")
    dsn = conninfo(target, "restored")
    # the backend's clusters are copies of one initdb: the source's system identifier, and
    # `restored` gets its database's OID, which only a server said to be a copy may share
    copy = ("--into-copy-of-source",)

    result = pgvdrill_cli("restore", "logical", "latest", "--target-dsn", dsn, "--jobs", "2",
                          *copy, "--config", config)

    assert "restored logical-" in ok(result)
    assert "pg_restore: processing data for table" in result.stderr  # progress
    with prod_source.connect(SOURCE_DB) as source, target.connect("restored") as restored:
        verify(snapshot(source), restored).raise_for_problems()
    refused(pgvdrill_cli("restore", "logical", "latest", "--target-dsn", dsn, *copy,
                         "--config", config), 5, "already holds")
    ok(pgvdrill_cli("restore", "logical", "latest", "--target-dsn", dsn, "--clean", *copy,
                    "--config", config))
    refused(pgvdrill_cli("restore", "logical", "latest", "--target-dsn", conninfo(prod_source),
                         "--clean", "--config", config),
            5, "is the configured source: it is reached at 127.0.0.1 port")
    same_server = conninfo(prod_source).replace("host=127.0.0.1", "host=localhost")
    refused(pgvdrill_cli("restore", "logical", "latest", "--target-dsn", same_server,
                         "--clean", "--into-copy-of-source", "--config", config),
            5, "the same server as the [source] conninfo's 127.0.0.1 port")


def test_restore_physical_starts_equal_to_the_source(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        pgdata: Callable[[str], Path], pg_ctl: StartFn) -> None:
    config = ops_config()
    ok(pgvdrill_cli("backup", "physical", "--config", config))
    datadir = pgdata("physical")
    (datadir / "lost+found").mkdir()  # a mount point: --force restores beside it

    result = pgvdrill_cli("restore", "physical", "latest", "--pgdata", datadir, "--force",
                          "--config", config)

    assert f"pg_ctl -D {datadir}" in ok(result)
    assert (datadir / "lost+found").is_dir() and (datadir / "PG_VERSION").is_file()
    assert not (datadir / "recovery.signal").exists()
    assert os.stat(datadir / "PG_VERSION").st_uid == os.stat(datadir).st_uid
    with prod_source.connect(SOURCE_DB) as source, \
            pg_ctl(datadir, prod_source).promoted() as restored:
        verify(snapshot(source), restored, sequence_slack=SEQUENCE_SLACK).raise_for_problems()


def test_restore_refusals(prod_source: Cluster, ops_config: Callable[..., Path],
                          pgvdrill_cli: Cli, pgdata: Callable[[str], Path]) -> None:
    config = ops_config()
    ok(pgvdrill_cli("backup", "physical", "--config", config))
    [entry] = [p.stem for p in (Path(config).parent / "repo" / "catalog").glob("*.json")]

    def restore(kind: str, backup: str, datadir: Path, *extra: str) -> Done:
        return pgvdrill_cli("restore", kind, backup, "--pgdata", datadir, *extra,
                            "--config", config)

    busy = pgdata("busy")
    (busy / "notes.txt").write_text("mine")
    refused(restore("physical", "latest", busy), 5, "is not empty (notes.txt)")
    (busy / "PG_VERSION").write_text("18\n")
    refused(restore("physical", "latest", busy, "--force"), 5,
            "holds a PostgreSQL data directory (PG_VERSION")
    assert sorted(os.listdir(busy)) == ["PG_VERSION", "notes.txt"]  # nothing touched
    refused(restore("physical", "physical-19990101T000000Z", pgdata("a")), 2,
            "no backup physical-19990101T000000Z in the catalog")
    refused(restore("pitr", entry, pgdata("b"), "--target-time", "2000-01-01 00:00:00+00"),
            5, f"is before base backup {entry} started")
    refused(restore("pitr", "latest", pgdata("c"), "--target-time", "2000-01-01 00:00:00+00"),
            5, "no physical backup ends before the recovery target")
    refused(restore("pitr", "latest", pgdata("d"), "--target-time", "2000-01-01 00:00:00"),
            2, "has no time zone")
    base = Path(config).parent / "repo" / "physical" / entry / "base.tar"
    base.write_bytes(base.read_bytes()[:-1024])
    untouched = pgdata("e")
    refused(restore("physical", entry, untouched), 4,
            f"backup {entry} does not match its catalog entry")
    assert not any(untouched.iterdir())


@pytest.mark.local_server("pgvdrill restore pitr writes a restore_command that runs "
                           "pgvdrill on the server's machine")
def test_restore_pitr_to_each_target_kind(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        reachable: Path, pgdata: Callable[[str], Path],
        pg_ctl: StartFn, tmp_path: Path) -> None:
    config, repo = reachable_config(ops_config, tmp_path, reachable)
    enable_archiving(prod_source, repo.wal, track_commit_timestamp=True)
    with prod_source.connect(SOURCE_DB) as conn, prod_source.connect() as wal_conn:
        writer = MarkerWriter.of(prod_source, conn, wal_conn)
        writer.create()
        for i in range(1, 4):
            writer.write(i)
        ok(pgvdrill_cli("backup", "physical", "--config", config))
        for i in range(4, MARKERS + 1):
            writer.write(i)
            if i == RESTORE_POINT[1]:
                wal_conn.execute("SELECT pg_create_restore_point(%s)", (RESTORE_POINT[0],))
    switch_and_wait(prod_source, repo.wal)
    m = writer.written
    [backup] = [p.stem for p in repo.catalog.glob("*.json")]
    cases = {  # options -> markers recovered
        "time": (["--target-time", m[5].commit_time.isoformat()], 6),
        # the archive's last commit, exclusive: the only time target this close that works
        "time-last": (["--target-time", m[-1].commit_time.isoformat(), "--exclusive"],
                      MARKERS - 1),
        "xid": (["--target-xid", str(m[6].xid), "--exclusive"], 6),
        "lsn": (["--target-lsn", format_lsn(m[7].commit_lsn)], 8),
        "name": (["--target-name", RESTORE_POINT[0]], RESTORE_POINT[1]),
        "immediate": (["--target", "immediate"], 3),
    }
    for kind, (options, expected) in cases.items():
        datadir = pgdata(f"pitr-{kind}")
        result = pgvdrill_cli("restore", "pitr", "latest", "--pgdata", datadir, *options,
                              "--config", config)
        assert f"latest: {backup}" in ok(result)
        assert (datadir / "recovery.signal").is_file()
        assert "restore-wal %f %p --source" in (datadir / "postgresql.auto.conf").read_text()
        with pg_ctl(datadir, prod_source).promoted() as restored:
            assert boundary_problems(restored, m[:expected], m[expected:]) == [], kind
    refused(pgvdrill_cli("restore", "pitr", backup, "--pgdata", pgdata("early"),
                         "--target-lsn", format_lsn(m[2].commit_lsn), "--config", config),
            5, "is before the base backup's end LSN")
    # beyond the archive: refused before anything is unpacked, where PostgreSQL would
    # replay the whole archive and then stop short
    late = pgdata("late")
    refused(pgvdrill_cli("restore", "pitr", backup, "--pgdata", late, "--target-time",
                         m[-1].commit_time.isoformat(), "--config", config),
            5, "is not before the archived WAL ends: its last transaction ended at "
               + m[-1].commit_time.astimezone(UTC).isoformat())
    refused(pgvdrill_cli("restore", "pitr", backup, "--pgdata", late, "--target-lsn",
                         "FF/0", "--config", config), 5, "is beyond the archived WAL")
    refused(pgvdrill_cli("restore", "pitr", backup, "--pgdata", late, "--target-name",
                         f"{RESTORE_POINT[0]}-typo", "--config", config),
            5, f"the restore points there: '{RESTORE_POINT[0]}'")
    refused(pgvdrill_cli("restore", "pitr", backup, "--pgdata", late, "--target-xid",
                         str(m[-1].xid + 1000), "--config", config),
            5, f"transaction {m[-1].xid + 1000} does not commit or abort in the archived WAL")
    assert list(late.iterdir()) == []


@pytest.mark.local_server("pgvdrill restore pitr writes a restore_command that runs "
                           "pgvdrill on the server's machine")
def test_restore_pitr_ends_where_a_segment_of_another_system_starts(
        archived_repo: ArchivedRepo, foreign_segment: bytes, pgvdrill_cli: Cli,
        reachable: Path, pgdata: Callable[[str], Path], pg_ctl: StartFn,
        prod_source: Cluster) -> None:
    """The archive's last segment replaced by one of another database system, as two
    servers archiving into one directory leave it. A target past it is refused before
    anything is unpacked; to the end of the archive, pgvdrill warns where recovery will
    end, and the real recovery ends there: PostgreSQL rejects the segment, promotes, and
    the row written in it is not restored."""
    repo = Path(shutil.copytree(archived_repo.repo, reachable / "repo", symlinks=True))
    osuser.chown_tree(repo, osuser.server_user())
    last = max(p.name for p in (repo / "wal").iterdir() if SEGMENT_RE.fullmatch(p.name))
    (repo / "wal" / last).write_bytes(foreign_segment)
    config = reachable / "pgvdrill.toml"
    config.write_text(f'[repository]\npath = "{repo}"\n')
    backup, cut = archived_repo.physical.id, Segment.from_name(last).start
    foreign = f"segment {last} is from another database system"

    past = pgdata("past")
    refused(pgvdrill_cli("restore", "pitr", backup, "--pgdata", past, "--target-lsn",
                         format_lsn(cut + 1), "--config", config),
            5, f"which carries recovery to {format_lsn(cut)}")
    assert list(past.iterdir()) == []

    datadir = pgdata("end")
    said = ok(pgvdrill_cli("restore", "pitr", backup, "--pgdata", datadir, "--config", config))
    assert f"recovery can reach {format_lsn(cut)}" in said and f"warning: {foreign}" in said
    started = pg_ctl(datadir, prod_source)  # a copy of the same template: its password
    with started.promoted("postgres") as restored:
        assert restored.execute("SELECT count(*) FROM after_backup").fetchall() == [(1,)]
    assert "WAL file is from different database system" in started.log.read_text()
    assert (repo / "wal" / last).read_bytes() == foreign_segment  # nothing removed


def test_restore_logical_into_an_older_pgvector_follows_what_the_dump_uses(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        oldvector_backend: Backend, installable_old_backend: Backend) -> None:
    """A backup taken with the shipped pgvector restores onto a server that offers only
    OLD_PGVECTOR (with every object the dump uses), saying that the target's pgvector is
    older; into a database whose installed OLD_PGVECTOR lacks an operator class the dump
    uses, it is refused before anything is restored (exit 5), naming what is lacking, both
    versions and what to do."""
    config = ops_config()
    ok(pgvdrill_cli("backup", "logical", "--config", config))
    shipped = prod_source.query("SELECT extversion FROM pg_extension WHERE extname = 'vector'",
                                SOURCE_DB)[0][0]
    with oldvector_backend.cluster("old-pgvector") as target:
        target.query("CREATE DATABASE restored TEMPLATE template0")
        said = ok(pgvdrill_cli("restore", "logical", "latest", "--target-dsn",
                               conninfo(target, "restored"), "--config", config))
        assert f"the target's pgvector {OLD_PGVECTOR} is older than the {shipped} the " \
               "backup was taken with; the dump uses nothing" in said
        assert target.query(USER_TABLES, "restored") != [(0,)]
    used = prod_source.query(
        "SELECT o.opcname FROM pg_index i JOIN pg_opclass o ON o.oid = i.indclass[0]"
        " JOIN pg_am a ON a.oid = o.opcmethod WHERE a.amname = 'hnsw' ORDER BY 1 LIMIT 1",
        SOURCE_DB)[0][0]
    with installable_old_backend.cluster("installable-old") as target:
        target.query("CREATE DATABASE restored TEMPLATE template0")
        target.query(f"CREATE EXTENSION vector VERSION '{OLD_PGVECTOR}'; "
                     f"ALTER EXTENSION vector DROP OPERATOR CLASS {used} USING hnsw; "
                     f"DROP OPERATOR CLASS {used} USING hnsw CASCADE", "restored")
        dsn = conninfo(target, "restored")
        result = pgvdrill_cli("restore", "logical", "latest", "--target-dsn", dsn,
                              "--config", config)
        refused(result, 5, f"uses operator class {used} for hnsw, which pgvector {OLD_PGVECTOR} "
                           f"installed in the target lacks, the backup was taken with "
                           f"{shipped}")
        assert "ALTER EXTENSION vector UPDATE" in result.stderr
        assert target.query(USER_TABLES, "restored") == [(0,)]
