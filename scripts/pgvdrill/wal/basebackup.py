"""The plain base backup PITR and RPO drills start from, and its restore as a copy."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from pgvdrill.cluster import Backend, Cluster


def take_base_backup(cluster: Cluster, dest: Path) -> float:
    """pg_basebackup -Fp -X stream -c fast of `cluster` into `dest`; the seconds it took."""
    started = time.monotonic()
    cluster.run_tool("pg_basebackup", ["-D", dest, "-Fp", "-X", "stream", "-c", "fast"],
                     hint="pg_basebackup failed: the backup directory is incomplete")
    return time.monotonic() - started


def restore_copy(backend: Backend, backup: Path, name: str) -> tuple[Cluster, float]:
    """A copy of the plain backup `backup` adopted as the stopped cluster `name` (the backup
    itself stays untouched for the next restore); the seconds the copy took."""
    started = time.monotonic()
    datadir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=backup.parent)) / "data"
    shutil.copytree(backup, datadir, symlinks=True)
    return backend.adopt(name, datadir), time.monotonic() - started
