"""junit.xml of the sample run, parsed back."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pgvdrill.policy.fail_on import FailOn
from pgvdrill.report.junit import junit

SAMPLE = Path(__file__).parent / "data" / "report_sample.json"
#: drills of the sample with a target verdict "fail", and with one "unknown"
MISSED = {"logical:custom-z9->fresh", "logical:custom-z9->parallel-j2", "pitr:time"}
UNJUDGED = {"logical:directory-j2->clean", "pitr:immediate"}


@pytest.fixture
def payload() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE.read_text())
    return data


def _suite(payload: dict[str, Any], fail_on: FailOn) -> ET.Element:
    suite = ET.fromstring(junit(payload, fail_on))
    cases = suite.findall("testcase")
    assert suite.tag == "testsuite" and suite.get("name") == "pgvdrill"
    assert suite.get("tests") == str(len(cases))
    assert suite.get("failures") == str(sum(c.find("failure") is not None for c in cases))
    assert suite.get("errors") == str(sum(c.find("error") is not None for c in cases))
    assert all(len(c.findall("failure")) + len(c.findall("error")) <= 1 for c in cases)
    return suite


def _outcomes(suite: ET.Element, tag: str) -> set[str]:
    return {str(c.get("name")) for c in suite.iter("testcase") if c.find(tag) is not None}


def test_one_testcase_per_drill(payload: dict[str, Any]) -> None:
    suite = _suite(payload, "fail")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == \
        [(d["kind"], d["drill"]) for d in payload["drills"]]
    assert cases[0].get("time") == "23.090"
    assert "time" not in cases[4].attrib  # the errored restore was not timed
    assert float(suite.get("time", "")) == pytest.approx(
        sum(d["restore"].get("seconds") or 0 for d in payload["drills"]), abs=1e-3)
    props = {p.get("name"): p.get("value") for p in suite.iterfind("properties/property")}
    assert props == {"run_id": payload["run_id"], "source": "pgvdrill drill",
                     "schema": "pgvdrill.report/2", "fail_on": "fail"}


def test_verdict_statuses_are_properties(payload: dict[str, Any]) -> None:
    for case, drill in zip(_suite(payload, "none").iter("testcase"), payload["drills"],
                           strict=True):
        props = [(p.get("name"), p.get("value")) for p in case.iterfind("properties/property")]
        assert props == [(v["name"], v["status"]) for v in drill["verdicts"]]
        out = case.findtext("system-out") or ""
        assert all(v["detail"] in out for v in drill["verdicts"])


def test_failures_follow_fail_on(payload: dict[str, Any]) -> None:
    errored, unverified = {"logical:directory-j2->clean"}, {"logical:plain->fresh"}
    none, fail, unknown = (_suite(payload, f) for f in ("none", "fail", "unknown"))
    assert _outcomes(none, "error") == _outcomes(fail, "error") == errored
    assert _outcomes(none, "failure") == unverified
    assert _outcomes(fail, "failure") == unverified | MISSED
    assert _outcomes(unknown, "failure") == unverified | MISSED | (UNJUDGED - errored)
    assert (none.get("failures"), fail.get("failures"), unknown.get("failures")) == \
        ("1", "4", "5")


def test_failure_and_error_say_why(payload: dict[str, Any]) -> None:
    cases = {c.get("name"): c for c in _suite(payload, "fail").iter("testcase")}
    plain = cases["logical:plain->fresh"].find("failure")
    assert plain is not None and plain.get("message") == "not verified"
    assert "recall@10 0.41 below 0.81" in (plain.text or "")
    pitr = cases["pitr:time"].find("failure")
    assert pitr is not None and pitr.get("message") == "throughput.wal_replay fail"
    assert "13.54 MiB/s < floor 17.78 MiB/s" in (pitr.text or "")
    error = cases["logical:directory-j2->clean"].find("error")
    assert error is not None
    assert (error.get("message") or "").startswith("pg_restore -d restored_directory_j2_clean")
    assert cases["logical:custom-z1->fresh"].find("failure") is None


def test_partial_and_hostile_payloads(payload: dict[str, Any]) -> None:
    drill = {"drill": '<x a="1">&\x1b[0m', "kind": "logical", "ok": False,
             "error": "exit 1\x00\x07 ]]>"}
    suite = _suite({"drills": [drill, {}]}, "unknown")
    first, second = suite.findall("testcase")
    assert first.get("name") == '<x a="1">&\\x1b[0m'
    error = first.find("error")
    assert error is not None and error.get("message") == "exit 1\\x00\\x07 ]]>"
    assert second.get("name") == "?" and second.findtext("failure") == \
        "not verified (no problem recorded)"
    empty = _suite({}, "fail")
    assert empty.get("tests") == "0" and empty.get("failures") == "0"
