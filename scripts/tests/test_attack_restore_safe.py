"""`restore physical|pitr` make the restored directory safe to start beside the source
(`make_safe`). Its postgresql.auto.conf and postgresql.conf are the source's: untrusted,
written by ALTER SYSTEM or by hand (CRLF line endings, quoted names, includes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pgvdrill.cluster.conffile import read_conf
from pgvdrill.errors import RestoreError
from pgvdrill.installation import Installation
from pgvdrill.ops.restore_datadir import make_safe, restore_datadir
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS, BaseBackup
from pgvdrill.wal.pitr import Target

TOOLS = Installation(Path("/nonexistent"), "18.0")  # a plain copy runs no tool
RECOVERY = {"restore_command": "cp /wal/%f %p", **Target("name", "here").settings()}


def test_a_restored_copy_starts_no_subscription(tmp_path: Path) -> None:
    """Started beside the source, a copy's apply workers would stream from the publishers'
    slots (drills/test_attack_subscriptions.py shows it for a scratch copy)."""
    (tmp_path / "postgresql.conf").write_text("port = 5499\n")

    make_safe(tmp_path, "physical-1", None)

    read = read_conf(tmp_path / "postgresql.auto.conf", tmp_path)
    assert read.settings["max_logical_replication_workers"].value == "0"


def _effective(pgdata: Path) -> dict[str, str]:
    """The settings as PostgreSQL reads them: postgresql.conf, then postgresql.auto.conf."""
    conf, auto = (read_conf(pgdata / name, pgdata)
                  for name in ("postgresql.conf", "postgresql.auto.conf"))
    return {name: s.value for name, s in {**conf.settings, **auto.settings}.items()}


def test_a_pitr_copy_runs_none_of_the_standbys_recovery_commands_nor_waits(tmp_path: Path) -> None:
    """A base backup taken from a standby carries its postgresql.conf: at every
    restartpoint of the copy's archive recovery archive_cleanup_command would delete
    WAL from production's archive; recovery_end_command would run production's failover
    script."""
    (tmp_path / "postgresql.conf").write_text(
        "port = 5499\r\n"
        "archive_cleanup_command = 'pg_archivecleanup /production/archive %r'\r\n"
        "recovery_end_command = '/usr/local/bin/failover-notify --promote'\r\n"
        "recovery_min_apply_delay = '7d'\r\n")  # a delayed standby: a week's wait

    make_safe(tmp_path, "physical-1", RECOVERY)

    effective = _effective(tmp_path)
    assert effective.get("archive_cleanup_command", "") == ""
    assert effective.get("recovery_end_command", "") == ""
    assert effective.get("recovery_min_apply_delay", "0") == "0"


def test_a_plain_backup_linking_outside_is_refused_before_anything_is_copied(
        tmp_path: Path) -> None:
    """A plain base backup of a source with a tablespace (or one a writer of the repository
    added a link to) holds pg_tblspc/OID pointing at the source's own directory: a copy
    restored with it and started writes into production's tablespace."""
    production_tablespace = tmp_path / "production" / "tablespace"
    production_tablespace.mkdir(parents=True)
    backup = tmp_path / "backup"
    (backup / "pg_tblspc").mkdir(parents=True)
    (backup / "PG_VERSION").write_text("18\n")
    (backup / "pg_tblspc" / "16400").symlink_to(production_tablespace)
    pgdata = tmp_path / "pgdata"

    with pytest.raises(RestoreError, match="symlinks"):
        restore_datadir(TOOLS, BaseBackup(BASE_BACKUP_SETTINGS["plain"], backup, 1.0, []),
                        pgdata, [])

    assert not pgdata.exists() or not os.listdir(pgdata)


def test_a_copy_logging_into_the_sources_log_directory_is_named(tmp_path: Path) -> None:
    """The source's logging collector writing into /var/log/postgresql: a copy started
    beside it writes (and with log_truncate_on_rotation, truncates) production's log files."""
    (tmp_path / "postgresql.conf").write_text(
        "port = 5499\nlogging_collector = on\nlog_directory = '/var/log/postgresql'\n"
        "log_filename = 'postgresql-%a.log'\nlog_truncate_on_rotation = on\n")
    (tmp_path / "pg_hba.conf").write_text("local all all peer\n")

    done = make_safe(tmp_path, "physical-1", None)

    assert [w for w in done.warnings if "/var/log/postgresql" in w], done.warnings
