"""source_copy: a failing test that used a copy of the source gets the copy's server log in
its report; a passing one does not (a pytest run of its own, on the same backend)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.options import DrillOptions

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]

DRILLS = '''
from fixtures.clusters import source_copy

copy = source_copy("attached", scope="module")


def test_fails(copy):
    copy.query("SELECT 1")
    assert False, "fails on purpose"


def test_passes(copy):
    copy.query("SELECT 1")
'''


def test_a_failing_test_gets_the_server_log_of_its_source_copy(
        pytester: pytest.Pytester, options: DrillOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}:{ROOT / 'scripts'}")
    pytester.makeconftest((ROOT / "conftest.py").read_text())
    pytester.makepyfile(test_copy=DRILLS)
    settings = {"drill-backend": options.backend, "pg-bin": options.pg_bin,
                "drill-image": options.image, "drill-workdir": options.workdir}
    args = [f"--{name}={value}" for name, value in settings.items() if value is not None]
    result = pytester.runpytest_subprocess(*args, "--dataset-size=100x4", "-p",
                                           "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*_ test_fails _*", "*fails on purpose*",
                                 "*- server log: attached -*"])
    assert result.stdout.str().count("server log: attached") == 1
