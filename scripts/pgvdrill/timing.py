"""Where a restore's time went: consecutive wall-clock phases and per-object items.

Phases follow each other and add up to the restore's wall time; items (a table's data
load, one index build, WAL replay) come from the server's own figures and may overlap
when pg_restore runs with -j.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Phase:
    phase: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class Item:
    phase: str  # data, index, constraint, wal-replay
    item: str
    seconds: float
    bytes: int | None = None
    segments: int | None = None

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"phase": self.phase, "item": self.item,
                                 "seconds": round(self.seconds, 3)}
        if self.bytes is not None:
            found["bytes"] = self.bytes
        if self.segments is not None:
            found["segments"] = self.segments
        return found


def backup_measures(source_bytes: int | None, size_bytes: int | None,
                    seconds: float) -> dict[str, Any]:
    """Derived backup figures (absent when not measurable): the data the backup covered,
    compression ratio (backup size / source size) and source bytes per second."""
    found: dict[str, Any] = {}
    if source_bytes:
        found["source_bytes"] = source_bytes
        if size_bytes is not None:
            found["compression_ratio"] = round(size_bytes / source_bytes, 4)
        if seconds > 0:
            found["backup_bytes_per_second"] = round(source_bytes / seconds)
    return found


def restore_phases(restore: list[Phase], verify_seconds: float) -> list[dict[str, Any]]:
    """The report's phases: the restore's, then verification."""
    return [p.as_dict() for p in [*restore, Phase("verify", verify_seconds)]]
