"""A drill run ends in numbers an auditor can act on: report files, verdicts, exit codes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from fixtures.cli import Cli

DRILL = ("drill", "--dump", "custom-z1", "--restore", "fresh,table", "--reports-dir",
         "reports")
FILES = ["junit.xml", "metrics.prom", "report.html", "report.json", "report.md"]


def _run_dir(tmp_path: Path) -> Path:
    (run_dir,) = (tmp_path / "reports").iterdir()
    return run_dir


def _verdicts(drill: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["status"] for v in drill["verdicts"]}


def test_reports_drill_writes_every_report_with_verdicts(
        pgvdrill_cli: Cli, cli_cache: Path, tmp_path: Path) -> None:
    result = pgvdrill_cli(*DRILL, "--cache-dir", cli_cache, "--production-size", "10GB")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "targets: " in result.stdout.splitlines()[-1]
    run_dir = _run_dir(tmp_path)
    assert sorted(p.name for p in run_dir.iterdir() if p.is_file()) == FILES
    report = json.loads((run_dir / "report.json").read_text())
    assert report["schema"] == "pgvdrill.report/2" and report["ok"] is True
    assert report["targets"]["rto"]["logical"] == 1800
    assert report["targets"]["production"]["size"] == 10 * 2**30
    whole, table = report["drills"]
    # a few MiB cannot show a per-GB rate: unknown (never pass), with the projection
    assert _verdicts(whole) == {"rto.logical": "pass", "throughput.logical_backup": "unknown",
                                "throughput.logical_restore": "unknown"}
    # a partial restore has no comparable restore rate; the backup was whole
    assert _verdicts(table) == {"rto.logical": "pass", "throughput.logical_backup": "unknown"}
    projected = [v for v in whole["verdicts"] if v["name"].startswith("throughput")]
    assert all(v["projected_seconds"] > 0 and "production size 10.0 GiB" in v["detail"]
               and "too little data" in v["detail"] for v in projected)
    assert whole["measures"]["source_bytes"] == report["dataset"]["bytes"] > 0
    assert 0 < whole["measures"]["compression_ratio"] < 1
    assert [p["phase"] for p in whole["phases"]] == ["schema", "data", "post-data", "verify"]
    assert any(i["phase"] == "index" and i["item"].endswith("(hnsw)") for i in whole["items"])
    assert report["verdicts"] == {"pass": 2, "fail": 0, "unknown": 3}


def test_reports_missed_target_exits_6_and_fails_junit(
        pgvdrill_cli: Cli, cli_cache: Path, tmp_path: Path) -> None:
    """Restores slower than the targets: every drill verified, yet the run fails."""
    targets = tmp_path / "targets.toml"
    targets.write_text('[rto]\nlogical = 0.001\n[throughput]\nlogical_restore = "1TB/s"\n'
                       "[evidence]\nmin_throughput_bytes = 0\n")

    result = pgvdrill_cli(*DRILL, "--cache-dir", cli_cache, "--targets", targets)

    assert result.returncode == 6, result.stdout + result.stderr
    run_dir = _run_dir(tmp_path)
    report = json.loads((run_dir / "report.json").read_text())
    assert report["ok"] is True and report["verdicts"]["fail"] == 3
    assert report["targets"]["source"] == str(targets)
    assert all(_verdicts(d)["rto.logical"] == "fail" for d in report["drills"])
    assert _verdicts(report["drills"][0])["throughput.logical_restore"] == "fail"
    suite = ET.parse(run_dir / "junit.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    assert suite.get("tests") == "2" and suite.get("failures") == "2"
    metrics = (run_dir / "metrics.prom").read_text()
    assert 'pgvdrill_target_status{target="rto.logical",' in metrics


def test_reports_bad_targets_file_is_a_clear_error(
        pgvdrill_cli: Cli, tmp_path: Path) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text("[rto]\nlogcal = 60\n")

    result = pgvdrill_cli(*DRILL, "--targets", targets)

    assert result.returncode == 2
    assert "unknown key [rto] logcal" in result.stderr and "allowed keys" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "reports").exists()
