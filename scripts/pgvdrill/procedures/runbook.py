"""The built-in runbook pack (`--pack runbook`): the procedures of RUNBOOK.md run verbatim
where they are valid commands, on throw-away servers, each step judged works, fails or
unsafe from what it did.

Two sources copied from the dataset's template: one for the logical procedures (its
dumps, restores into a scratch server, restore_test.sh, the BackupManager's full_backup,
verify_backup and cleanup_old_backups), one that archives with the runbook's
archive_command for the physical ones (archiving, base backups, PITR, cleanup_old_wal);
the two halves run side by side. A procedure picked with --only runs with the steps it
needs (the full dump, the -X stream base backup), which are reported too.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.procedures.archiving import archive_with, place_target
from pgvdrill.procedures.pack import LOGICAL, PACK, PHYSICAL, PROCEDURES, PackRun
from pgvdrill.procedures.runbook_logical import damaged_copy, run_logical
from pgvdrill.procedures.runbook_manager import (
    MANAGER,
    cleanup_old_backups,
    cleanup_old_wal,
    full_backup,
    verify_backup,
)
from pgvdrill.procedures.runbook_physical import (
    ARCHIVING,
    BASEBACKUP,
    PITR,
    Pitr,
    archive_command_step,
    archive_wal_sh_step,
    base_backup_step,
    pitr_steps,
    runbook_archiving,
    start_backup_step,
)
from pgvdrill.procedures.steps import Recorder
from pgvdrill.procedures.workspace import Workspace, started
from pgvdrill.verify import snapshot


def run_pack(pack: PackRun) -> None:
    """Run the pack's procedures the run asked for, recording every step: the logical and
    the physical half side by side (each mostly waits on its servers), then the rows put
    in the pack's order."""
    halves = [(half, replace(pack, recorder=Recorder(PACK, pack.recorder.say)))
              for half, names in ((_logical, LOGICAL), (_physical, PHYSICAL))
              if pack.wanted(*names)]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="runbook") as pool:
        for done in [pool.submit(half, part) for half, part in halves]:
            done.result()
    for _, part in halves:
        pack.recorder.results += part.recorder.results
    pack.recorder.order(PROCEDURES)


def _logical(pack: PackRun) -> None:
    backend = pack.backend
    with started(backend, "runbook-source", pack.template) as source, \
            started(backend, "runbook-target") as target, \
            Workspace(backend, "runbook-logical", source.conninfo.passfile) as ws:
        with source.connect(SOURCE_DB) as conn:
            snap = snapshot(conn)
        full = run_logical(pack, source, target, ws, snap)
        if not pack.wanted(MANAGER):
            return
        full_backup(pack, ws, source)
        if full is None:
            for step in ("verify_backup() of a damaged dump", "cleanup_old_backups(days=7)"):
                pack.recorder.skip(MANAGER, step, "the full pg_dump failed")
            return
        damaged = ws.root / "damaged.dump"
        verify_backup(pack, ws, source, damaged if damaged.exists()
                      else damaged_copy(full, damaged))
        cleanup_old_backups(pack, ws, source, full)


def _physical(pack: PackRun) -> None:
    backend = pack.backend
    with started(backend, "runbook-primary", pack.template) as source, \
            Workspace(backend, "runbook-physical", source.conninfo.passfile) as ws:
        wal_dir = ws.directory("wal")
        archive_with(source, runbook_archiving(wal_dir))
        if pack.wanted(ARCHIVING):
            archive_command_step(pack, ws, source, wal_dir)
            archive_wal_sh_step(pack, ws, source)
            archive_with(source, runbook_archiving(wal_dir))
        if not pack.wanted(BASEBACKUP, PITR, MANAGER):
            return
        with source.connect(SOURCE_DB) as conn:
            snap = snapshot(conn)
        if pack.wanted(BASEBACKUP):
            base_backup_step(pack, ws, source, snap, "pg_basebackup -Ft -z -P -v",
                             "-Ft -z -P -v", ws.root / "postgres_tar")
        stream = base_backup_step(pack, ws, source, snap, "pg_basebackup -Ft -z -P -v -X stream",
                                  "-Ft -z -P -v -X stream", ws.root / "postgres_stream")
        if pack.wanted(BASEBACKUP):
            start_backup_step(pack, source)
        if pack.wanted(PITR) and stream is None:
            pack.recorder.skip(PITR, "point-in-time recovery", "the -X stream base backup "
                               "failed")
        elif pack.wanted(PITR) and stream is not None:
            pitr_steps(pack, ws, source, Pitr(wal_dir, stream.path, place_target(source)))
        if pack.wanted(MANAGER):
            if stream is None:
                pack.recorder.skip(MANAGER, "cleanup_old_wal(days=3)",
                                   "the -X stream base backup failed")
            else:
                cleanup_old_wal(pack, ws, source, wal_dir, stream.path)
