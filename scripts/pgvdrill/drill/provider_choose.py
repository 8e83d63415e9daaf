"""Which of a provider's backups a DR drill restores: the one named (--backup), else the
newest complete one of each kind; with a recovery target, the newest that finished before
it (time: by its finish time; LSN: by its end LSN), which the target's WAL must follow."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pgvdrill.errors import ConfigError, RestoreError
from pgvdrill.providers.base import ProviderBackup, finished_in_future
from pgvdrill.wal.names import parse_lsn
from pgvdrill.wal.pitr import Target


def named(backups: Sequence[ProviderBackup], backup_id: str, provider: str) -> ProviderBackup:
    """The backup called `backup_id`; ConfigError listing the newest ids otherwise."""
    for backup in backups:
        if backup.id == backup_id:
            return backup
    ids = ", ".join(b.id for b in backups[-5:]) or "none"
    raise ConfigError(f"provider {provider} lists no backup {backup_id!r}",
                      f"choose one it lists (the newest: {ids})")


def newest(backups: Sequence[ProviderBackup], kind: str, target: Target, provider: str
           ) -> ProviderBackup | None:
    """The newest complete `kind` backup `target` can be recovered to from (None: it lists
    no backup of that kind); RestoreError when it lists some, but none before the target,
    or one that finished in the future (which is newest is then unknown). Backups are
    ordered by their finish time where the tool says it, else as listed."""
    of_kind = [b for b in backups if b.kind == kind]
    if not of_kind:
        return None
    now = datetime.now(UTC)
    future = [why for b in of_kind if (why := finished_in_future(b, now))]
    if future:
        raise RestoreError(f"provider {provider}: {future[0]}; which {kind} backup is the "
                           "newest is unknown",
                           "fix the tool's clock or its catalog, or drill a backup by name "
                           "with --backup")
    usable = [b for b in of_kind if before(b, target)]
    if not usable:
        raise RestoreError(
            f"provider {provider} has no {kind} backup that finished before the target "
            f"{target.label()} (of {len(of_kind)}; a backup whose tool lists no finish time "
            "or end LSN cannot be placed before a time or LSN target)",
            "choose a later target, or name a backup with --backup")
    timed = [b for b in usable if b.finished is not None]
    if len(timed) == len(usable):
        return max(usable, key=lambda b: b.finished or datetime.min)
    return usable[-1]


def before(backup: ProviderBackup, target: Target) -> bool:
    """`backup` ended before `target` (always, for a target whose place is not known before
    replaying: end, immediate, xid, name)."""
    if target.kind == "time":
        return backup.finished is not None and \
            backup.finished < datetime.fromisoformat(target.value)
    if target.kind == "lsn":
        return backup.end_lsn is not None and parse_lsn(backup.end_lsn) <= parse_lsn(target.value)
    return True
