"""The fail-on policy: which verdicts are missed targets, and a drill run's exit code."""

from __future__ import annotations

from typing import Any

import pytest

from pgvdrill.errors import EnvironmentFailure
from pgvdrill.policy.fail_on import TARGETS_MISSED, FailOn, exit_code, missed


def drill(ok: bool, *statuses: str, **extra: Any) -> dict[str, Any]:
    """A judged drill entry with one verdict per status."""
    return {"ok": ok, "verdicts": [{"status": s} for s in statuses], **extra}


@pytest.mark.parametrize(("fail_on", "expected"), [("fail", 1), ("unknown", 3), ("none", 0)])
def test_missed_counts_the_statuses_fail_on_names(fail_on: FailOn, expected: int) -> None:
    assert missed({"pass": 4, "fail": 1, "unknown": 2}, fail_on) == expected


@pytest.mark.parametrize(("fail_on", "status", "code"), [
    ("fail", "fail", TARGETS_MISSED), ("fail", "unknown", 0),
    ("unknown", "unknown", TARGETS_MISSED), ("none", "fail", 0), ("none", "pass", 0),
])
def test_verified_drills_exit_by_their_verdicts(fail_on: FailOn, status: str,
                                                code: int) -> None:
    assert exit_code([drill(True, "pass"), drill(True, status)], fail_on) == code


def test_a_failed_drill_exits_1_whatever_the_targets() -> None:
    failed = [drill(False, "pass"), drill(True, "fail", environment="disk full")]
    assert exit_code(failed, "none") == 1
    assert exit_code([drill(False), drill(False, environment="disk full")], "fail") == 1


def test_failures_all_by_the_machine_exit_as_an_environment_failure() -> None:
    failed = [drill(True, "fail"), drill(False, environment="No space left on device")]
    assert exit_code(failed, "fail") == EnvironmentFailure.exit_code == 8
