"""Every record of the archived WAL read with pg_waldump (`pgvdrill verify --deep`).

The segment checks (continuity, page headers) see a segment zeroed or damaged in its
middle as whole; pg_waldump decodes every record and checks its CRC. The archive is read
per timeline in runs of consecutive segments (a gap ends a run: the segment after it starts
mid-record, which pg_waldump skips to its first whole record). A run's last record may
continue into a segment not archived yet: pg_waldump then asks for that file, which is the
archive's end, not damage. pg_waldump must be of the major that wrote the WAL (a
`ConfigError` otherwise: another major's cannot read it, which says nothing about it).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pgvdrill.capabilities import require_tool_major, wal_major
from pgvdrill.cluster.base import ToolRunner
from pgvdrill.proc.runner import ToolCall
from pgvdrill.wal.names import SEGMENT_RE, Segment, parse_lsn

_AT = re.compile(r"at ([0-9A-F]+/[0-9A-F]+)")
_MISSING = re.compile(r'could not find file "([0-9A-F]{24})"')


@dataclass
class RecordCheck:
    """What reading every archived record found, and what it cost."""

    problems: list[str] = field(default_factory=list)
    segments: int = 0
    bytes: int = 0
    seconds: float = 0.0

    def cost(self) -> str:
        return (f"pg_waldump read {self.segments} segment(s), {self.bytes / 2**20:.1f} MiB, "
                f"in {self.seconds:.1f}s")


def check_records(tools: ToolRunner, wal: Path) -> RecordCheck:
    """pg_waldump over every archived segment of `wal`; each run that does not read to its
    end is a problem naming the first bad record and its segment."""
    started = time.monotonic()
    found = RecordCheck()
    checked: set[int | None] = set()
    for run in runs(wal):
        major = wal_major(wal / run[0].name)
        if major not in checked:
            require_tool_major(tools, "pg_waldump", major, f"the WAL in {wal}")
            checked.add(major)
        found.segments += len(run)
        found.bytes += sum((wal / s.name).stat().st_size for s in run)
        result = tools.run_tool(ToolCall("pg_waldump", ["--quiet", "--path", wal, run[0].name,
                                                        run[-1].name], check=False))
        if result.returncode != 0:
            problem = _problem(result.stderr, run)
            if problem:
                found.problems.append(problem)
    found.seconds = time.monotonic() - started
    return found


def runs(wal: Path) -> Iterator[list[Segment]]:
    """The archived segments of `wal`, per timeline, in runs of consecutive numbers."""
    names = sorted(p.name for p in wal.iterdir() if SEGMENT_RE.fullmatch(p.name))
    if not names:
        return
    size = (wal / names[0]).stat().st_size
    run: list[Segment] = []
    for segment in (Segment.from_name(n, size) for n in names):
        if run and (segment.timeline != run[-1].timeline or
                    segment.number != run[-1].number + 1):
            yield run
            run = []
        run.append(segment)
    yield run


def _problem(stderr: str, run: list[Segment]) -> str:
    """The first bad record pg_waldump reports, with its segment ("" at the archive's end:
    the last record continues into the segment after the run)."""
    lines = [ln.removeprefix("pg_waldump: ").removeprefix("error: ")
             for ln in stderr.strip().splitlines() if ln.strip()]
    missing = _MISSING.search(stderr)
    after = Segment(run[-1].timeline, run[-1].number + 1, run[-1].size)
    if missing and missing.group(1) == after.name:
        return ""
    text = lines[0] if lines else "pg_waldump failed without a message"
    where = _AT.findall(text)
    segment = (Segment.containing(parse_lsn(where[-1]), run[0].timeline, run[0].size).name
               if where else f"{run[0].name}..{run[-1].name}")
    return (f"WAL segment {segment}: pg_waldump cannot read past a record: {text} "
            f"(reading {run[0].name}..{run[-1].name}): recovery through the archive stops "
            "there")
