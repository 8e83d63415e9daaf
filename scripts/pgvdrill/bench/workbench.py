"""What every benchmark mode at one size works on: the source holding the dataset, a
target server on default settings, a scratch directory, and the backups taken so far
(restore modes reuse the last one a backup mode took, or take their own, untimed)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pgvdrill.cluster import Backend, Cluster
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.errors import BackupError
from pgvdrill.logical.dump import DUMP_SETTINGS, DumpResult, dump
from pgvdrill.logical.restore import RestoreSetting
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS, BaseBackup
from pgvdrill.physical.backup import base_backup
from pgvdrill.verify import Snapshot, snapshot, verify


@dataclass
class Workbench:
    """The servers, scratch space and backups of one size of the sweep."""

    backend: Backend
    source: Cluster
    target: Cluster
    scratch: Path
    rto: RestoreSetting  # the RTO-optimised restore, sized for this dataset
    dumps: dict[str, DumpResult] = field(default_factory=dict)
    base_backups: dict[str, BaseBackup] = field(default_factory=dict)
    _files: dict[str, Path] = field(default_factory=dict)
    _count: int = 0
    _snapshot: Snapshot | None = None

    def check(self, cluster: Cluster, dbname: str, *, sequence_slack: int = 0) -> None:
        """Untimed: the restored `dbname` on `cluster` equals the source (counts, content,
        schema, indexes, recall); VerificationError if not, so a broken restore is never
        timed as a good one."""
        if self._snapshot is None:
            with self.source.connect(SOURCE_DB) as conn:
                self._snapshot = snapshot(conn)
        with cluster.connect(dbname) as conn:
            verify(self._snapshot, conn, sequence_slack=sequence_slack).raise_for_problems()

    def fresh(self, stem: str) -> Path:
        """A new path in the scratch directory (not created)."""
        self._count += 1
        return self.scratch / f"{stem}-{self._count}"

    def settle(self) -> None:
        """Start a measurement from the same state as the others: a checkpoint on both
        servers, then the OS's dirty pages written out, so no step pays for the writes an
        earlier one left behind (a gigabyte backup is still being flushed after it ends)."""
        for cluster in (self.source, self.target):
            cluster.query("CHECKPOINT")
        os.sync()

    def database(self) -> str:
        """A new database name for one restore."""
        return self.fresh("bench").name.replace("-", "_")

    def take_dump(self, name: str) -> DumpResult:
        """pgvdrill's dump with setting `name` (checked), kept for the restores."""
        dumped = dump(self.source, SOURCE_DB, DUMP_SETTINGS[name], self.fresh(f"dump-{name}"))
        if dumped.toc_problems:
            raise BackupError(f"dump {name}: " + "; ".join(dumped.toc_problems),
                              "the archive does not hold what the setting covers")
        self.dumps[name] = dumped
        self._keep(f"dump {name}", dumped.archive.path.parent)
        return dumped

    def dump(self, name: str) -> DumpResult:
        return self.dumps.get(name) or self.take_dump(name)

    def take_base_backup(self, name: str) -> BaseBackup:
        """pgvdrill's base backup with setting `name`, kept for the restores."""
        backup = base_backup(self.source, BASE_BACKUP_SETTINGS[name], self.fresh(f"base-{name}"),
                             fast_checkpoint=True)
        self.base_backups[name] = backup
        self._keep(f"base backup {name}", backup.path)
        return backup

    def base_backup(self, name: str) -> BaseBackup:
        return self.base_backups.get(name) or self.take_base_backup(name)

    def _keep(self, backup: str, path: Path) -> None:
        """Record `path` as the files of `backup`, removing the ones it replaces."""
        old = self._files.get(backup)
        self._files[backup] = path
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
