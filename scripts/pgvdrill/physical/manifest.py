"""What a base backup says about itself: its backup_manifest or backup_label."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pgvdrill.errors import BackupError

_LABEL_START = re.compile(r"^START WAL LOCATION: ([0-9A-F]+/[0-9A-F]+)", re.M)
_LABEL_TIMELINE = re.compile(r"^START TIMELINE: (\d+)", re.M)


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
    """The WAL ranges of a pg_basebackup manifest, one per timeline, newest first."""
    try:
        ranges = json.loads(manifest.read_text())["WAL-Ranges"]
        return [WalRange(int(r["Timeline"]), r["Start-LSN"], r["End-LSN"]) for r in ranges]
    except FileNotFoundError:
        raise BackupError(f"{manifest} is missing",
                          "a pg_basebackup backup always has one: the backup is incomplete"
                          ) from None
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise BackupError(f"{manifest} is not a readable backup manifest ({exc})",
                          "the backup is damaged: take a new one") from exc


def label_range(label: str, end: str) -> WalRange:
    """The WAL range of a backup from its backup_label text and its end (pg_backup_stop's
    location)."""
    start, timeline = _LABEL_START.search(label), _LABEL_TIMELINE.search(label)
    if start is None or timeline is None:
        raise BackupError(f"backup_label has no START WAL LOCATION/START TIMELINE:\n{label}",
                          "the backup is damaged: take a new one")
    return WalRange(int(timeline.group(1)), start.group(1), end)
