"""A drill that ran on another installation than the lane's is no pass: the session check
on recorded drills (pytest runs of their own, no server), and the check and the backend
options of the `pgvdrill` runs tests make (fixtures.cli, fixtures.ran_on)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import session_args
from fixtures.options import DrillOptions
from fixtures.ran_on import entry_problems, report_problems

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
SESSION = {"backend": "system", "major": 16, "version": "16.2", "pgvector": "0.6.2"}
EMBEDDED = {"postgresql": "18.6", "pgvector": "0.8.6", "vector_types": ["vector"]}

ENTRIES = {  # test name: the drill entry it records in a 16.2 session
    "on_the_sessions_server": {"drill": "logical:plain->fresh", "kind": "logical", "ok": True,
                               "server": {"postgresql": "16.2", "pgvector": "0.6.2"}},
    "on_embedded": {"drill": "logical:plain->fresh", "kind": "logical", "ok": True,
                    "server": EMBEDDED},
    "saying_no_server": {"drill": "physical:plain", "kind": "physical", "ok": True},
}

RECORDING = """
import json

import pytest

from fixtures.reporting import PROPERTY, RUN_PROPERTY


@pytest.mark.parametrize("entry", {entries!r}.values(), ids={entries!r}.keys())
def test_a_drill(record_property, entry):
    record_property(RUN_PROPERTY, json.dumps({{"server": {session!r}, "dataset": {{}}}}))
    record_property(PROPERTY, json.dumps(entry))


def test_on_another_version():
    pytest.skip("needs PostgreSQL 17 or later")
"""


def test_a_drill_on_another_installation_fails_its_test(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The false pass of issue 15 (a 16.2 lane's drill that ran on the embedded 18.6)
    fails its test, and so does a drill that does not say where it ran; report.json says
    so too. A drill on the session's server passes."""
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}:{ROOT / 'scripts'}")
    pytester.makeconftest((ROOT / "conftest.py").read_text())
    pytester.makepyfile(test_recording=RECORDING.format(session=SESSION, entries=ENTRIES))
    reports = pytester.path / "out"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rf",
                                           f"--drill-reports={reports}")

    result.assert_outcomes(passed=1, failed=2, skipped=1)
    result.stdout.fnmatch_lines([
        "*a drill did not run on the lane's installation:*",
        "*drill logical:plain->fresh ran on PostgreSQL 18.6, not on the session's system "
        "backend (PostgreSQL 16.2, pgvector 0.6.2)*"])
    result.stdout.fnmatch_lines(["*drill physical:plain does not say which server it ran on*"])
    [report] = reports.glob("*/report.json")
    payload = json.loads(report.read_text())
    outcomes = {d["test"].split("[")[1].rstrip("]"): d["ok"] for d in payload["drills"]}
    assert outcomes == {"on_the_sessions_server": True, "on_embedded": False,
                        "saying_no_server": False}
    # every test's outcome, a skip with its reason (the version table's input)
    assert sorted((t["test"].split("::")[1], t["outcome"], t.get("reason"))
                  for t in payload["tests"]) == [
        ("test_a_drill[on_embedded]", "failed", None),
        ("test_a_drill[on_the_sessions_server]", "passed", None),
        ("test_a_drill[saying_no_server]", "failed", None),
        ("test_on_another_version", "skipped", "needs PostgreSQL 17 or later")]


def test_entry_problems_name_the_other_pgvector() -> None:
    on_16 = {"drill": "d", "server": {"postgresql": "16.2", "pgvector": "0.6.2"}}
    assert entry_problems(on_16, SESSION) == []
    newer = {"drill": "d", "server": {"postgresql": "16.2", "pgvector": "0.8.6"}}
    assert entry_problems(newer, SESSION) == [
        "drill d ran with pgvector 0.8.6, not on the session's system backend (PostgreSQL "
        "16.2, pgvector 0.6.2)"]
    no_extension = {"drill": "d", "server": {"postgresql": "16.2 (Debian 16.2-1)",
                                             "pgvector": None}}
    assert entry_problems(no_extension, SESSION) == []


def test_report_problems_of_a_cli_run() -> None:
    """A `pgvdrill` report names its backend at the top: another one is a problem; a run
    that stopped before its backend started names none and is not."""
    ran = {"server": {**SESSION, "version": "16.2"}, "drills": [
        {"drill": "logical:x", "kind": "logical", "server": {"postgresql": "16.2"}}]}
    assert report_problems(ran, SESSION) == []
    embedded = {"server": {"backend": "embedded", "major": 18, "version": "18.6",
                           "pgvector": "0.8.6"}, "drills": [{"drill": "logical:x"}]}
    assert report_problems(embedded, SESSION) == [
        "the run used the embedded backend (PostgreSQL 18.6, pgvector 0.8.6), not the "
        "session's system backend (PostgreSQL 16.2, pgvector 0.6.2)"]
    assert report_problems({"drills": [{"drill": "run:aborted", "kind": "run"}]}, SESSION) == []
    assert report_problems({"drills": [{"drill": "logical:x", "kind": "logical"}]}, SESSION)


def _options(**changes: Any) -> DrillOptions:
    base: dict[str, Any] = {
        "backend": "system", "pg_bin": Path("/opt/pg16/bin"), "installations": (),
        "image": None, "workdir": None, "rows": 10, "dim": 3, "kind": "gaussian",
        "dataset_file": None, "recall_threshold": 0.9, "reports_dir": Path("reports"),
        "targets_file": None, "production_size": None, "fail_on": "none",
        "hypothesis": "quick"}
    return DrillOptions(**{**base, **changes})


def test_commands_that_start_servers_get_the_sessions_backend() -> None:
    options = _options()
    assert session_args(options, ["drill", "--rows", 5]) == [
        "drill", "--rows", "5", "--backend", "system", "--pg-bin", "/opt/pg16/bin"]
    for command in ("dr-drill", "procedures", "bench", "verify-backup"):
        assert session_args(options, [command])[1:3] == ["--backend", "system"]
    assert session_args(options, ["backup", "logical"]) == ["backup", "logical"]
    named = ["drill", "--backend", "docker"]
    assert session_args(options, named) == named  # the test chose its backend
    docker = _options(backend="docker", pg_bin=None, image="pgvector/pgvector:pg17")
    assert session_args(docker, ["drill"]) == [
        "drill", "--backend", "docker", "--image", "pgvector/pgvector:pg17"]
