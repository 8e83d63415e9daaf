"""The pytest side's options resolve once into DrillOptions: defaults, the command line,
and the usage error of a bad --drill-fail-on (pytest runs of their own; no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]

CHECK = '''
from pathlib import Path


def test_options(options, pytestconfig):
    expected = {expected!r}
    assert options.reports_dir == Path(expected.pop("reports_dir").format(
        root=pytestconfig.rootpath))
    assert {{name: getattr(options, name) for name in expected}} == expected
'''


def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, expected: dict[str, object],
        *args: str) -> pytest.RunResult:
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}:{ROOT / 'scripts'}")
    pytester.makeconftest((ROOT / "conftest.py").read_text())
    pytester.makepyfile(test_check=CHECK.format(expected=expected))
    return pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider")


def test_defaults(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(pytester, monkeypatch, {
        "reports_dir": "{root}/reports", "targets_file": None, "production_size": None,
        "fail_on": "none", "hypothesis": "quick", "backend": "embedded", "rows": 2000,
        "dim": 64, "kind": "gaussian", "recall_threshold": 0.9})
    result.assert_outcomes(passed=1)


def test_the_command_line(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                          tmp_path: Path) -> None:
    result = run(pytester, monkeypatch, {
        "reports_dir": str(tmp_path / "out"), "production_size": "200GB", "fail_on": "unknown",
        "hypothesis": "thorough", "rows": 10, "dim": 3},
        f"--drill-reports={tmp_path / 'out'}", "--drill-production-size=200GB",
        "--drill-fail-on=unknown", "--drill-hypothesis=thorough", "--dataset-size=10x3")
    result.assert_outcomes(passed=1)


def test_a_bad_fail_on_is_a_usage_error(pytester: pytest.Pytester,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(pytester, monkeypatch, {}, "--drill-fail-on=often")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--drill-fail-on takes one of fail, unknown, none, not 'often'*"])
