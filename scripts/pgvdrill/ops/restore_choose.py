"""Which catalog backup a restore uses (an id, or `latest`: the newest that ends before the
recovery target), the recovery target the options name, and the timeline recovery follows
(by default the one the source is on now: never a stray branch in the archive)."""

from __future__ import annotations

import shlex
from datetime import datetime
from pathlib import Path

from pgvdrill.config import Config
from pgvdrill.errors import BackupError, ConfigError, RestoreError
from pgvdrill.ops.verify_repo import source_timeline
from pgvdrill.repository import Entry
from pgvdrill.wal.names import format_lsn, parse_lsn
from pgvdrill.wal.pitr import BackupPoint, Target, refuse_before_backup_end
from pgvdrill.wal.timelines import ArchiveTimelines, scan

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
    if "" in unreadable:  # no catalog/ at all (read_catalog)
        raise BackupError(unreadable[""], "mount or move it back, then run the restore again")
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
                              f"choose a {kind} backup (pgvdrill verify --all lists them), "
                              f"or restore it as what it is (pgvdrill restore {found.kind} "
                              "--help)")
        return found
    of_kind = [e for e in entries if e.kind == kind]
    if unreadable:  # one of them may be the newest: latest cannot be told
        listed = "\n".join(f"  - {problem}" for problem in unreadable.values())
        newest = [e for e in of_kind if ends_before(e, target)][-1:]
        raise BackupError(f"latest is not chosen while the catalog holds invalid entries "
                          f"(one may be the newest {kind} backup):\n{listed}",
                          "name the backup instead of latest" + "".join(
                              f" (the newest valid one is {e.id}, finished {e.finished})"
                              for e in newest) + ", or restore the invalid entries from an "
                          "off-site copy; pgvdrill verify names every problem")
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


def target_options(target: Target) -> list[str]:
    """The restore pitr options that name `target` (without its timeline)."""
    options = {"time": ["--target-time", target.value], "xid": ["--target-xid", target.value],
               "lsn": ["--target-lsn", target.value], "name": ["--target-name", target.value],
               "immediate": ["--target", "immediate"], "end": []}[target.kind]
    if target.kind in ("time", "xid", "lsn") and not target.inclusive:
        options.append("--exclusive")
    if target.kind != "end" and target.action != "promote":
        options += ["--target-action", target.action]
    return options


def pitr_command(config: Config, backup: str, pgdata: Path, options: list[str]) -> str:
    """A `pgvdrill restore pitr` command line that the parser accepts."""
    return shlex.join(["pgvdrill", "restore", "pitr", backup, "--pgdata", str(pgdata),
                       *options, "--config", str(config.path)])


def choose_timeline(config: Config, archive: Path, entry: Entry, point: BackupPoint,
                    target: Target, pgdata: Path, wanted: str | None) -> tuple[str, str]:
    """recovery_target_timeline for `wanted` (None: the source's current timeline, else the
    archive's only lineage) and a line saying which timeline recovery follows and why.
    RestoreError for a fork with the source's timeline unknown, or a timeline that does
    not descend from the backup's."""
    found = scan(archive)
    if wanted == "latest":
        latest = found.latest()
        _require_descends(found, latest, point)
        return "latest", (f"timeline: following latest (timeline {latest} now: the newest in "
                          f"the archive{_others(found, latest)}); any newer timeline archived "
                          "before recovery reaches it is followed too")
    if wanted is None or wanted == "current":
        current, how = source_timeline(config)
        if current is not None:
            number, why = current, f"the source's current timeline (read from {how})"
        elif wanted == "current":
            raise RestoreError(f"the source's current timeline cannot be read: {how}",
                               "name the timeline: " + _choices(config, entry, found, target,
                                                                pgdata))
        elif found.branches():
            listed = "; ".join(found.describe(t) for t in found.timelines)
            raise RestoreError(
                f"the archive's timelines fork ({listed}) and the source's current "
                f"timeline is unknown ({how}): pgvdrill will not guess which branch holds "
                "production's newest WAL (nothing was unpacked)",
                "follow the source's timeline, naming it: "
                + _choices(config, entry, found, target, pgdata))
        else:
            number = max(found.timelines, default=point.timeline)
            why = (f"the archive's only lineage; the source's current timeline is unknown "
                   f"({how})")
    else:
        number, why = int(wanted), "as --target-timeline asks"
    _require_descends(found, number, point)
    return str(number), f"timeline: following {number}, {why}{_others(found, number)}"


def _others(found: ArchiveTimelines, followed: int) -> str:
    strays = found.strays(followed)
    if not strays:
        return ""
    return (f"; not following timeline(s) {', '.join(map(str, strays))}: branches timeline "
            f"{followed} does not descend from (pgvdrill verify --all names their files)")


def _choices(config: Config, entry: Entry, found: ArchiveTimelines, target: Target,
             pgdata: Path) -> str:
    return " or ".join(pitr_command(config, entry.id, pgdata,
                                    [*target_options(target), "--target-timeline", str(t)])
                       for t in (found.timelines or [1]))


def _require_descends(found: ArchiveTimelines, timeline: int, point: BackupPoint) -> None:
    """RestoreError unless recovery from the backup can follow `timeline`: it is the
    backup's, or its history branches off the backup's timeline after the backup's end."""
    if timeline == point.timeline:
        return
    if timeline in found.problems:
        raise RestoreError(found.problems[timeline], "choose another --target-timeline, or "
                           "restore the history file from the server that created it")
    history = found.histories.get(timeline)
    if history is None:
        raise RestoreError(f"timeline {timeline} has no history file in {found.archive}: "
                           "recovery cannot follow it",
                           f"copy pg_wal/{timeline:08X}.history from the server on timeline "
                           f"{timeline} into the archive, or choose another --target-timeline")
    leaves = next((s for s in history.switches if s.parent == point.timeline), None)
    if leaves is None or leaves.lsn < point.end_lsn:
        where = ("does not descend from" if leaves is None else
                 f"left it at {format_lsn(leaves.lsn)}, before the backup's end "
                 f"{format_lsn(point.end_lsn)}: it does not descend from")
        raise RestoreError(
            f"timeline {timeline} {where} the backup's timeline {point.timeline} (its "
            f"ancestry: {', '.join(map(str, history.ancestry))})",
            "choose a timeline that descends from the backup's (pgvdrill verify --all lists "
            "them), or a base backup taken on that timeline")
