"""A base backup carries its source's whole configuration. A scratch copy pgvdrill starts
from one must not take the source's port, archive into its archive, reach for its
primary, hide its errors in a logging collector or trip over a recovery target an
earlier PITR left behind; and when it cannot start, it says why at once."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pgvdrill import osuser
from pgvdrill.cluster import Cluster
from pgvdrill.cluster.directory import DirectoryCluster
from pgvdrill.cluster.restored import SOURCE_CONFIG
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.errors import DrillError
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS, BaseBackup
from pgvdrill.physical.backup import base_backup
from pgvdrill.wal.archiving import make_archive_dir


def _files(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.iterdir())}


def _production_like(source: Cluster, archive: Path) -> None:
    """What an operator's server holds in its configuration files (ALTER SYSTEM, so that a
    base backup carries it): archiving into `archive`, its own port, a logging collector,
    a preload library the scratch installation lacks, a primary, and the recovery target
    of an earlier PITR."""
    settings = {"archive_mode": "on", "archive_command": source.archive_command(archive),
                "archive_timeout": "1", "port": str(source.port),
                "listen_addresses": "*", "logging_collector": "on",
                "log_directory": "log",
                "shared_preload_libraries": "pg_stat_statements, not_installed_here",
                "primary_conninfo": f"host=127.0.0.1 port={source.port} user=postgres",
                "recovery_target_time": "2025-11-01 10:00:00+00"}
    with source.connect() as conn:
        conn.autocommit = True
        for name, value in settings.items():
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name),
                                                                    sql.Literal(value)))


@pytest.fixture
def production_backup(prod_source: Cluster, wal_workdir: Path, tmp_path: Path
                      ) -> tuple[BaseBackup, Path]:
    archive = make_archive_dir(Path(wal_workdir, f"archive-{tmp_path.name}"),
                               osuser.server_user())
    prod_source.configure(max_wal_senders=20)  # more than pgvdrill's own servers have
    prod_source.stop()
    prod_source.start()
    _production_like(prod_source, archive)
    backup = base_backup(prod_source, BASE_BACKUP_SETTINGS["tar-stream"],
                         wal_workdir / f"base-{tmp_path.name}", fast_checkpoint=True)
    return backup, archive


def test_a_restored_copy_never_reaches_production(
        prod_source: Cluster, production_backup: tuple[BaseBackup, Path],
        restore_backup: Callable[[BaseBackup, str], tuple[Cluster, float]]) -> None:
    backup, archive = production_backup
    archived = _files(archive)

    copy, _ = restore_backup(backup, "copy-of-production")
    copy.start()  # on production's own settings: could not bind, or an archiving copy

    assert isinstance(copy, DirectoryCluster) and copy.restored is not None
    assert copy.port != prod_source.port
    assert copy.query("SHOW archive_mode") == [("off",)]
    logging = dict(copy.query("SELECT name, setting FROM pg_settings "
                              "WHERE name IN ('logging_collector', 'log_directory')"))
    # its errors where pgvdrill reads them: stderr into server.log, or (in a container)
    # the collector writing into the cluster directory, never the source's log_directory
    assert logging["logging_collector"] == "off" or \
        logging["log_directory"] == str(copy.directory)
    assert copy.query("SHOW shared_preload_libraries") == [("pg_stat_statements",)]
    assert copy.query("SELECT count(*) FROM pg_stat_wal_receiver") == [(0,)]
    # the source's hot-standby limits win over pgvdrill's (recovery refuses fewer)
    assert copy.query("SHOW max_wal_senders") == [("20",)]
    assert "not_installed_here" in " ".join(copy.restored.warnings)
    copy.query("CREATE TABLE written_in_the_copy AS SELECT 1 AS x", SOURCE_DB)
    copy.query("SELECT pg_switch_wal()")
    copy.query("CHECKPOINT")
    assert _files(archive) == archived  # nothing archived into production's archive
    with pytest.raises(psycopg.OperationalError):  # no login over TCP: only its socket
        psycopg.connect(host="127.0.0.1", port=copy.port, user="postgres",
                        dbname="postgres", password="", connect_timeout=5)
    kept = copy.directory / SOURCE_CONFIG
    assert "recovery_target_time" in (kept / "postgresql.auto.conf").read_text()


def test_a_copy_that_cannot_start_says_why_at_once(
        production_backup: tuple[BaseBackup, Path],
        restore_backup: Callable[[BaseBackup, str], tuple[Cluster, float]]) -> None:
    backup, _ = production_backup
    copy, _ = restore_backup(backup, "copy-without-wal")
    assert isinstance(copy, DirectoryCluster)
    for segment in (copy.datadir / "pg_wal").glob("0*"):
        segment.unlink()  # the backup's WAL lost: no checkpoint record to start from

    started = time.monotonic()
    with pytest.raises(DrillError) as failed:
        copy.start()

    assert time.monotonic() - started < 60
    said = str(failed.value)
    assert "did not start" in said
    assert "checkpoint record" in said  # the server's own reason, from its log
