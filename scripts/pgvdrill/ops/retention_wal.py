"""Which archived WAL files retention keeps: every file a retained physical backup needs to
recover, every file younger than wal_days, and every timeline history file. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from pgvdrill.errors import BackupError
from pgvdrill.wal.names import DEFAULT_SEGMENT_SIZE, HISTORY_RE, SEGMENT_RE, SEGMENT_SIZES, Segment

DAY = 86400.0

HISTORY_KEPT = ("a timeline history file: always kept (a promoted server picks its new "
                "timeline by probing the archive for history files: without one it could "
                "reuse a timeline id)")


@dataclass(frozen=True)
class Decision:
    """Keep or delete one item: a backup (`name` is its id) or a WAL file (its name)."""

    kind: str  # logical, physical or wal
    name: str
    keep: bool
    why: str
    age_days: float
    bytes: int


@dataclass(frozen=True)
class WalFile:
    name: str  # an archive name: segment, .history, .backup or .partial
    mtime: datetime
    bytes: int


@dataclass(frozen=True)
class WalArchive:
    """The archive's WAL files and what its history files say."""

    files: tuple[WalFile, ...]
    ancestry: Mapping[int, frozenset[int]]  # timeline -> itself and its ancestors
    segment_size: int = DEFAULT_SEGMENT_SIZE


@dataclass(frozen=True)
class Need:
    """The WAL a retained physical backup needs: from its start segment, on its timeline and
    every timeline descending from it, up to segment number `last` (None: onwards)."""

    backup_id: str
    first: Segment
    last: int | None

    def covers(self, segment: Segment, ancestry: Mapping[int, frozenset[int]]) -> bool:
        if segment.number < self.first.number:
            return False
        if self.last is not None and segment.number > self.last:
            return False
        return descends(segment.timeline, self.first.timeline, ancestry)

    def describe(self) -> str:
        end = "onwards" if self.last is None else \
            f"to {Segment(self.first.timeline, self.last, self.first.size).name}"
        return (f"needed by {self.backup_id} to recover (from {self.first.name} {end}, on "
                f"timeline {self.first.timeline} and its descendants)")


def descends(timeline: int, base: int, ancestry: Mapping[int, frozenset[int]]) -> bool:
    """`timeline` is `base` or descends from it. A higher timeline without a history file
    might: it counts as descending (WAL is kept when in doubt)."""
    known = ancestry.get(timeline)
    if timeline == base or known is None:
        return timeline >= base
    return base in known


def segment_size(files: tuple[WalFile, ...]) -> int:
    """The WAL segment size: the size every archived segment has (archived segments are
    whole); BackupError when they disagree or are not a size PostgreSQL allows."""
    sizes = Counter(f.bytes for f in files if SEGMENT_RE.fullmatch(f.name))
    if not sizes:
        return DEFAULT_SEGMENT_SIZE
    if len(sizes) == 1 and next(iter(sizes)) in SEGMENT_SIZES:
        return next(iter(sizes))
    rarest = sizes.most_common()[-1][0]
    odd = next(f.name for f in files if SEGMENT_RE.fullmatch(f.name) and f.bytes == rarest)
    seen = ", ".join(f"{n} of {size} bytes" for size, n in sizes.most_common())
    raise BackupError(f"archived WAL segments differ in size ({seen}; e.g. {odd}): retention "
                      "cannot tell which segments a backup needs",
                      "a segment must be exactly wal_segment_size bytes: run pgvdrill verify "
                      "on the repository and move truncated or foreign files out of the WAL "
                      "archive")


def wal_decisions(archive: WalArchive, needs: list[Need], keep_all: str | None,
                  wal_days: float, now: datetime) -> tuple[Decision, ...]:
    """A decision for every file of `archive`, in name order. `needs` are the retained
    physical backups' needs; `keep_all` (a reason) keeps every file."""
    ordered = sorted(needs, key=lambda n: (n.first.number, n.first.timeline))
    return tuple(_decide(f, archive, ordered, keep_all, wal_days, now)
                 for f in sorted(archive.files, key=lambda f: f.name))


def _decide(file: WalFile, archive: WalArchive, needs: list[Need], keep_all: str | None,
            wal_days: float, now: datetime) -> Decision:
    age = (now - file.mtime).total_seconds() / DAY

    def decision(keep: bool, why: str) -> Decision:
        return Decision("wal", file.name, keep, why, age, file.bytes)

    if HISTORY_RE.fullmatch(file.name):
        return decision(True, HISTORY_KEPT)
    if keep_all is not None:
        return decision(True, keep_all)
    segment = Segment.from_name(file.name, archive.segment_size)
    need = next((n for n in needs if n.covers(segment, archive.ancestry)), None)
    if need is not None:
        return decision(True, need.describe())
    if age <= wal_days:
        return decision(True, f"younger than {wal_days:g} days")
    return decision(False, f"older than {wal_days:g} days and needed by no retained "
                           "physical backup")
