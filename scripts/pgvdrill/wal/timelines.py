"""Timelines in a WAL archive: its `NNNNNNNN.history` files (untrusted: every line checked),
the timelines its segments are on, the ancestry of a timeline, and the branches a given
timeline does not descend from (what a restored copy archiving into production leaves).

A history file of timeline N lists, oldest first, one line per ancestor:
`<parent timeline> <tab> <switch LSN> <tab> <reason>` (PostgreSQL's writeTimeLineHistory);
blank lines and lines starting with `#` are skipped, as PostgreSQL does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from pgvdrill.errors import BackupError
from pgvdrill.wal.names import (
    BACKUP_RE,
    HISTORY_RE,
    PARTIAL_RE,
    SEGMENT_RE,
    Segment,
    format_lsn,
    history_name,
    parse_lsn,
)

MAX_HISTORY_BYTES = 1 << 20  # a history file is a few lines per timeline
MAX_REASON = 1024
_LINE = re.compile(r"(\d{1,10})\s+([0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8})(?:\s+(.*))?")


@dataclass(frozen=True)
class Switch:
    """One ancestor in a history file: the timeline left at `lsn`, and why."""

    parent: int
    lsn: int
    reason: str


@dataclass(frozen=True)
class History:
    """A timeline's history file: its ancestors, oldest first."""

    timeline: int
    switches: tuple[Switch, ...]

    @property
    def ancestry(self) -> tuple[int, ...]:
        """The timeline itself, then its parents, newest first."""
        return (self.timeline, *(s.parent for s in reversed(self.switches)))

    def branch_point(self) -> int:
        """The LSN where this timeline branched off its parent."""
        return self.switches[-1].lsn


def parse_history(name: str, data: bytes) -> History:
    """History file `name`'s content, every line checked; BackupError naming the file and
    line for anything PostgreSQL would reject or a tool should not trust."""
    if not HISTORY_RE.fullmatch(name):
        raise _bad(name, "is not a timeline history file name (NNNNNNNN.history)")
    timeline = int(name[:8], 16)
    if timeline < 2:
        raise _bad(name, "names timeline 1 or 0, which have no history file")
    if len(data) > MAX_HISTORY_BYTES:
        raise _bad(name, f"is larger than {MAX_HISTORY_BYTES} bytes")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise _bad(name, "is not plain text (ASCII)") from None
    switches: list[Switch] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"line {number}"
        match = _LINE.fullmatch(line.strip())
        if match is None:
            raise _bad(name, f"{where} is not '<parent timeline> <switch LSN> <reason>': "
                             f"{line[:80]!r}")
        parent, lsn, reason = int(match[1]), parse_lsn(match[2]), match[3] or ""
        if len(reason) > MAX_REASON or not reason.isprintable():
            raise _bad(name, f"{where}: the reason is not one printable line of at most "
                             f"{MAX_REASON} characters")
        if parent < 1 or parent >= timeline:
            raise _bad(name, f"{where}: parent timeline {parent} is not between 1 and "
                             f"{timeline - 1}")
        if switches and parent <= switches[-1].parent:
            raise _bad(name, f"{where}: timeline {parent} does not follow "
                             f"{switches[-1].parent} (timelines must increase)")
        if switches and lsn < switches[-1].lsn:
            raise _bad(name, f"{where}: switch LSN {format_lsn(lsn)} is before the previous "
                             f"{format_lsn(switches[-1].lsn)}")
        switches.append(Switch(parent, lsn, reason))
    if not switches:
        raise _bad(name, "lists no parent timeline")
    return History(timeline, tuple(switches))


def _bad(name: str, why: str) -> BackupError:
    return BackupError(f"timeline history file {name} {why}",
                       "recovery cannot follow this timeline: restore the file from the "
                       "server that created it (its pg_wal/), or leave the timeline out")


@dataclass
class ArchiveTimelines:
    """The timelines an archive holds: history files (parsed) and other files by
    timeline, and the history files that could not be read."""

    archive: Path
    histories: dict[int, History] = field(default_factory=dict)
    files: dict[int, list[str]] = field(default_factory=dict)  # segments, .partial, .backup
    problems: dict[int, str] = field(default_factory=dict)  # malformed history files

    @property
    def timelines(self) -> list[int]:
        return sorted({*self.files, *self.histories, *self.problems})

    def files_of(self, timeline: int) -> list[str]:
        """The archive's files of `timeline`, its history file first."""
        own = [history_name(timeline)] if timeline in self.histories or \
            timeline in self.problems else []
        return own + sorted(self.files.get(timeline, []))

    def ancestry(self, timeline: int) -> tuple[int, ...] | None:
        """`timeline` and its parents, newest first; None when its history file is
        missing or malformed."""
        if timeline == 1:
            return (1,)
        history = self.histories.get(timeline)
        return history.ancestry if history else None

    def stray_files(self, current: int) -> dict[int, list[str]]:
        """The files of branches the server on `current` never followed: every file of a
        timeline `current` does not descend from, and an ancestor's segments written after
        `current`'s line left it (a former primary that went on)."""
        lineage = self.ancestry(current) or (current,)
        found = {t: self.files_of(t) for t in self.timelines if t not in lineage}
        for timeline in lineage[1:]:
            beyond = self._beyond(timeline, current)
            if beyond:
                found[timeline] = beyond
        return dict(sorted(found.items()))

    def strays(self, current: int) -> list[int]:
        """The timelines with files `current` does not descend from."""
        return list(self.stray_files(current))

    def _beyond(self, ancestor: int, timeline: int) -> list[str]:
        """`ancestor`'s files after the segment where `timeline`'s line left it."""
        history = self.histories.get(timeline)
        left = next((s.lsn for s in history.switches if s.parent == ancestor), None) \
            if history else None
        if left is None:
            return []
        last = Segment.containing(left, ancestor).number
        return [n for n in self.files.get(ancestor, [])
                if Segment.from_name(n[:24]).number > last]

    def branches(self) -> bool:
        """Whether the archive forks: no timeline descends from all the others' files (two
        timelines branched off one, or a parent went on after a child branched off it)."""
        return bool(self.timelines) and all(self.stray_files(t) for t in self.timelines)

    def latest(self) -> int:
        return max(self.timelines, default=1)

    def describe(self, timeline: int) -> str:
        """e.g. `2 (00000002.history: from 1 at 0/5000060: no recovery target specified;
        3 WAL file(s))`."""
        files = len(self.files.get(timeline, []))
        history = self.histories.get(timeline)
        if timeline in self.problems:
            origin = f"{history_name(timeline)} malformed"
        elif history is not None:
            last = history.switches[-1]
            origin = f"{history_name(timeline)}: from {last.parent} at " \
                f"{format_lsn(last.lsn)}" + (f": {last.reason}" if last.reason else "")
        else:
            origin = "no history file" if timeline > 1 else "the first"
        return f"{timeline} ({origin}; {files} WAL file(s))"


def scan(archive: Path) -> ArchiveTimelines:
    """The timelines of the files in `archive` (names PostgreSQL gives them only)."""
    found = ArchiveTimelines(archive)
    if not archive.is_dir():
        return found
    for path in sorted(archive.iterdir()):
        name = path.name
        if HISTORY_RE.fullmatch(name):
            timeline = int(name[:8], 16)
            try:
                found.histories[timeline] = read_history_file(path)
            except BackupError as exc:
                found.problems[timeline] = exc.message
        elif any(p.fullmatch(name) for p in (SEGMENT_RE, PARTIAL_RE, BACKUP_RE)):
            found.files.setdefault(int(name[:8], 16), []).append(name)
    return found


def read_history_file(path: Path) -> History:
    """The history file at `path`, checked (a symlink or larger file is refused)."""
    if path.is_symlink() or not path.is_file():
        raise _bad(path.name, "is a symlink or not a regular file")
    if path.stat().st_size > MAX_HISTORY_BYTES:
        raise _bad(path.name, f"is larger than {MAX_HISTORY_BYTES} bytes")
    return parse_history(path.name, path.read_bytes())


# pg_stat_wal_receiver's columns need pg_read_all_stats; pg_control_checkpoint() EXECUTE
STANDBY_QUERIES = (
    "SELECT received_tli FROM pg_stat_wal_receiver",
    "SELECT timeline_id FROM pg_control_checkpoint()",
)


def current_timeline(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[int | None, str]:
    """The timeline the server is on now, and how that was read (or why it could not be).
    A primary: its current WAL file's name (any role may ask). A standby: the WAL
    receiver's timeline, else its last restartpoint's (each needs a grant)."""
    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    if row is None or not row[0]:
        name = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()
        assert name is not None
        return int(str(name[0])[:8], 16), "its current WAL file"
    for query in STANDBY_QUERIES:
        try:
            with conn.transaction():
                found = conn.execute(query.encode()).fetchone()
        except psycopg.errors.InsufficientPrivilege:
            continue
        if found is not None and isinstance(found[0], int):
            return found[0], f"a standby: {query}"
    return None, ("the source is a standby and its role may read neither "
                  "pg_stat_wal_receiver (grant pg_read_all_stats) nor pg_control_checkpoint() "
                  "(GRANT EXECUTE ON FUNCTION pg_control_checkpoint() TO <role>)")
