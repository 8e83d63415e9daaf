"""Which catalog backup a restore uses (an id, or `latest`: the newest that ends before the
recovery target), and the recovery target the options name."""

from __future__ import annotations

import argparse
from datetime import datetime

from pgvdrill.errors import BackupError, ConfigError, RestoreError
from pgvdrill.repository import Entry
from pgvdrill.wal.names import parse_lsn
from pgvdrill.wal.pitr import Action, BackupPoint, Target, refuse_before_backup_end

LATEST = "latest"


def parse_time(value: str) -> datetime:
    """An ISO 8601 time with its zone ("2025-11-01 10:00:00+00"); ConfigError otherwise:
    without a zone the server's time zone would decide which moment is meant."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--target-time {value!r} is not an ISO 8601 time",
                          'write it like "2025-11-01 10:00:00+00"') from None
    if moment.tzinfo is None:
        raise ConfigError(f"--target-time {value!r} has no time zone",
                          f'add one, e.g. "{value}+00" for UTC')
    return moment


def target_from(args: argparse.Namespace) -> Target:
    """The recovery target of `restore pitr`'s options (none given: the end of the
    archive)."""
    inclusive = not args.exclusive
    action: Action = args.target_action or "promote"  # argparse allows only these
    if args.target_time is not None:
        target = Target("time", parse_time(args.target_time).isoformat(), inclusive, action)
    elif args.target_xid is not None:
        if not args.target_xid.isdigit():
            raise ConfigError(f"--target-xid {args.target_xid!r} is not a transaction id",
                              "give the number, e.g. 7531 (txid_current() / xid8)")
        target = Target("xid", args.target_xid, inclusive, action)
    elif args.target_lsn is not None:
        try:
            parse_lsn(args.target_lsn)
        except ValueError as exc:
            raise ConfigError(f"--target-lsn: {exc}", "write it like 0/A000028") from None
        target = Target("lsn", args.target_lsn.upper(), inclusive, action)
    elif args.target_name is not None:
        target = Target("name", args.target_name, action=action)
    elif args.target == "immediate":
        target = Target("immediate", action=action)
    else:
        if args.target_action:
            raise ConfigError("--target-action needs a target",
                              "recovery to the end of the archive always promotes")
        target = Target("end")
    if args.exclusive and target.kind not in ("time", "xid", "lsn"):
        raise ConfigError(f"--exclusive applies to time, xid and lsn targets, not "
                          f"{target.kind}", "leave it out")
    return target


def ends_before(entry: Entry, target: Target | None) -> bool:
    """Whether the backup surely became consistent before `target`: by its catalog end
    time (the tool's end, after the backup's own end) or end LSN. A backup cannot be
    placed relative to an xid or a restore point name: those accept any backup."""
    if target is None or target.kind not in ("time", "lsn"):
        return True
    if target.kind == "time":
        return entry.finished_at <= parse_time(target.value)
    return entry.end_lsn is not None and parse_lsn(entry.end_lsn) <= parse_lsn(target.value)


def choose(entries: list[Entry], unreadable: dict[str, str], kind: str, wanted: str,
           target: Target | None = None) -> Entry:
    """The backup `wanted` (an id, or `latest`: the newest of `kind` that ends before
    `target`)."""
    if wanted in unreadable:
        raise BackupError(unreadable[wanted], "restore the entry from an off-site copy "
                          "(pgvdrill sync), or choose another backup")
    if wanted != LATEST:
        found = next((e for e in entries if e.id == wanted), None)
        if found is None:
            raise ConfigError(f"no backup {wanted} in the catalog",
                              "pgvdrill verify --all lists every backup; or use latest")
        if found.kind != kind:
            raise ConfigError(f"{wanted} is a {found.kind} backup, not {kind}",
                              f"choose a {kind} backup, or run restore {found.kind}")
        return found
    of_kind = [e for e in entries if e.kind == kind]
    if not of_kind:
        raise ConfigError(f"no {kind} backup in the catalog",
                          f"take one first: pgvdrill backup {kind}")
    fitting = [e for e in of_kind if ends_before(e, target)]
    if not fitting:
        assert target is not None
        raise RestoreError(f"no {kind} backup ends before the recovery target "
                           f"({target.describe()}); the oldest, {of_kind[0].id}, finished "
                           f"{of_kind[0].finished} at LSN {of_kind[0].end_lsn}",
                           "a base backup is consistent only from its end on: choose a "
                           "later target")
    return fitting[-1]


def refuse_before_backup(entry: Entry, target: Target, point: BackupPoint) -> None:
    """RestoreError for a target before the backup's end: exactly by LSN or by the
    archive's .backup file; without that file at least a time before the backup
    started."""
    refuse_before_backup_end(target, point)
    if target.kind == "time" and point.end_time is None and \
            parse_time(target.value) < datetime.fromisoformat(entry.started):
        raise RestoreError(
            f"recovery target time {target.value} is before base backup {entry.id} started "
            f"({entry.started}): it cannot be recovered to an earlier point",
            "use a base backup taken before the target, or a later target")
