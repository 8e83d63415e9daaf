"""What a base backup says about itself: its backup_manifest or backup_label."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pgvdrill.errors import BackupError

_LABEL_START = re.compile(r"^START WAL LOCATION: ([0-9A-F]{1,8}/[0-9A-F]{1,8})", re.M)
_LABEL_TIMELINE = re.compile(r"^START TIMELINE: ([0-9]{1,10})$", re.M)
_LSN = re.compile(r"[0-9A-F]{1,8}/[0-9A-F]{1,8}")
MAX_TIMELINE = 0xFFFFFFFF  # PostgreSQL's TimeLineID is 32 bits


@dataclass(frozen=True)
class WalRange:
    """The WAL a backup needs: from `start` to `end` on `timeline`."""

    timeline: int
    start: str
    end: str


def lsn_int(lsn: str) -> int:
    """An LSN such as '0/3000120' as a number of bytes."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def manifest_ranges(manifest: Path) -> list[WalRange]:
    """The WAL ranges of a pg_basebackup manifest, one per timeline, newest first; a
    manifest is untrusted: BackupError unless it lists at least one range, each with a
    timeline in 1..2**32-1 and LSNs (upper case, like 0/3000028) with start <= end."""
    try:
        ranges = json.loads(manifest.read_text())["WAL-Ranges"]
        found = [_range(r) for r in ranges]
    except FileNotFoundError:
        raise BackupError(f"{manifest} is missing",
                          "a pg_basebackup backup always has one: the backup is incomplete"
                          ) from None
    except (ValueError, KeyError, IndexError, TypeError, RecursionError) as exc:
        why = "JSON nested too deep" if isinstance(exc, RecursionError) else exc
        raise BackupError(f"{manifest} is not a readable backup manifest ({why})",
                          "the backup is damaged: take a new one") from None
    if not found:
        raise BackupError(f"{manifest} lists no WAL range",
                          "the backup is damaged: take a new one")
    return found


def _range(item: object) -> WalRange:
    """One manifest WAL-Ranges entry, checked (ValueError/TypeError/KeyError otherwise)."""
    if not isinstance(item, dict):
        raise TypeError(f"WAL range {str(item)[:80]!r} is not an object")
    timeline, start, end = item["Timeline"], item["Start-LSN"], item["End-LSN"]
    if type(timeline) is not int or not 0 < timeline <= MAX_TIMELINE:
        raise ValueError(f"timeline {repr(timeline)[:40]} is not in 1..{MAX_TIMELINE}")
    for lsn in (start, end):
        if not (isinstance(lsn, str) and _LSN.fullmatch(lsn.upper())):
            raise ValueError(f"{repr(lsn)[:40]} is not an LSN like 0/3000028")
    if lsn_int(start) > lsn_int(end):
        raise ValueError(f"the range starts at {start}, after its end {end}")
    return WalRange(timeline, start.upper(), end.upper())


def label_range(label: str, end: str) -> WalRange:
    """The WAL range of a backup from its backup_label text (untrusted: a timeline in
    1..2**32-1, an LSN) and its end (pg_backup_stop's location)."""
    start, timeline = _LABEL_START.search(label), _LABEL_TIMELINE.search(label)
    if start is None or timeline is None or not 0 < int(timeline.group(1)) <= MAX_TIMELINE:
        raise BackupError("backup_label has no START WAL LOCATION/START TIMELINE:\n"
                          + label[:400], "the backup is damaged: take a new one")
    return WalRange(int(timeline.group(1)), start.group(1), end)
