"""What in a repository's wal/ is not an archived WAL file as archive-wal stores it: a
symlink, FIFO, socket or device (never followed, never served or copied), a name that is
not a WAL file's, and a segment whose size is not the segment size it records itself
(the long page header at its start: a truncated or padded copy, or a foreign file)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pgvdrill.repository.paths import open_below, what_is
from pgvdrill.wal.names import LONG_HEADER, SEGMENT_RE, is_archive_name, recorded_segment_size

IN_FLIGHT = re.compile(r"\.(?P<name>.+)\.\d+\.tmp")  # archive-wal's temporary name


def segment_size_problem(fd: int, name: str) -> str | None:
    """Why the open segment `name` is not exactly the segment size its header records."""
    size = os.fstat(fd).st_size
    recorded = recorded_segment_size(os.pread(fd, LONG_HEADER.size, 0))
    if size == recorded:
        return None
    said = (f"its header records {recorded} bytes" if recorded else
            "its header records no valid segment size")
    return (f"WAL segment {name} has {size} bytes, and {said}: a truncated, padded or "
            "foreign file (restore-wal refuses to serve it)")


def wal_file_problems(wal: Path) -> dict[str, str]:
    """Every entry of `wal` that is not a regular archived WAL file of the right size, by
    name, with what is wrong (archive-wal's in-flight temporaries are not)."""
    problems = {}
    for name in sorted(os.listdir(wal)) if wal.is_dir() else []:
        problem = _problem(wal, name)
        if problem:
            problems[name] = f"WAL archive {wal}: {problem}"
    return problems


def _problem(wal: Path, name: str) -> str | None:
    odd = what_is(wal / name)
    if odd is not None:
        return f"{name} is {odd}: never followed, served or copied; move it out of the archive"
    if not is_archive_name(name):
        flight = IN_FLIGHT.fullmatch(name)
        return None if flight and is_archive_name(flight["name"]) else (
            f"{name} is not a WAL file name (a segment, .history, .backup or .partial file); "
            "move it out of the archive")
    if not SEGMENT_RE.fullmatch(name):
        return None
    try:
        fd = open_below(wal, name)
    except OSError as exc:
        return f"{name} cannot be read: {exc}"
    try:
        return segment_size_problem(fd, name)
    finally:
        os.close(fd)
