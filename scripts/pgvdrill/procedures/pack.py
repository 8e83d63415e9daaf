"""What every step of the built-in runbook pack shares: the backend, the dataset's template,
the recorder, and which of the pack's procedures the run asked for."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from pgvdrill.cluster.local import LocalBackend
from pgvdrill.procedures.steps import Recorder

PACK = "runbook"
# The pack's procedures, in the order they run (names for --only).
LOGICAL = ("pg_dump", "pg_restore", "restore_test.sh", "BackupManager")
PHYSICAL = ("archiving", "pg_basebackup", "pitr", "BackupManager")
PROCEDURES = tuple(dict.fromkeys(LOGICAL + PHYSICAL))
# How every pack command reaches its server: the runbook's -U postgres -d vector_db are kept
CONNECTION = "host, port and password from PGHOST, PGPORT and PGPASSFILE of the throw-away " \
             "server"


@dataclass
class PackRun:
    backend: LocalBackend
    template: str
    recorder: Recorder
    only: Collection[str]  # the pack's procedures to run

    def wanted(self, *procedures: str) -> bool:
        return any(p in self.only for p in procedures)
