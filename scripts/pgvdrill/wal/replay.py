"""WAL replay as the server reports it: "redo starts at X" ... "redo done at Y ...
elapsed: S s" in its log, as a timing item (bytes, segments, seconds)."""

from __future__ import annotations

import re

from pgvdrill.timing import Item
from pgvdrill.wal.names import DEFAULT_SEGMENT_SIZE, parse_lsn

_LSN = r"[0-9A-F]+/[0-9A-F]+"
_STARTS = re.compile(rf"redo starts at ({_LSN})")
_DONE = re.compile(rf"redo done at ({_LSN}) .*elapsed: ([0-9.]+) s")


def replay_item(log: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> Item | None:
    """The last complete replay the log reports, or None (no redo was needed, or the
    server has not finished it)."""
    starts, done = _STARTS.findall(log), _DONE.findall(log)
    if not starts or not done:
        return None
    start, (end_text, seconds) = parse_lsn(starts[-1]), done[-1]
    end = parse_lsn(end_text)
    return Item("wal-replay", f"{starts[-1]} to {end_text}", float(seconds),
                bytes=end - start, segments=end // segment_size - start // segment_size + 1)
