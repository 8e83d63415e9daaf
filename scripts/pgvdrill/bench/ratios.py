"""Side-by-side ratios of runs measured in the same benchmark run, at the same size."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pgvdrill.bench.measure import Run


@dataclass(frozen=True)
class Comparison:
    """Run `a` against run `b` (mode names): the ratio says how many times b's time a takes."""

    name: str  # the question: "harness overhead", "runbook vs recommended", ...
    what: str
    a: str
    b: str


@dataclass(frozen=True)
class Ratio:
    comparison: Comparison
    size_key: str
    a_seconds: float
    b_seconds: float

    @property
    def ratio(self) -> float:
        return self.a_seconds / self.b_seconds

    def line(self) -> str:
        """E.g. `harness overhead, dump:custom-z9 @ 2000x64: pgvdrill 0.31 s / raw 0.25 s =
        1.24x` (a run's name is shortened where it ends with what is compared)."""
        c = self.comparison
        return (f"{c.name}, {c.what} @ {self.size_key}: {_label(c.a, c.what)} "
                f"{self.a_seconds:.2f} s / {_label(c.b, c.what)} {self.b_seconds:.2f} s = "
                f"{self.ratio:.2f}x")

    def as_dict(self) -> dict[str, object]:
        c = self.comparison
        return {"name": c.name, "what": c.what, "size_key": self.size_key, "a": c.a,
                "a_seconds": round(self.a_seconds, 3), "b": c.b,
                "b_seconds": round(self.b_seconds, 3), "ratio": round(self.ratio, 3)}


def _label(mode: str, what: str) -> str:
    return mode.removesuffix(" " + what) or mode


def ratios(runs: Iterable[Run], comparisons: Iterable[Comparison]) -> list[Ratio]:
    """Every comparison whose two runs were both measured at a size, size by size."""
    seconds = {(r.mode, r.size_key): r.sample.seconds for r in runs}
    sizes = list(dict.fromkeys(size for _, size in seconds))
    return [Ratio(c, size, seconds[c.a, size], seconds[c.b, size])
            for size in sizes for c in comparisons
            if seconds.get((c.a, size), 0.0) > 0 and seconds.get((c.b, size), 0.0) > 0]
