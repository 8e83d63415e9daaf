"""The WAL a provider's backup recovers through, fetched by the drill itself (the scratch
server's restore_command reads only the directory fetched into; it never runs the tool).

First the timeline history files: the backup's own timeline's (from 2 on), then
<tli+1>.history upward until one is missing (as PostgreSQL looks for the latest timeline).
Then the segments from the backup's start on, each from the newest timeline of the
followed history that has it (as recovery reads them), until one is missing: the archive's
end, or a gap. The archive's own listing (Provider.wal_names) tells which: a segment it
lists beyond the last one fetched, on that history, means the missing one is a WAL file
missing from the archive. A tool that cannot list its archive leaves the source's word:
the last segment its archiver archived (pg_stat_archiver), when that is on the history
and beyond the missing one, was archived and is gone (when the archive gave at least one
segment: else it may not be where the source archives). Without a listing, the source's
WAL position read before the drill (pg_current_wal_lsn()) also tells: a missing segment
more than one segment before the one the source was writing was due in the archive (the
one just completed may still be on its way): WAL missing from the archive or never
archived (again only when the archive gave at least one segment: one that gives none may
be no archive of the source's, or none at all). When none of them can tell, the archive's
end is unknown (`unknown`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pgvdrill.errors import BackupError
from pgvdrill.providers.base import Provider
from pgvdrill.wal.continuity import Span, read_history
from pgvdrill.wal.names import SEGMENT_RE, Segment, format_lsn, history_name
from pgvdrill.wal.pitr import Reach
from pgvdrill.wal.timelines import MAX_HISTORY_BYTES


@dataclass(frozen=True)
class FetchedWal:
    """What was fetched into `directory`: history files, then `segments` in recovery's
    order without a gap; `missing`: the first segment the archive did not give (its end,
    or a gap); `beyond`: what lies after it on the followed history, as `witness` says
    (the archive's listing, else the source's archiver; None: neither can tell, so a gap
    there goes unseen)."""

    directory: Path
    histories: tuple[str, ...]
    segments: tuple[str, ...]
    missing: str
    beyond: tuple[str, ...] | None
    segment_size: int
    witness: str = "its listing"
    source_lsn: int | None = None  # without a listing: the source's WAL position before

    def problems(self, tool: str) -> list[str]:
        """A WAL file missing from the archive: named, with what lies beyond it (or with
        where the source's WAL already was)."""
        start = Segment.from_name(self.missing, self.segment_size).start
        if self.beyond:
            return [f"WAL segment {self.missing} is missing from {tool}'s archive, which "
                    f"holds later WAL ({self.beyond[0]} .. {self.beyond[-1]}, as "
                    f"{self.witness} says): recovery cannot get past {format_lsn(start)}"]
        if self._behind():
            assert self.source_lsn is not None
            return [f"WAL segment {self.missing} is not in {tool}'s archive, which ends at "
                    f"{format_lsn(start)}, while the source's WAL was already at "
                    f"{format_lsn(self.source_lsn)} before the drill: WAL missing from the "
                    f"archive or not archived; recovery cannot get past {format_lsn(start)}"]
        return []

    def unknown(self) -> str | None:
        """Why the archive's end cannot be judged: no listing, no word from the source's
        archiver and no WAL position of the source, or an archive that gave no segment;
        None when it can."""
        if self.beyond is not None:
            return None
        if not self.segments:
            return (f"the archive gave no WAL segment from the backup's start ({self.missing}) "
                    "on: none is configured, or it is not where the source archives; whether "
                    "the WAL after the backup is archived is not judged")
        if self.source_lsn is None:
            return ("neither the archive's listing, the source's archiver nor the source's WAL "
                    f"position can tell whether WAL after {self.segments[-1]} was archived")
        return None

    def _behind(self) -> bool:
        """The source had completed WAL beyond the missing segment, one segment of slack
        (a segment just completed may still be on its way to the archive)."""
        if self.source_lsn is None or not self.segments:
            return False
        missing = Segment.from_name(self.missing, self.segment_size).number
        return missing < self.source_lsn // self.segment_size - 1

    def reach(self) -> Reach | None:
        """Where recovery to the end must get: into the last segment fetched."""
        if not self.segments:
            return None
        last = self.segments[-1]
        return Reach(Segment.from_name(last, self.segment_size).start,
                     f"the start of {last}, the last WAL segment fetched from the archive",
                     past=True)

    def as_dict(self) -> dict[str, object]:
        return {"histories": list(self.histories), "segments": len(self.segments),
                "first": self.segments[0] if self.segments else None,
                "last": self.segments[-1] if self.segments else None,
                "not_in_archive": self.missing,
                "source_wal_lsn": None if self.source_lsn is None else
                format_lsn(self.source_lsn),
                "archive_end": f"a gap, as {self.witness} says" if self.beyond else
                "behind the source's WAL position" if self._behind() else
                f"unknown: {self.unknown()}" if self.unknown() else
                f"{self.missing} and after: not in the archive, as "
                + (self.witness if self.beyond is not None else
                   "the source's WAL position says")}


def fetch_archive(provider: Provider, start_lsn: int, timeline: int, into: Path,
                  segment_size: int, archived: str | None = None,
                  source_lsn: int | None = None) -> FetchedWal:
    """Fetch the WAL recovery from `start_lsn` on `timeline` reads (see the module
    docstring) into the empty directory `into` (`archived`: the source's last archived WAL
    file, `source_lsn`: its WAL position, both read before, untrusted); BackupError for a
    file the archive gave that cannot be what its name says (a history file that does not
    parse, a segment of the wrong size)."""
    listed = provider.wal_names()  # before fetching: what it lists must then be there
    histories = _histories(provider, timeline, into)
    latest = max([timeline, *(int(name[:8], 16) for name in histories)])
    spans = read_history(into, latest)  # checked: BackupError when malformed
    first = start_lsn // segment_size
    segments: list[str] = []
    number = first
    while True:
        tried = [Segment(t, number, segment_size).name for t in _timelines(spans, number,
                                                                          segment_size)]
        fetched = next((name for name in tried if _fetch_segment(provider, name, into,
                                                                 segment_size)), None)
        if fetched is None:
            break
        segments.append(fetched)
        number += 1
    if listed is not None:
        return FetchedWal(into, tuple(histories), tuple(segments), tried[0],
                          _beyond(listed, spans, number, segment_size), segment_size)
    # the archiver's word counts only for an archive that holds the backup's WAL
    said = None if archived is None or not segments or \
        not _on_path(archived, spans, segment_size) else \
        _beyond([archived], spans, number, segment_size)
    return FetchedWal(into, tuple(histories), tuple(segments), tried[0], said, segment_size,
                      f"the source's pg_stat_archiver (last archived: {archived})", source_lsn)


def _histories(provider: Provider, timeline: int, into: Path) -> list[str]:
    """The history files of `timeline` (from 2 on) and of each later one, up to the first
    the archive does not have."""
    found = []
    if timeline > 1 and _fetch(provider, history_name(timeline), into):
        found.append(history_name(timeline))
    following = timeline + 1
    while _fetch(provider, history_name(following), into):
        found.append(history_name(following))
        following += 1
    for name in found:
        if (into / name).stat().st_size > MAX_HISTORY_BYTES:
            raise BackupError(f"timeline history file {name} from the archive is larger than "
                              f"{MAX_HISTORY_BYTES} bytes: not a history file",
                              "inspect the archive")
    return found


def _timelines(spans: Sequence[Span], number: int, size: int) -> list[int]:
    """The timelines of the followed history that can hold segment `number`, newest first
    (a switch segment exists on both sides of the switch; the new one is read)."""
    return [s.timeline for s in reversed(spans)
            if s.begin // size <= number and (s.end is None or number <= s.end // size)]


def _fetch(provider: Provider, name: str, into: Path) -> bool:
    """Fetch `name` into `into`; False (and nothing left behind) when the archive lacks it."""
    dest = into / name
    if provider.fetch_wal(name, dest):
        if dest.is_symlink() or not dest.is_file():
            raise BackupError(f"{provider.type} fetched {name} as something other than a "
                              "regular file", "inspect the archive and the provider's tool")
        return True
    dest.unlink(missing_ok=True)
    return False


def _fetch_segment(provider: Provider, name: str, into: Path, size: int) -> bool:
    if not _fetch(provider, name, into):
        return False
    got = (into / name).stat().st_size
    if got != size:
        raise BackupError(f"WAL segment {name} from {provider.type}'s archive is {got} bytes, "
                          f"not the segment size {size}: truncated or not a segment",
                          "repair the archive from another copy")
    return True


def _beyond(listed: Sequence[str], spans: Sequence[Span], number: int, size: int
            ) -> tuple[str, ...]:
    """The segments in `listed` (untrusted names: others are ignored) from segment
    `number` on, on the followed history."""
    found = [name for name in listed if _on_path(name, spans, size)
             and Segment.from_name(name, size).number >= number]
    return tuple(sorted(found, key=lambda n: Segment.from_name(n, size).number))


def _on_path(name: str, spans: Sequence[Span], size: int) -> bool:
    """`name` (untrusted) is a segment on the followed history."""
    if not SEGMENT_RE.fullmatch(name):
        return False
    segment = Segment.from_name(name, size)
    return segment.timeline in _timelines(spans, segment.number, size)
