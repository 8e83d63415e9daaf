"""Physical restore: a base backup unpacked into a fresh data directory (tar archives
extracted, a plain copy copied, incrementals combined with pg_combinebackup), handed to
the backend as a stopped cluster."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pgvdrill.cluster import Backend, Cluster
from pgvdrill.cluster.base import ToolRunner
from pgvdrill.errors import RestoreError
from pgvdrill.physical.artifact import BaseBackup
from pgvdrill.physical.unpack import extract_backup
from pgvdrill.physical.verifybackup import backup_format
from pgvdrill.proc.runner import ToolCall


@dataclass(frozen=True)
class Unpacked:
    """How the data directory was made from the backup, and how long it took."""

    datadir: Path
    step: str  # extract, copy or combine
    seconds: float


def unpack(tools: ToolRunner, backup: BaseBackup, datadir: Path, *, force: bool = False
           ) -> Unpacked:
    """Make `datadir` from `backup`. `datadir` must be missing or empty; `force` empties it
    first (the runbook's "empty $PGDATA, then extract")."""
    _prepare(datadir, force)
    started = time.monotonic()
    if backup.parent is not None:
        step = "combine"
        datadir.rmdir()  # pg_combinebackup creates its output directory
        chain = [b.path for b in _chain(backup)]
        tools.run_tool(ToolCall(
            "pg_combinebackup", [*chain, "--output", datadir],
            hint="pg_combinebackup needs the full backup and every incremental "
                 "after it, oldest first, each intact (pgvdrill verify-backup)"))
    elif backup_format(backup.path) == "plain":
        step = "copy"
        shutil.copytree(backup.path, datadir, symlinks=True, dirs_exist_ok=True)
    else:
        step = "extract"
        extract_backup(backup.path, datadir)
    return Unpacked(datadir, step, time.monotonic() - started)


def restore_base_backup(backend: Backend, backup: BaseBackup, name: str, *,
                        into: Path | None = None, force: bool = False) -> Cluster:
    """Unpack `backup` into `into` (default: a new directory beside the backup) and adopt it
    as a stopped cluster `name`: add recovery settings, then start it."""
    return restore_base_backup_timed(backend, backup, name, into=into, force=force)[0]


def restore_base_backup_timed(backend: Backend, backup: BaseBackup, name: str, *,
                              into: Path | None = None, force: bool = False
                              ) -> tuple[Cluster, Unpacked]:
    """`restore_base_backup`, with how the data directory was made and how long it took."""
    made = into is None
    datadir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=backup.path.parent)) \
        if into is None else into
    try:
        unpacked = unpack(backend.tools(), backup, datadir, force=force)
        return backend.adopt(name, datadir), unpacked
    except BaseException:
        if made:
            shutil.rmtree(datadir, ignore_errors=True)
        raise


def _prepare(datadir: Path, force: bool) -> None:
    if datadir.exists() and not datadir.is_dir():
        raise RestoreError(f"restore target {datadir} is not a directory",
                           "choose a new or empty directory")
    if datadir.is_dir() and any(datadir.iterdir()):
        if not force:
            raise RestoreError(
                f"restore target {datadir} is not empty "
                f"({', '.join(sorted(os.listdir(datadir))[:5])}...)",
                "restoring over existing files mixes two clusters: choose an empty "
                "directory, or force it (--force) to empty this one first")
        shutil.rmtree(datadir)
    datadir.mkdir(mode=0o700, parents=True, exist_ok=True)


def _chain(backup: BaseBackup) -> list[BaseBackup]:
    """The full backup and the incrementals up to `backup`, oldest first."""
    chain: list[BaseBackup] = []
    current: BaseBackup | None = backup
    while current is not None:
        chain.append(current)
        current = current.parent
    return chain[::-1]
