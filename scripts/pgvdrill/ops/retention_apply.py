"""Carrying out a retention plan. A backup goes entry first: its catalog entry is renamed
aside (atomic), then its directory is removed, then the renamed entry; a crash in between
leaves a directory without an entry, which is never taken for a valid backup."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

from pgvdrill.files.fsync import fsync_dir
from pgvdrill.ops.retention_plan import Plan
from pgvdrill.ops.retention_scan import aside_path
from pgvdrill.repository import Repository


def delete_backup(repo: Repository, kind: str, backup_id: str) -> None:
    """Remove one backup and its catalog entry (OSError if a step fails)."""
    aside = aside_path(repo, backup_id)
    directory = repo.backup_dir(kind, backup_id)  # UnsafePath before anything changes
    os.rename(repo.entry_path(backup_id), aside)
    fsync_dir(repo.catalog)
    if os.path.lexists(directory):
        shutil.rmtree(directory)
    aside.unlink()
    fsync_dir(repo.catalog)


def carry_out(repo: Repository, plan: Plan, say: Callable[[str], None]) -> list[str]:
    """Delete what `plan` says goes; what could not be deleted (empty when all went)."""
    failed: list[str] = []
    physical_left = False
    for decision in (d for d in plan.backups if not d.keep):
        try:
            delete_backup(repo, decision.kind, decision.name)
        except OSError as exc:
            failed.append(f"{decision.kind} backup {decision.name}: {exc}")
            physical_left = physical_left or decision.kind == "physical"
            say(f"FAILED to delete {decision.kind} backup {decision.name}: {exc}")
        else:
            say(f"deleted {decision.kind} backup {decision.name}")
    if physical_left:
        say("WAL left as it is: a physical backup that was to go is still there")
        return failed
    going = [d for d in plan.wal if not d.keep]
    for decision in going:
        try:
            (repo.wal / decision.name).unlink()
        except FileNotFoundError:
            continue  # gone meanwhile: nothing to do
        except OSError as exc:
            failed.append(f"WAL file {decision.name}: {exc}")
            say(f"FAILED to delete WAL file {decision.name}: {exc}")
    if going:
        fsync_dir(repo.wal)
    return failed


