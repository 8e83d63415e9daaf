"""The backup step: pg_basebackup in each form, incremental backups (PostgreSQL 17+), or
the low-level API (lowlevel.py)."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from pgvdrill.cluster import Server
from pgvdrill.errors import BackupError, ConfigError
from pgvdrill.physical.artifact import BaseBackup, BaseBackupSetting
from pgvdrill.physical.lowlevel import low_level_backup
from pgvdrill.physical.manifest import manifest_ranges
from pgvdrill.proc.runner import ToolCall


def base_backup(cluster: Server, setting: BaseBackupSetting, dest: Path, *,
                parent: BaseBackup | None = None, fast_checkpoint: bool = False) -> BaseBackup:
    """Take a backup of `cluster` into `dest` (which must not exist yet), timed.

    `incremental` needs `parent`, a plain full backup taken with summarize_wal on.
    `fast_checkpoint` adds --checkpoint=fast; without it the backup starts after a spread
    checkpoint, as the runbook's commands do (seconds to minutes on a busy server)."""
    source_bytes = cluster_size(cluster)
    if setting.method == "low-level":
        backup = low_level_backup(cluster, dest, fast=fast_checkpoint)
    else:
        backup = _pg_basebackup(cluster, setting, dest, parent, fast_checkpoint)
    return replace(backup, source_bytes=source_bytes, finished=datetime.now(UTC))


def cluster_size(cluster: Server) -> int:
    """Bytes of every database of `cluster` (what a base backup covers, WAL aside)."""
    return int(str(cluster.query("SELECT sum(pg_database_size(oid)) FROM pg_database")[0][0]))


def _pg_basebackup(cluster: Server, setting: BaseBackupSetting, dest: Path,
                   parent: BaseBackup | None, fast_checkpoint: bool) -> BaseBackup:
    if os.path.lexists(dest):
        raise BackupError(f"{dest} already exists", "pgvdrill never overwrites a backup: "
                          "move it away or choose another directory")
    args: list[str | Path] = ["-D", dest, *setting.args]
    if fast_checkpoint:
        args.append("--checkpoint=fast")
    if setting.method == "incremental":
        if parent is None or parent.manifest is None:
            raise ConfigError(f"setting {setting.name!r} needs a full backup with a manifest "
                              "to build on", "take a 'plain' backup first and pass it as parent")
        if cluster.major < 17:
            raise ConfigError(f"incremental backups need PostgreSQL 17+, this is {cluster.major}",
                              "use a full backup setting on this server")
        args += [f"--incremental={parent.manifest}"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    cluster.run_tool(ToolCall("pg_basebackup", args, hint=_hint(setting)))
    seconds = time.monotonic() - started
    return BaseBackup(setting, dest, seconds, manifest_ranges(dest / "backup_manifest"), parent)


def _hint(setting: BaseBackupSetting) -> str:
    if setting.method == "incremental":
        return ("an incremental backup needs summarize_wal = on since before its parent "
                "backup, and the parent's backup_manifest")
    return f"pg_basebackup ({setting.name}) failed: the backup directory is incomplete"
