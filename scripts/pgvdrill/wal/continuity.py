"""Can an archive carry recovery from a base backup's start to a target? Every segment
from the start LSN to the target, on the timeline recovery would read it from (following
timeline history files), must be there; the first missing one is named."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from pgvdrill.errors import BackupError
from pgvdrill.wal.names import (
    DEFAULT_SEGMENT_SIZE,
    HISTORY_RE,
    LONG_HEADER,
    Segment,
    format_lsn,
    history_name,
)
from pgvdrill.wal.timelines import read_history_file


@dataclass(frozen=True)
class Span:
    """Where a timeline is the one to follow: from `begin` (its branch point) to `end`."""

    timeline: int
    begin: int
    end: int | None  # None: the target timeline, open-ended


def read_history(archive: Path, timeline: int) -> list[Span]:
    """The spans of `timeline` and its ancestors, oldest first, from its history file
    (timeline 1 has none)."""
    if timeline == 1:
        return [Span(1, 0, None)]
    path = archive / history_name(timeline)
    if not path.is_file():
        raise BackupError(
            f"timeline history file {path.name} is missing from {archive}: recovery "
            f"cannot follow timeline {timeline}",
            "archive the history file from the server that created the timeline "
            "(pg_wal/" + path.name + ")")
    spans: list[Span] = []
    begin = 0
    for switch in read_history_file(path).switches:  # checked: BackupError when malformed
        spans.append(Span(switch.parent, begin, switch.lsn))
        begin = switch.lsn
    return [*spans, Span(timeline, begin, None)]


def latest_timeline(archive: Path) -> int:
    """The highest timeline with a history file in `archive` (1 when there is none)."""
    found = [int(p.name[:8], 16) for p in archive.iterdir() if HISTORY_RE.fullmatch(p.name)]
    return max(found, default=1)


@dataclass(frozen=True)
class Continuity:
    """What an archive holds between a start LSN and a target."""

    timeline: int
    start: int
    target: int | None  # None: as far as the archive goes
    segments: tuple[str, ...]  # file names recovery would read, in order, all present
    reachable: int  # LSN up to which the archive carries recovery (end of its last segment)
    gap: str | None  # the first missing file, said as what it makes impossible
    partial: bool  # the last segment is a pg_receivewal .partial file
    segment_size: int = DEFAULT_SEGMENT_SIZE

    def last_start(self) -> int:
        """Where its last segment starts (recovery to its end must get at least there);
        the start LSN when it has none."""
        if not self.segments:
            return self.start
        return Segment.from_name(self.segments[-1].removesuffix(".partial"),
                                 self.segment_size).start

    def require(self) -> None:
        """Raise `BackupError` naming the gap, if there is one."""
        if self.gap is not None:
            raise BackupError(self.gap, "restore the missing file into the archive (from "
                              "the server's pg_wal or another copy), or recover to a target "
                              f"before {format_lsn(self.reachable)}")


def check_continuity(
    archive: Path, start_lsn: int, start_timeline: int, *, target_lsn: int | None = None,
    timeline: int | None = None, segment_size: int = DEFAULT_SEGMENT_SIZE,
    partial: bool = False,
) -> Continuity:
    """Walk the segments recovery from `start_lsn` on `start_timeline` would read up to
    `target_lsn` (default: the archive's last segment on the path) on `timeline` (default:
    the latest in the archive). `partial` accepts `SEG.partial` for a missing `SEG`."""
    timeline = timeline or latest_timeline(archive)
    spans = read_history(archive, timeline)
    own = [s for s in spans if s.begin <= start_lsn and (s.end is None or start_lsn < s.end)]
    if not own or own[0].timeline != start_timeline:
        raise BackupError(
            f"a backup starting at {format_lsn(start_lsn)} on timeline {start_timeline} is "
            f"not on the history of timeline {timeline} "
            f"({', '.join(f'{s.timeline} from {format_lsn(s.begin)}' for s in spans)})",
            "recover along the backup's own timeline (recovery_target_timeline = "
            f"'{start_timeline}'), or use a backup taken on timeline {timeline}'s history")
    names = set(p.name for p in archive.iterdir())
    first = start_lsn // segment_size
    last = (target_lsn // segment_size if target_lsn is not None
            else _last_on_path(names, spans, first, segment_size))
    present: list[str] = []
    gap: str | None = None
    for number in range(first, last + 1):
        segment = Segment(_timeline_at(spans, number, segment_size), number, segment_size)
        if segment.name in names:
            present.append(segment.name)
        elif partial and f"{segment.name}.partial" in names:
            present.append(f"{segment.name}.partial")
        else:
            gap = (f"segment {segment.name} is missing: recovery beyond "
                   f"{format_lsn(segment.start)} is impossible")
            break
    reachable = (first + len(present)) * segment_size if present else start_lsn
    return Continuity(timeline, start_lsn, target_lsn, tuple(present), reachable, gap,
                      bool(present) and present[-1].endswith(".partial"), segment_size)


def _timeline_at(spans: list[Span], number: int, size: int) -> int:
    """The timeline recovery reads segment `number` from: the newest whose branch point
    lies in or before it (the switch segment is read from the new timeline)."""
    return next(s.timeline for s in reversed(spans) if s.begin // size <= number)


def _last_on_path(names: set[str], spans: list[Span], first: int, size: int) -> int:
    """The highest segment number in the archive on the followed path (at least `first`)."""
    last = first
    for name in names:
        match = re.fullmatch(r"([0-9A-F]{24})(\.partial)?", name)
        if match is None:
            continue
        segment = Segment.from_name(match.group(1), size)
        if segment.number > last and _timeline_at(spans, segment.number, size) == \
                segment.timeline:
            last = segment.number
    return last


# XLogLongPageHeaderData, little-endian: magic, info, timeline, pageaddr, rem_len, padding,
# system identifier, segment size, block size (the first 40 bytes of every segment)


def up_to_foreign(continuity: Continuity, archive: Path, system_identifier: int,
                  segment_size: int = DEFAULT_SEGMENT_SIZE) -> Continuity:
    """`continuity` ending before its first segment of another database system (or of
    another place), which recovery rejects as the end of the WAL; that becomes its gap."""
    for index, name in enumerate(continuity.segments):
        problem = _not_ours(archive, name, system_identifier, segment_size)
        if problem:
            return replace(continuity, segments=continuity.segments[:index], gap=problem,
                           partial=False, reachable=Segment.from_name(name.removesuffix(".partial"),
                                                       segment_size).start)
    return continuity


def _not_ours(archive: Path, name: str, system_identifier: int, segment_size: int
              ) -> str | None:
    """Why segment `name` is not that segment of `system_identifier`'s WAL, if it is not."""
    with (archive / name).open("rb") as handle:
        header = handle.read(LONG_HEADER.size)
    expected = Segment.from_name(name.removesuffix(".partial"), segment_size).start
    if len(header) < LONG_HEADER.size:
        return f"segment {name} is too short to hold a WAL page header"
    *_, pageaddr, _, sysid, _, _ = LONG_HEADER.unpack(header)
    if sysid != system_identifier:
        return (f"segment {name} is from another database system (system identifier "
                f"{sysid}, the backup's is {system_identifier}): recovery would stop "
                f"before {format_lsn(expected)}")
    if pageaddr != expected:
        return (f"segment {name} holds the WAL of {format_lsn(pageaddr)}, not of "
                f"{format_lsn(expected)} (a renamed file): recovery would stop there")
    return None
