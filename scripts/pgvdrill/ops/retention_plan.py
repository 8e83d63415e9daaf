"""What retention keeps and deletes, and why: the runbook's ages applied backup-aware. Pure:
decisions from catalog entries, the archive's WAL files, a validity check and the time.

A backup is kept while it is younger than its kind's days, when it is the newest valid
backup of its kind (whatever its age; a corrupt newer one does not count), or when it is
the first valid backup of its calendar month (UTC), for monthly_months months. Physical
backups kept by age or as the newest valid pin the WAL from their start segment onwards
(the point-in-time recovery window); one kept only as a monthly copy pins the WAL of its
own start-to-end range, so that a year of monthly copies does not keep a year of WAL.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby

from pgvdrill.config import Retention
from pgvdrill.ops.retention_wal import DAY, Decision, Need, WalArchive, wal_decisions
from pgvdrill.repository import KINDS, Entry
from pgvdrill.wal.names import Segment, parse_lsn

Problems = Callable[[Entry], list[str]]  # how a backup's files differ from its entry


@dataclass(frozen=True)
class Plan:
    now: datetime
    backups: tuple[Decision, ...]  # by kind, oldest first
    wal: tuple[Decision, ...]  # in name order

    @property
    def deletions(self) -> list[Decision]:
        return [d for d in (*self.backups, *self.wal) if not d.keep]


def plan(entries: list[Entry], wal: WalArchive, problems: Problems, policy: Retention,
         now: datetime) -> Plan:
    """Decide every backup in `entries` and every file of `wal`. `problems` is called only
    for the backups whose validity matters (the newest ones, monthly candidates)."""
    backups: list[Decision] = []
    needs: list[Need] = []
    keep_all: str | None = None
    for kind in KINDS:
        for entry, rules in kept_by(kind, entries, problems, policy, now):
            backups.append(_decision(entry, rules, policy, now))
            if kind == "physical" and rules:
                need = wal_need(entry, set(rules) == {"monthly"}, wal.segment_size)
                if isinstance(need, str):
                    keep_all = keep_all or need
                else:
                    needs.append(need)
    if not needs and keep_all is None:
        keep_all = ("no physical backup is retained: nothing marks where recovery would "
                    "start, so no WAL is deleted")
    return Plan(now, tuple(backups), wal_decisions(wal, needs, keep_all, policy.wal_days, now))


def kept_by(kind: str, entries: list[Entry], problems: Problems, policy: Retention,
            now: datetime) -> list[tuple[Entry, dict[str, str]]]:
    """Each backup of `kind`, oldest first, with the rules that keep it (rule -> why; none:
    it goes)."""
    of_kind = sorted((e for e in entries if e.kind == kind), key=lambda e: (e.finished_at, e.id))
    days = kind_days(kind, policy)
    newest, corrupt = _newest_valid(of_kind, problems)
    monthly = _monthly(of_kind, problems, policy.monthly_months, now)
    kept = []
    for entry in of_kind:
        rules = {}
        if age_days(entry, now) <= days:
            rules["age"] = f"within {days:g} days"
        if entry is newest:
            rules["newest"] = f"the newest valid {kind} backup, kept whatever its age" + \
                (f" (newer: {'; '.join(corrupt)})" if corrupt else "")
        if entry.id in monthly:
            rules["monthly"] = monthly[entry.id]
        kept.append((entry, rules))
    return kept


def kind_days(kind: str, policy: Retention) -> float:
    return policy.logical_days if kind == "logical" else policy.physical_days


def age_days(entry: Entry, now: datetime) -> float:
    return (now - entry.finished_at).total_seconds() / DAY


def _decision(entry: Entry, rules: dict[str, str], policy: Retention, now: datetime
              ) -> Decision:
    days = kind_days(entry.kind, policy)
    why = "; ".join(rules.values()) or (f"older than {days:g} days, not the newest valid "
                                        f"{entry.kind} backup, not a monthly copy")
    return Decision(entry.kind, entry.id, bool(rules), why, age_days(entry, now),
                    entry.size_bytes)


def _newest_valid(of_kind: list[Entry], problems: Problems) -> tuple[Entry | None, list[str]]:
    """The newest backup whose files match its entry, and what is wrong with newer ones."""
    corrupt: list[str] = []
    for entry in reversed(of_kind):
        found = problems(entry)
        if not found:
            return entry, corrupt
        more = f" (and {len(found) - 1} more problems)" if len(found) > 1 else ""
        corrupt.append(f"{entry.id} is corrupt: {found[0]}{more}")
    return None, corrupt


def _monthly(of_kind: list[Entry], problems: Problems, months: int, now: datetime
             ) -> dict[str, str]:
    """The monthly copies still within `months`: the first valid backup of each calendar
    month, by id -> why."""
    kept = {}
    for month, group in groupby(of_kind, key=lambda e: f"{e.finished_at.astimezone(UTC):%Y-%m}"):
        in_month = list(group)
        if add_months(in_month[-1].finished_at, months) <= now:
            continue  # expired: no need to check its backups
        first = next((e for e in in_month if not problems(e)), None)
        if first is not None:
            until = add_months(first.finished_at, months)
            if until > now:
                kept[first.id] = (f"the first valid {first.kind} backup of {month}: a monthly "
                                  f"copy, kept {months} months (until {until:%Y-%m-%d})")
    return kept


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` `months` calendar months later (the day clamped to the month's length)."""
    year, month = divmod(moment.year * 12 + moment.month - 1 + months, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def wal_need(entry: Entry, monthly_only: bool, segment_size: int) -> Need | str:
    """The WAL the retained physical backup `entry` needs, or why that cannot be told."""
    try:
        if entry.start_lsn is None or entry.timeline is None:
            raise ValueError("no start LSN or timeline")
        first = Segment.containing(parse_lsn(entry.start_lsn), entry.timeline, segment_size)
        last = (Segment.containing(parse_lsn(entry.end_lsn), entry.timeline,
                                   segment_size).number
                if monthly_only and entry.end_lsn is not None else None)
    except ValueError as exc:
        return (f"the catalog entry of retained {entry.id} does not say where its WAL starts "
                f"({exc}): no WAL is deleted")
    return Need(entry.id, first, last)
