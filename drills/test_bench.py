"""`pgvdrill bench` as an operator runs it: two tiny sizes, every mode, the ratios printed
and the report's bench section complete. Speed is never asserted (the machines are shared
and noisy): only that every figure was measured, positive and finite."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.cli import backend_args
from fixtures.clusters import shared_tmp
from fixtures.options import DrillOptions
from pgvdrill.bench.modes import COMPARISONS, MODES

SIZES = ("500x16", "2000x32")


def _backend_args(options: DrillOptions) -> list[str]:
    return [*backend_args(options),
            *(["--workdir", str(options.workdir)] if options.workdir else [])]


@pytest.mark.bench
def test_bench_cli(options: DrillOptions, tmp_path: Path,
                   tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> None:
    cache = shared_tmp(tmp_path_factory, worker_id) / "pgvdrill-cache"
    result = subprocess.run(
        [sys.executable, "-m", "pgvdrill.cli", "bench", "--sizes", ",".join(SIZES),
         "--cache-dir", str(cache), "--reports-dir", str(tmp_path / "reports"),
         *_backend_args(options)],
        cwd=tmp_path, capture_output=True, text=True, timeout=1200, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    run_dir = next((tmp_path / "reports").glob("*/report.json")).parent
    report = json.loads((run_dir / "report.json").read_text())
    assert (report["source"], report["ok"], report["problems"]) == ("pgvdrill bench", True, [])
    assert report["server"]["pgvector"]
    bench = report["bench"]
    assert [(s["key"], s["rows"], s["dim"]) for s in bench["sizes"]] == [
        ("500x16", 500, 16), ("2000x32", 2000, 32)]
    assert all(s["source_bytes"] > 0 for s in bench["sizes"])

    recorded = {name for mode in MODES.values() for name, _ in mode.steps}
    for size in SIZES:
        runs = [r for r in bench["runs"] if r["size_key"] == size]
        assert sorted(r["mode"] for r in runs) == sorted(recorded), size
        assert all(r["seconds"] > 0 and r["bytes"] > 0 and r["kind"] in ("backup", "restore")
                   for r in runs), runs
        ratios = [r for r in bench["ratios"] if r["size_key"] == size]
        assert [(r["name"], r["what"]) for r in ratios] == [(c.name, c.what) for c in COMPARISONS]
        for ratio in ratios:
            assert math.isfinite(ratio["ratio"]) and ratio["ratio"] > 0, ratio
            assert ratio["a_seconds"] > 0 and ratio["b_seconds"] > 0, ratio

    printed = [line.strip() for line in result.stdout.splitlines()]
    for ratio in bench["ratios"]:
        lead = f"{ratio['name']}, {ratio['what']} @ {ratio['size_key']}: "
        line = next((p for p in printed if p.startswith(lead)), None)
        assert line is not None and line.endswith("x"), (lead, result.stdout)
        assert float(line.rsplit(" = ", 1)[1][:-1]) == pytest.approx(ratio["ratio"], abs=0.01)
    assert printed[-1].startswith("ok: ") and str(run_dir / "report.json") in printed[-1]
    assert (run_dir / "report.md").is_file()
