"""report_views against a real drill.json (data/drill_sample.json); no server needed."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from pgvdrill import report_views

SAMPLE = Path(__file__).parent / "data" / "drill_sample.json"
NOW = 1_800_000_000.0

# One sample line of the text exposition format: name, optional labels, value, optional ts.
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_VALUE = r"(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)"
SAMPLE_LINE = re.compile(
    rf"^(?P<name>{_NAME})(?:\{{(?P<labels>{_LABEL}(?:,{_LABEL})*)?\}})? {_VALUE}(?: -?\d+)?$")
HELP_LINE = re.compile(rf"^# HELP (?P<name>{_NAME}) (?:[^\\\n]|\\[\\n])*$")
TYPE_LINE = re.compile(
    rf"^# TYPE (?P<name>{_NAME}) (?:counter|gauge|histogram|summary|untyped)$")
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


@pytest.fixture
def payload() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE.read_text())
    return data


def _all_drills(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for key in report_views.SECTIONS for d in payload.get(key) or []]


def _failed(payload: dict[str, Any]) -> dict[str, Any]:
    """A copy of the sample with one logical drill failed by a recall check."""
    broken = copy.deepcopy(payload)
    broken["ok"] = False
    drill = broken["drills"][1]
    drill["ok"] = False
    drill["verification"]["ok"] = False
    check = next(c for c in drill["verification"]["checks"] if c["name"] == "ann_recall")
    check["ok"] = False
    check["problems"] = ["public.documents_embedding_idx: recall@10 0.41 below 0.81"]
    return broken


def parse(text: str) -> dict[str, list[tuple[dict[str, str], str]]]:
    """Validate every line strictly; samples by family, HELP and TYPE once each, first."""
    families: dict[str, list[tuple[dict[str, str], str]]] = {}
    helps: list[str] = []
    types: list[str] = []
    assert text.endswith("\n")
    for line in text.splitlines():
        if match := HELP_LINE.match(line):
            helps.append(match["name"])
            continue
        if match := TYPE_LINE.match(line):
            assert helps and helps[-1] == match["name"], line
            assert match["name"] not in families, f"TYPE after samples: {line}"
            types.append(match["name"])
            continue
        match = SAMPLE_LINE.match(line)
        assert match, f"not a valid exposition line: {line!r}"
        name = match["name"]
        assert types and types[-1] == name, f"sample outside its family: {line}"
        labels = dict(LABEL_PAIR.findall(match["labels"] or ""))
        families.setdefault(name, []).append((labels, line.rsplit(" ", 1)[1]))
    assert len(helps) == len(set(helps)) and len(types) == len(set(types))
    assert set(helps) == set(types) == set(families)
    for name, samples in families.items():
        keys = [tuple(sorted(labels.items())) for labels, _ in samples]
        assert len(keys) == len(set(keys)), f"duplicate series in {name}"
    return families


def test_markdown_has_one_row_per_drill(payload: dict[str, Any]) -> None:
    text = report_views.markdown(payload)
    drills = _all_drills(payload)
    table = [line for line in text.splitlines() if line.startswith("| ")][1:]  # minus header
    assert len(table) == len(drills) == 12
    for drill, row in zip(drills, table, strict=True):
        assert row.startswith(f"| {drill['drill']} | {drill['kind']} |")
        assert row.endswith("| ok |")
    assert {"logical", "physical", "pitr"} == {d["kind"] for d in drills}
    for fact in (payload["run_id"], payload["started"], payload["environment"]["host"],
                 payload["server"]["version"], payload["server"]["pgvector"],
                 payload["dataset"]["key"]):
        assert str(fact) in text
    assert "Drills: 12, ok: 12, failed: 0" in text
    assert "## Problems\n\nNone." in text


def test_markdown_lists_a_failures_problems_under_its_drill(payload: dict[str, Any]) -> None:
    broken = _failed(payload)
    text = report_views.markdown(broken)
    name = broken["drills"][1]["drill"]
    assert text.startswith(f"# pgvdrill run {payload['run_id']}: FAILED")
    assert f"| {name} | logical | custom-z9 | clean |" in text
    row = next(line for line in text.splitlines() if line.startswith(f"| {name} |"))
    assert row.endswith("| **FAILED** |")
    section = text.split(f"### {name} (FAILED)\n", 1)[1].split("\n## ", 1)[0]
    assert "- ann_recall: public.documents_embedding_idx: recall@10 0.41 below 0.81" in section
    assert "Drills: 12, ok: 11, failed: 1" in text


def test_markdown_failed_drill_without_figures(payload: dict[str, Any]) -> None:
    """The shape FailedDrill.as_dict writes: an error, no restore figures."""
    broken = copy.deepcopy(payload)
    broken["physical"] = [{"drill": "physical:tar", "kind": "physical", "ok": False,
                           "backup": {"setting": "tar"}, "error": "pg_basebackup | exit 1"}]
    text = report_views.markdown(broken)
    assert "| physical:tar | physical | tar | unknown | - | - | - | **FAILED** |" in text
    assert "- pg_basebackup \\| exit 1" in text


def test_prometheus_parses_strictly(payload: dict[str, Any]) -> None:
    families = parse(report_views.prometheus(payload, NOW))
    drills = _all_drills(payload)
    success = families["pgvdrill_drill_success"]
    assert len(success) == len(drills) and all(v == "1" for _, v in success)
    assert {tuple(sorted(labels)) for labels, _ in success} == {("backup", "kind", "restore")}
    assert len(families["pgvdrill_restore_seconds"]) == len(drills)
    assert families["pgvdrill_last_drill_success"] == [({}, "1")]
    (_, stamp), = families["pgvdrill_last_drill_timestamp_seconds"]
    assert abs(float(stamp) - 1795511492.30463) < 1e-3  # the sample's "finished"
    backups = {(labels["kind"], labels["backup"]): float(v)
               for labels, v in families["pgvdrill_backup_size_bytes"]}
    assert backups[("logical", "custom-z9")] == 1918711
    assert backups[("physical", "plain")] == 53437999
    assert len(families["pgvdrill_backup_seconds"]) == 6  # 4 dumps, 1 base, 1 PITR base
    assert "pgvdrill_rpo_seconds" not in families  # the sample records no RPO


def test_prometheus_failure_and_rpo(payload: dict[str, Any]) -> None:
    broken = _failed(payload)
    broken["rpo"] = {"wal_archiving": 0.8, "daily_backup": 86400}
    broken.pop("finished")
    families = parse(report_views.prometheus(broken, NOW))
    failed = [labels for labels, v in families["pgvdrill_drill_success"] if v == "0"]
    assert failed == [{"kind": "logical", "backup": "custom-z9", "restore": "clean"}]
    assert families["pgvdrill_last_drill_success"] == [({}, "0")]
    assert dict((labels["mode"], v) for labels, v in families["pgvdrill_rpo_seconds"]) == \
        {"wal_archiving": "0.8", "daily_backup": "86400"}
    broken.pop("started")
    families = parse(report_views.prometheus(broken, NOW))
    assert families["pgvdrill_last_drill_timestamp_seconds"] == [({}, "1800000000")]


def test_label_values_are_escaped(payload: dict[str, Any]) -> None:
    nasty = 'a"b\\c\nd'
    odd = copy.deepcopy(payload)
    odd["drills"][0]["restore"]["setting"] = nasty
    odd["rpo"] = [{"mode": nasty, "seconds": 1.5}]
    text = report_views.prometheus(odd, NOW)
    assert report_views.escape_label(nasty) == 'a\\"b\\\\c\\nd'
    assert 'restore="a\\"b\\\\c\\nd"' in text
    assert 'pgvdrill_rpo_seconds{mode="a\\"b\\\\c\\nd"} 1.5' in text
    parse(text)


def test_write_views_is_atomic(payload: dict[str, Any], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "drill.json").write_text(SAMPLE.read_text())
    paths = report_views.write_views(tmp_path, payload, now=NOW)
    assert paths == [tmp_path / "report.md", tmp_path / "metrics.prom"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drill.json", "metrics.prom",
                                                          "report.md"]
    assert (tmp_path / "report.md").read_text() == report_views.markdown(payload)
    assert (tmp_path / "metrics.prom").read_text() == report_views.prometheus(payload, NOW)

    def fail(src: object, dst: object) -> None:
        raise OSError("disk full")

    before = (tmp_path / "report.md").read_text()
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        report_views.write_views(tmp_path, _failed(payload), now=NOW)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drill.json", "metrics.prom",
                                                          "report.md"]
    assert (tmp_path / "report.md").read_text() == before  # old report intact


@pytest.mark.parametrize("bad", [
    'm{a="x"} 1\nm 2\n',                                     # samples before HELP/TYPE
    '# HELP m h\n# TYPE m gauge\nm{a="x\ny"} 1\n',           # raw newline in a label
    '# HELP m h\n# TYPE m gauge\nm{a="x"y"} 1\n',            # raw quote in a label
    '# HELP m h\n# TYPE m gauge\nm{1a="x"} 1\n',             # invalid label name
    '# HELP m-x h\n# TYPE m-x gauge\nm-x 1\n',               # invalid metric name
    '# HELP m h\n# TYPE m gauge\nm 1\n# HELP m h\n# TYPE m gauge\nm 2\n',  # family twice
    '# HELP m h\n# TYPE m gauge\nm{a="x"} 1\nm{a="x"} 2\n',  # duplicate series
])
def test_parser_rejects_malformed_text(bad: str) -> None:
    with pytest.raises(AssertionError):
        parse(bad)
