"""report_views against a hand-made v2 report.json (data/report_sample.json); no server."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from pgvdrill.report import html as report_html
from pgvdrill.report import views as report_views
from pgvdrill.report.model import unix_time

SAMPLE = Path(__file__).parent / "data" / "report_sample.json"
PROCEDURES = Path(__file__).parent / "data" / "report_procedures.json"  # a procedures run
README = Path(__file__).parents[2] / "reports" / "README.md"
NOW = 1_800_000_000.0
#: the smallest drill a producer may write: a drill that could not run
BARE = {"drill": "logical:custom-z9->fresh", "kind": "logical", "ok": False,
        "error": "pg_restore | exit 1"}

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


def _section(text: str, heading: str) -> str:
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def _table(section: str) -> list[str]:
    """The body rows of the first table in a section (header and rule left out)."""
    return [line for line in section.splitlines() if line.startswith("| ")][1:]


def test_markdown_has_one_row_per_drill(payload: dict[str, Any]) -> None:
    text = report_views.markdown(payload)
    assert text.startswith(f"# pgvdrill run {payload['run_id']}: FAILED\n")
    rows = _table(_section(text, "Drills"))
    assert len(rows) == len(payload["drills"]) == 11
    assert {d["kind"] for d in payload["drills"]} == {"logical", "physical", "pitr", "rpo"}
    for drill, row in zip(payload["drills"], rows, strict=True):
        assert row.startswith(f"| {drill['drill']} | {drill['kind']} |")
    assert rows[0] == ("| logical:custom-z9->fresh | logical | - | custom-z9 | fresh | 56.0 MiB "
                       "| 41.83 | 23.09 | ok | 2 pass, 1 fail |")
    assert rows[3].endswith("| 26.21 | **FAILED** | 3 pass |")  # verified is not a target
    assert rows[4].endswith("| - | **FAILED** | 1 pass, 2 unknown |")
    for fact in (payload["run_id"], payload["started"], payload["source"],
                 payload["environment"]["host"], payload["server"]["version"],
                 payload["server"]["pgvector"], payload["dataset"]["key"],
                 payload["targets"]["source"], "20000 rows x 384 dims, 135.0 MiB"):
        assert str(fact) in text
    assert "- Drills: 11, verified: 9, failed: 2" in text
    assert "- Targets judged: 19 pass, 3 fail, 3 unknown" in text


def test_markdown_targets_list_every_verdict_with_its_detail(payload: dict[str, Any]) -> None:
    rows = _table(_section(report_views.markdown(payload), "Targets"))
    verdicts = [(d["drill"], v) for d in payload["drills"] for v in d["verdicts"]]
    assert len(rows) == len(verdicts) == 25
    for (drill, verdict), row in zip(verdicts, rows, strict=True):
        assert row.startswith(f"| {drill} | {verdict['name']} | ")
        assert row.endswith(f" | {verdict['detail']} |")
    assert ("| pitr:time | throughput.wal_replay | **fail** | 13.5 MiB/s | 17.8 MiB/s |"
            in "\n".join(rows))
    assert "| rpo:archive_command | rpo.wal_archiving | pass | 2.41 s | 60.00 s |" in rows[-2]


def test_markdown_phases_give_each_index_build_its_own_line(payload: dict[str, Any]) -> None:
    section = _section(report_views.markdown(payload), "Phases")
    fresh = section.split("### logical:custom-z9->fresh\n", 1)[1].split("\n### ", 1)[0]
    assert "Restore (RTO) 23.09 s." in fresh
    assert _table(fresh)[:4] == ["| phase | schema | 0.31 | - |", "| phase | data | 7.92 | - |",
                                 "| phase | post-data | 14.86 | - |",
                                 "| phase | verify | 2.61 | - |"]
    assert "| data | public.documents | 5.84 | 80.0 MiB |" in fresh
    assert "| index | public.documents_embedding_hnsw_cos | 6.31 | - |" in fresh
    assert "| index | public.documents_embedding_half_hnsw_cos | 4.87 | - |" in fresh
    tar = section.split("### physical:tar-gz\n", 1)[1].split("\n### ", 1)[0]
    assert _table(tar) == ["| phase | extract | 3.92 | - |", "| phase | start | 2.92 | - |",
                           "| phase | verify | 2.40 | - |",
                           "| wal-replay | 0/5000028 -> 0/50001A0 | 0.31 | 16.0 MiB |"]


def test_markdown_lists_problems_under_their_drill(payload: dict[str, Any]) -> None:
    section = _section(report_views.markdown(payload), "Problems")
    assert section.count("\n### ") == 2
    plain = section.split("### logical:plain->fresh (FAILED)\n", 1)[1].split("\n###", 1)[0]
    assert plain.count("\n- ") == 1  # the check's problem is the drill's, listed once
    assert "- ann_recall: public.account_behaviors_behavior_ivfflat_l2: recall@10 0.41" in plain
    assert ("### logical:directory-j2->clean (FAILED)\n\n- pg_restore -d "
            "restored_directory_j2_clean") in section


def test_markdown_bench_section(payload: dict[str, Any]) -> None:
    text = report_views.markdown(payload)
    section = _section(text, "Benchmark")
    rows = _table(section)
    runs, ratios = len(payload["bench"]["runs"]), len(payload["bench"]["ratios"])
    assert len(rows) == runs + 1 + ratios  # the ratios table's header counts once
    assert ("| custom-z9 | backup | gaussian-250000x384-s7 | 1.6 GiB | 547.97 | 704.4 MiB |"
            in rows)
    assert ("| z9_vs_z1_backup | pg_dump -Z 9 vs -Z 1, backup time | gaussian-20000x384-s7 "
            "| custom-z9 | 41.83 | custom-z1 | 12.41 | 3.37 |") in rows
    del payload["bench"]
    assert "## Benchmark" not in report_views.markdown(payload)


def test_markdown_procedures_table_has_a_row_per_step() -> None:
    payload = json.loads(PROCEDURES.read_text())
    text = report_views.markdown(payload)
    assert text.startswith(f"# pgvdrill run {payload['run_id']}: ok\n")
    assert "- Procedure steps: 7: 3 works, 2 fails, 2 unsafe\n" in text
    assert "## Drills" not in text and "- Drills:" not in text  # a run of procedures alone
    verdicts, commands = _section(text, "Procedures").split("\n### Commands\n")
    assert "Steps: 3 works, 2 fails, 2 unsafe." in verdicts
    rows = _table(verdicts)
    steps = payload["procedures"]
    assert len(rows) == len(steps) == 7
    for step, row in zip(steps, rows, strict=True):
        verdict = step["verdict"] if step["verdict"] == "works" else f"**{step['verdict']}**"
        assert row.startswith(f"| {step['pack']} | {step['procedure']} | {step['step']} | "
                              f"{verdict} | ")
    assert rows[3].startswith("| runbook | pg_restore | -t documents | **fails** | schema: "
                              "index public.documents_created_at_idx")
    assert rows[0].endswith("| 0.38 |")
    lines = _table(commands)
    assert len(lines) == 7 and lines[0].endswith(" | - |")  # a template: nothing adapted
    assert "| pitr | recovery.conf instead of recovery.signal | cat > $PGDATA/recovery.conf " \
           "<< EOF restore_command = 'cp " in commands  # newlines folded into the cell
    assert lines[2].endswith("work directory; host, port and password from PGHOST, PGPORT "
                             "and PGPASSFILE of the throw-away server |")


def test_markdown_procedures_beside_drills(payload: dict[str, Any]) -> None:
    steps = json.loads(PROCEDURES.read_text())["procedures"]
    steps[0].update(verdict="odd", why="a | b")
    text = report_views.markdown({**payload, "procedures": steps})
    assert text.index("## Procedures") < text.index("## Drills")
    assert "- Drills: 11, verified: 9, failed: 2" in text
    assert "| config | nightly dump | backup | **unknown** | a \\| b | 0.38 |" in text
    assert "- Procedure steps: 7: 2 works, 2 fails, 2 unsafe, 1 unknown" in text


@pytest.mark.parametrize("partial", [
    {},
    {"procedures": [{}, None, {"verdict": "works", "seconds": "x"}]},
    {"drills": [BARE]},
    {"drills": [{}], "bench": {}},
    {"drills": [{**BARE, "backup": None, "restore": "x", "phases": [{}], "items": [None],
                 "verdicts": [{"status": "odd"}], "measures": [], "verification": 3}],
     "dataset": None, "targets": [], "bench": {"runs": [{}], "ratios": [{}], "sizes": [{}]}},
])
def test_views_of_a_partial_payload(partial: dict[str, Any], tmp_path: Path) -> None:
    paths = report_views.write_views(tmp_path, partial, now=NOW)
    assert [p.name for p in paths] == ["report.md", "report.html", "junit.xml", "metrics.prom"]
    parse((tmp_path / "metrics.prom").read_text())
    text = (tmp_path / "report.md").read_text()
    assert "FAILED" in text
    if partial.get("drills") == [BARE]:
        assert "| logical:custom-z9->fresh | logical | - | unknown | unknown | - | - | - " \
               "| **FAILED** | - |" in text
        assert "- pg_restore \\| exit 1" in text


def test_prometheus_parses_strictly(payload: dict[str, Any]) -> None:
    families = parse(report_views.prometheus(payload, NOW))
    drills = payload["drills"]
    success = families["pgvdrill_drill_success"]
    assert len(success) == len(drills)
    assert {tuple(sorted(labels)) for labels, _ in success} == {("backup", "kind", "restore")}
    failed = sorted(labels["backup"] for labels, v in success if v == "0")
    assert failed == ["directory-j2", "plain"]
    restore = {(labels["kind"], labels["backup"], labels["restore"]): float(v)
               for labels, v in families["pgvdrill_restore_seconds"]}
    assert len(restore) == len(drills) - 1  # the failed directory-j2 restore has no time
    assert restore[("pitr", "plain", "time")] == 15.85
    assert families["pgvdrill_last_drill_success"] == [({}, "0")]
    (_, stamp), = families["pgvdrill_last_drill_timestamp_seconds"]
    assert float(stamp) == unix_time(payload["finished"]) == 1795511892.30463
    sizes = {(labels["kind"], labels["backup"]): float(v)
             for labels, v in families["pgvdrill_backup_size_bytes"]}
    assert sizes[("logical", "custom-z9")] == 58731520
    assert sizes[("physical", "tar-gz")] == 49283072
    assert len(sizes) == len(families["pgvdrill_backup_seconds"]) == 8
    stamps = {(labels["kind"], labels["backup"]): float(v)
              for labels, v in families["pgvdrill_backup_timestamp_seconds"]}
    assert stamps[("logical", "custom-z9")] == unix_time("2026-11-24T09:12:03.118204+00:00")
    assert dict((labels["mode"], v) for labels, v in families["pgvdrill_rpo_seconds"]) == \
        {"archive_command": "2.41", "pg_receivewal": "0"}
    status = {(labels["drill"], labels["target"]): v
              for labels, v in families["pgvdrill_target_status"]}
    assert len(status) == 25
    assert status[("logical:custom-z9->fresh", "rto.logical")] == "1"
    assert status[("pitr:time", "throughput.wal_replay")] == "0"
    assert status[("pitr:immediate", "throughput.wal_replay")] == "-1"


def test_prometheus_families_are_the_readmes() -> None:
    """Every gauge reports/README.md promises is written from the sample, and no other."""
    documented = set(re.findall(r"`(pgvdrill_[a-z_]+)", README.read_text().split(
        "## metrics.prom", 1)[1]))
    families = parse(report_views.prometheus(json.loads(SAMPLE.read_text()), NOW))
    assert set(families) == documented


def test_prometheus_timestamps_fall_back(payload: dict[str, Any]) -> None:
    payload.pop("finished")
    families = parse(report_views.prometheus(payload, NOW))
    assert families["pgvdrill_last_drill_timestamp_seconds"] == \
        [({}, repr(unix_time(payload["started"])))]
    payload["started"] = "yesterday"
    families = parse(report_views.prometheus(payload, NOW))
    assert families["pgvdrill_last_drill_timestamp_seconds"] == [({}, "1800000000")]
    assert unix_time("2026-11-24T09:00:00") == unix_time("2026-11-24T09:00:00Z")  # UTC


def test_label_values_are_escaped(payload: dict[str, Any]) -> None:
    nasty = 'a"b\\c\nd'
    odd = copy.deepcopy(payload)
    odd["drills"][0]["restore"]["setting"] = nasty
    odd["drills"][-1]["drill"] = f"rpo:{nasty}"
    text = report_views.prometheus(odd, NOW)
    assert report_views.escape_label(nasty) == 'a\\"b\\\\c\\nd'
    assert 'restore="a\\"b\\\\c\\nd"' in text
    assert 'pgvdrill_rpo_seconds{mode="a\\"b\\\\c\\nd"} 0' in text
    parse(text)


def test_write_views_is_atomic(payload: dict[str, Any], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "report.json").write_text(SAMPLE.read_text())
    names = ["junit.xml", "metrics.prom", "report.html", "report.json", "report.md"]
    paths = report_views.write_views(tmp_path, payload, now=NOW)
    assert paths == [tmp_path / n for n in ("report.md", "report.html", "junit.xml",
                                            "metrics.prom")]
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    assert (tmp_path / "report.md").read_text() == report_views.markdown(payload)
    assert (tmp_path / "metrics.prom").read_text() == report_views.prometheus(payload, NOW)
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in paths)

    def fail(src: object, dst: object) -> None:
        raise OSError("disk full")

    before = (tmp_path / "report.md").read_text()
    monkeypatch.setattr(os, "replace", fail)
    payload["drills"] = payload["drills"][:1]
    with pytest.raises(OSError, match="disk full"):
        report_views.write_views(tmp_path, payload, now=NOW)
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # no temporary file left
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


def test_views_name_the_server_each_drill_ran_on_and_its_notes(payload: dict[str, Any]
                                                               ) -> None:
    """A drill's `server` shows in its row; checks that could not run and differences
    stated (versions) are listed under Notes, in Markdown and HTML."""
    drill = payload["drills"][0]
    drill["server"] = {"postgresql": "16.2", "pgvector": "0.6.2", "vector_types": ["vector"]}
    drill["verification"] = {"ok": True, "checks": [
        {"name": "amcheck", "ok": True, "problems": [], "seconds": 0.1, "details": {},
         "unknown": "btree indexes not checked: no amcheck"},
        {"name": "extensions", "ok": True, "problems": [], "seconds": 0.1,
         "details": {"stated": ["extension vector is 0.6.2 in the target (older), 0.8.6 in "
                                "the source"]}}]}
    text = report_views.markdown(payload)
    rows = _table(_section(text, "Drills"))
    assert rows[0].startswith("| logical:custom-z9->fresh | logical | PostgreSQL 16.2, "
                              "pgvector 0.6.2 | custom-z9 |")
    notes = _section(text, "Notes")
    assert "- amcheck unknown: btree indexes not checked: no amcheck" in notes
    assert "- extensions: extension vector is 0.6.2 in the target (older)" in notes
    page = report_html.html(payload)
    assert "<td>PostgreSQL 16.2, pgvector 0.6.2</td>" in page
    assert "amcheck unknown: btree indexes not checked: no amcheck" in page
