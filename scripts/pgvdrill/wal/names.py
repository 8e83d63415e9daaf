"""WAL file names and LSNs: parsing, formatting, and which names an archive may hold."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
SEGMENT_SIZES = frozenset(1 << n for n in range(20, 31))  # PostgreSQL allows 1 MB..1 GB
# XLogLongPageHeaderData, at the start of every segment: magic, info, timeline, pageaddr,
# rem_len, system identifier, segment size, block size
LONG_HEADER = struct.Struct("<HHIQI4xQII")

SEGMENT_RE = re.compile(r"[0-9A-F]{24}")
HISTORY_RE = re.compile(r"[0-9A-F]{8}\.history")
BACKUP_RE = re.compile(r"[0-9A-F]{24}\.[0-9A-F]{8}\.backup")
PARTIAL_RE = re.compile(r"[0-9A-F]{24}\.partial")
ARCHIVE_NAMES = (SEGMENT_RE, HISTORY_RE, BACKUP_RE, PARTIAL_RE)


def is_archive_name(name: str) -> bool:
    """A WAL segment, timeline history, backup history or .partial segment name (and
    therefore a bare file name: no directory part, no dot-dot)."""
    return any(pattern.fullmatch(name) for pattern in ARCHIVE_NAMES)


def recorded_segment_size(header: bytes) -> int | None:
    """The segment size a segment's long page header records, when it is one PostgreSQL
    allows (None: too short, or no valid size: not a segment's start)."""
    if len(header) < LONG_HEADER.size:
        return None
    size: int = LONG_HEADER.unpack(header[:LONG_HEADER.size])[6]
    return size if size in SEGMENT_SIZES else None


def parse_lsn(text: str) -> int:
    """'16/B374D848' -> its 64-bit position; ValueError for anything else."""
    match = re.fullmatch(r"\s*([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})\s*", text)
    if match is None:
        raise ValueError(f"not an LSN (like 0/A000028): {text!r}")
    return int(match.group(1), 16) << 32 | int(match.group(2), 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


@dataclass(frozen=True, order=True)
class Segment:
    """One WAL segment: its timeline and number (in units of the segment size)."""

    timeline: int
    number: int
    size: int = DEFAULT_SEGMENT_SIZE

    @classmethod
    def containing(cls, lsn: int, timeline: int, size: int = DEFAULT_SEGMENT_SIZE) -> Segment:
        return cls(timeline, lsn // size, size)

    @classmethod
    def from_name(cls, name: str, size: int = DEFAULT_SEGMENT_SIZE) -> Segment:
        if not SEGMENT_RE.fullmatch(name[:24]):
            raise ValueError(f"not a WAL segment name: {name!r}")
        per_id = 0x100000000 // size
        return cls(int(name[:8], 16), int(name[8:16], 16) * per_id + int(name[16:24], 16), size)

    @property
    def name(self) -> str:
        per_id = 0x100000000 // self.size
        return f"{self.timeline:08X}{self.number // per_id:08X}{self.number % per_id:08X}"

    @property
    def start(self) -> int:
        """LSN of the segment's first byte."""
        return self.number * self.size

    @property
    def end(self) -> int:
        """LSN just past the segment's last byte."""
        return (self.number + 1) * self.size

    def on(self, timeline: int) -> Segment:
        return Segment(timeline, self.number, self.size)


def history_name(timeline: int) -> str:
    return f"{timeline:08X}.history"
