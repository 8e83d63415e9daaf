"""The benchmark's report: the `bench` section of report.json (reports/README.md) and the
table printed at the end of a run."""

from __future__ import annotations

from datetime import datetime

from pgvdrill.bench.measure import Run
from pgvdrill.bench.run import BenchResult
from pgvdrill.report import run_dir as report

SOURCE = "pgvdrill bench"


def bench_section(result: BenchResult) -> dict[str, object]:
    return {"sizes": [s.as_dict() for s in result.sizes],
            "runs": [r.as_dict() for r in result.runs],
            "ratios": [r.as_dict() for r in result.ratios]}


def payload(result: BenchResult, run_id: str, started: datetime, finished: datetime,
            stopped: BaseException | None = None) -> dict[str, object]:
    """report.json's content (write_json adds the schema); `stopped`: what ended the run
    before it measured everything (its `aborted` record: the error and, when the machine
    failed, the cause)."""
    problems = [f.line() for f in result.failures]
    aborted = report.aborted(stopped) if stopped is not None else None
    return {"run_id": run_id, "started": started.isoformat(), "finished": finished.isoformat(),
            "source": SOURCE, "environment": report.environment(), "server": result.server,
            "ok": not problems and aborted is None,
            "problems": [*problems, *([aborted["error"]] if aborted else [])],
            **({"aborted": {k: aborted[k] for k in ("error", "environment") if k in aborted}}
               if aborted else {}),
            "bench": bench_section(result)}


def table(runs: list[Run]) -> list[str]:
    """One line per run, grouped by mode (in the order measured), sizes in sweep order."""
    modes = list(dict.fromkeys(r.mode for r in runs))
    sizes = list(dict.fromkeys(r.size_key for r in runs))
    ordered = sorted(runs, key=lambda r: (modes.index(r.mode), sizes.index(r.size_key)))
    width = max([len(m) for m in modes] + [4])
    lines = [f"{'mode':{width}}  {'size':>12}  {'seconds':>9}  {'bytes':>14}"]
    lines += [f"{r.mode:{width}}  {r.size_key:>12}  {r.sample.seconds:9.2f}  "
              f"{r.sample.bytes:14,d}" for r in ordered]
    return lines
