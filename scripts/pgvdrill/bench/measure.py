"""Measurements: one timed step's seconds and bytes, the median over repetitions, and the
runs a benchmark records."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

Kind = Literal["backup", "restore"]
T = TypeVar("T")


@dataclass(frozen=True)
class Sample:
    """One measurement: wall seconds, and the bytes written (backup) or read (restore)."""

    seconds: float
    bytes: int


def median_sample(samples: list[Sample]) -> Sample:
    """The median seconds and the median bytes of repeated measurements."""
    if not samples:
        raise ValueError("no samples")
    return Sample(statistics.median(s.seconds for s in samples),
                  round(statistics.median(s.bytes for s in samples)))


def timed(step: Callable[[], T]) -> tuple[T, float]:
    """What `step` returned, and the wall seconds it took."""
    started = time.monotonic()
    result = step()
    return result, time.monotonic() - started


def disk_bytes(path: Path) -> int:
    """Size of a file, or of every file below a directory."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass(frozen=True)
class Run:
    """A mode measured at one size (the median of its repetitions)."""

    mode: str
    kind: Kind
    size_key: str
    source_bytes: int
    sample: Sample

    def as_dict(self) -> dict[str, object]:
        return {"mode": self.mode, "kind": self.kind, "size_key": self.size_key,
                "source_bytes": self.source_bytes, "seconds": round(self.sample.seconds, 3),
                "bytes": self.sample.bytes}
