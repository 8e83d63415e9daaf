"""The sweep: for each size, a source holding the generated dataset and a target on default
settings; every selected mode measured there (median of `repeat`), failures recorded."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pgvdrill.bench.measure import Run, Sample, median_sample
from pgvdrill.bench.modes import COMPARISONS, Mode
from pgvdrill.bench.ratios import Ratio, ratios
from pgvdrill.bench.rto import rto_setting
from pgvdrill.bench.sizes import Size
from pgvdrill.bench.workbench import Workbench
from pgvdrill.cluster import Backend, Cluster
from pgvdrill.dataset import generate
from pgvdrill.drill.source import SOURCE_DB, dataset_template
from pgvdrill.errors import DrillError


@dataclass(frozen=True)
class Measured:
    """A size of the sweep and the size of its source database."""

    size: Size
    source_bytes: int

    def as_dict(self) -> dict[str, object]:
        return {"key": self.size.key, "rows": self.size.rows, "dim": self.size.dim,
                "source_bytes": self.source_bytes}


@dataclass(frozen=True)
class Failure:
    mode: str
    size_key: str
    error: DrillError

    def line(self) -> str:
        return f"{self.mode} @ {self.size_key} FAILED: {self.error}"


@dataclass
class BenchResult:
    sizes: list[Measured] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    server: dict[str, object] = field(default_factory=dict)

    @property
    def ratios(self) -> list[Ratio]:
        return ratios(self.runs, COMPARISONS)


def run_bench(backend: Backend, sizes: list[Size], modes: list[Mode], repeat: int,
              workdir: Path, say: Callable[[str], None], result: BenchResult) -> BenchResult:
    """Measure each of `modes` at each of `sizes` into `result` (which keeps what was
    measured when a failure stops the run), announcing each figure through `say`."""
    for size in sizes:
        data = generate(size.spec())
        template, load_seconds = dataset_template(backend, data)
        say(f"dataset {size.key}: " + (f"loaded in {load_seconds:.1f}s" if load_seconds
                                       else "cached template"))
        with backend.cluster("bench-source", template=template) as source, \
                backend.cluster("bench-target") as target, \
                tempfile.TemporaryDirectory(prefix="pgvdrill-bench-", dir=workdir) as scratch:
            source_bytes = int(str(source.query(
                f"SELECT pg_database_size('{SOURCE_DB}')")[0][0]))
            result.sizes.append(Measured(size, source_bytes))
            result.server = result.server or _server(backend, source)
            rto, sizing = rto_setting(source)
            say(f"  source database {source_bytes / 1e6:.1f} MB; restore:rto-optimised: {sizing}")
            bench = Workbench(backend, source, target, Path(scratch), rto)
            for mode in modes:
                try:
                    runs = _measure(bench, mode, size.key, source_bytes, repeat)
                except DrillError as exc:
                    result.failures.append(Failure(mode.name, size.key, exc))
                    say("  " + result.failures[-1].line())
                    continue
                result.runs += runs
                say("  " + ", ".join(f"{r.mode} {r.sample.seconds:.2f}s" for r in runs))
    return result


def _measure(bench: Workbench, mode: Mode, size_key: str, source_bytes: int, repeat: int
             ) -> list[Run]:
    """Each of the mode's runs `repeat` times, alternating which goes first, each from a
    checkpoint."""
    steps = mode.steps
    samples: dict[str, list[Sample]] = {name: [] for name, _ in steps}
    for rep in range(repeat):
        for name, step in steps[::-1] if rep % 2 else steps:
            bench.settle()
            samples[name].append(step(bench))
    return [Run(name, mode.kind, size_key, source_bytes, median_sample(found))
            for name, found in samples.items()]


def _server(backend: Backend, source: Cluster) -> dict[str, object]:
    return {**backend.facts(), "version": source.query("SHOW server_version")[0][0]}
