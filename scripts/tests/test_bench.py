"""The benchmark's pure logic: sizes, medians, ratios, maintenance_work_mem sizing and the
report's bench section (no server; `pgvdrill bench` itself runs in drills/test_bench.py)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pgvdrill.bench.measure import Run, Sample, disk_bytes, median_sample
from pgvdrill.bench.modes import COMPARISONS, MODES, select
from pgvdrill.bench.payload import bench_section, payload, table
from pgvdrill.bench.ratios import Comparison, ratios
from pgvdrill.bench.rto import DEFAULT_BYTES, MIB, mem_total, size_maintenance_work_mem
from pgvdrill.bench.run import BenchResult, Failure, Measured
from pgvdrill.bench.sizes import DEFAULT_SIZES, Size, parse_size, parse_sizes
from pgvdrill.errors import ConfigError, ToolError
from pgvdrill.statement_log import pgoptions

GIB = 1024 * MIB


def run(mode: str, size: str, seconds: float, kind: str = "backup") -> Run:
    return Run(mode, "backup" if kind == "backup" else "restore", size, 1000, Sample(seconds, 10))


# --- sizes ------------------------------------------------------------------------------

def test_sizes_parse_in_order() -> None:
    assert parse_sizes(" 2000x64, 100000X768 ,") == [Size(2000, 64), Size(100000, 768)]
    assert [s.key for s in parse_sizes(DEFAULT_SIZES)] == DEFAULT_SIZES.split(",")


@pytest.mark.parametrize("text", ["2000", "x64", "2000x", "2000*64", "-5x3", "2e3x64", "ax b"])
def test_size_not_rows_x_dim(text: str) -> None:
    with pytest.raises(ConfigError, match="ROWSxDIM"):
        parse_size(text)


@pytest.mark.parametrize(("text", "words"), [("2000x4000", "outside 1..2000"),
                                             ("5x16", "at least 10")])
def test_size_the_dataset_cannot_have(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_size(text)


def test_sizes_once_each_and_at_least_one() -> None:
    with pytest.raises(ConfigError, match="2000x64 given twice"):
        parse_sizes("2000x64,500x16,2000X64")
    with pytest.raises(ConfigError, match="no size"):
        parse_sizes(" , ")


# --- measurements -----------------------------------------------------------------------

def test_median_of_repetitions() -> None:
    assert median_sample([Sample(3.0, 30), Sample(1.0, 10), Sample(2.0, 21)]) == Sample(2.0, 21)
    assert median_sample([Sample(1.0, 10), Sample(4.0, 11)]) == Sample(2.5, 10)
    assert median_sample([Sample(0.5, 7)]) == Sample(0.5, 7)
    with pytest.raises(ValueError, match="no samples"):
        median_sample([])


def test_disk_bytes_of_file_and_directory(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a").write_bytes(b"x" * 5)
    (tmp_path / "d" / "sub" / "b").write_bytes(b"x" * 7)
    assert disk_bytes(tmp_path / "d" / "a") == 5
    assert disk_bytes(tmp_path / "d") == 12


# --- ratios -----------------------------------------------------------------------------

def test_ratio_is_a_over_b_per_size_and_only_when_both_ran() -> None:
    compare = [Comparison("harness overhead", "dump:x", "pgvdrill dump:x", "raw dump:x"),
               Comparison("settings", "never measured", "pgvdrill dump:x", "raw dump:y")]
    runs = [run("pgvdrill dump:x", "small", 1.2), run("raw dump:x", "small", 1.0),
            run("pgvdrill dump:x", "large", 12.0), run("raw dump:x", "large", 8.0),
            run("raw dump:y", "small", 0.0)]
    found = ratios(runs, compare)
    assert [(r.size_key, r.ratio) for r in found] == [("small", pytest.approx(1.2)),
                                                      ("large", pytest.approx(1.5))]
    assert found[1].line() == ("harness overhead, dump:x @ large: pgvdrill 12.00 s / "
                               "raw 8.00 s = 1.50x")
    assert found[0].as_dict() == {
        "name": "harness overhead", "what": "dump:x", "size_key": "small",
        "a": "pgvdrill dump:x", "a_seconds": 1.2, "b": "raw dump:x", "b_seconds": 1.0,
        "ratio": 1.2}


def test_every_comparison_names_runs_the_modes_record() -> None:
    recorded = {name for mode in MODES.values() for name, _ in mode.steps}
    for c in COMPARISONS:
        assert {c.a, c.b} <= recorded, c
    overheads = {c.what for c in COMPARISONS if c.name == "harness overhead"}
    assert overheads == {m.name for m in MODES.values() if m.raw is not None}
    assert all(m.kind == "restore" for m in MODES.values() if m.raw is None)


def test_modes_selected_by_name_group_or_all() -> None:
    assert [m.name for m in select(["restore:fresh", "basebackup"])] == [
        "basebackup:tar-gz", "basebackup:tar-stream", "basebackup:plain", "restore:fresh"]
    assert select(["all"]) == list(MODES.values())
    assert {m.kind for m in select(["dump"])} == {"backup"}


def test_pgoptions_sets_each_parameter() -> None:
    assert pgoptions((("maintenance_work_mem", "512MB"),
                      ("max_parallel_maintenance_workers", "2"))) == (
        "-c maintenance_work_mem=512MB -c max_parallel_maintenance_workers=2")


# --- maintenance_work_mem -------------------------------------------------------------

def test_sizing_twice_the_largest_hnsw_index_in_whole_mib() -> None:
    sized = size_maintenance_work_mem(("docs_hnsw", 300 * MIB + 1), 24 * GIB, 2)
    assert sized.bytes == 601 * MIB
    assert sized.setting == "601MB"
    assert "docs_hnsw" in sized.reason and "300.0 MiB" in sized.reason


def test_sizing_never_below_the_default() -> None:
    for index in (None, ("small", 10 * MIB)):
        assert size_maintenance_work_mem(index, 24 * GIB, 2).bytes == DEFAULT_BYTES
    assert "no HNSW index" in size_maintenance_work_mem(None, 24 * GIB, 2).reason


def test_sizing_capped_by_a_share_of_memory_over_the_jobs() -> None:
    assert size_maintenance_work_mem(("big", 10 * GIB), 24 * GIB, 2).bytes == 3 * GIB
    assert size_maintenance_work_mem(("big", 10 * GIB), 24 * GIB, 4).bytes == 1536 * MIB
    assert size_maintenance_work_mem(("big", 10 * GIB), 128 * MIB, 8).bytes == DEFAULT_BYTES


def test_mem_total_from_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemFree:  1000 kB\nMemTotal:       24567892 kB\n")
    assert mem_total(meminfo) == 24567892 * 1024
    meminfo.write_text("MemFree:  1000 kB\n")
    with pytest.raises(ValueError, match="no MemTotal"):
        mem_total(meminfo)


# --- report -----------------------------------------------------------------------------

def _result() -> BenchResult:
    result = BenchResult(server={"backend": "embedded", "major": 18})
    for size, source_bytes, scale in ((Size(500, 16), 9_000_000, 1.0),
                                      (Size(2000, 32), 20_000_000, 3.0)):
        result.sizes.append(Measured(size, source_bytes))
        result.runs += [
            Run("pgvdrill dump:custom-z9", "backup", size.key, source_bytes,
                Sample(0.3 * scale, 100)),
            Run("raw dump:custom-z9", "backup", size.key, source_bytes, Sample(0.2 * scale, 100)),
            Run("pgvdrill restore:fresh", "restore", size.key, source_bytes,
                Sample(0.5 * scale, 100))]
    return result


def test_payload_has_the_bench_section_of_the_report_contract() -> None:
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    found = json.loads(json.dumps(payload(_result(), "rid", started, started)))
    assert {"run_id", "started", "finished", "source", "environment", "server", "ok",
            "bench"} <= set(found)
    assert found["source"] == "pgvdrill bench" and found["ok"] is True
    bench = found["bench"]
    assert bench["sizes"] == [{"key": "500x16", "rows": 500, "dim": 16, "source_bytes": 9_000_000},
                              {"key": "2000x32", "rows": 2000, "dim": 32,
                               "source_bytes": 20_000_000}]
    assert all(set(r) == {"mode", "kind", "size_key", "source_bytes", "seconds", "bytes"}
               for r in bench["runs"])
    assert [(r["size_key"], r["ratio"]) for r in bench["ratios"]] == [("500x16", 1.5),
                                                                      ("2000x32", 1.5)]
    assert all(set(r) == {"name", "what", "size_key", "a", "a_seconds", "b", "b_seconds",
                          "ratio"} and math.isfinite(r["ratio"]) for r in bench["ratios"])


def test_a_failed_measurement_fails_the_run() -> None:
    result = _result()
    result.failures.append(Failure("restore:psql", "500x16",
                                   ToolError(["psql"], 3, "boom", "a hint")))
    found = payload(result, "rid", datetime.now(UTC), datetime.now(UTC))
    assert found["ok"] is False
    assert found["problems"] == [result.failures[0].line()]
    assert "restore:psql @ 500x16 FAILED: psql exited with code 3" in found["problems"][0]
    assert bench_section(result) == found["bench"]


def test_table_groups_runs_by_mode_in_sweep_order() -> None:
    lines = table(_result().runs)
    assert lines[0].split() == ["mode", "size", "seconds", "bytes"]
    assert [line.split()[:3] for line in lines[1:3]] == [
        ["pgvdrill", "dump:custom-z9", "500x16"], ["pgvdrill", "dump:custom-z9", "2000x32"]]
    assert lines[-1].split() == ["pgvdrill", "restore:fresh", "2000x32", "1.50", "100"]
