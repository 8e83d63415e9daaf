"""The fail-on policy: which target verdicts count as missed under `--fail-on`, and the
exit code a drill run ends with (1 a drill failed, EnvironmentFailure's when the machine
failed every failed drill, TARGETS_MISSED a target missed, 0)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pgvdrill.errors import EnvironmentFailure
from pgvdrill.policy.verdicts import counts

FailOn = Literal["fail", "unknown", "none"]
# the verdict statuses that count as a missed target under each --fail-on
FAILING: dict[str, frozenset[str]] = {
    "fail": frozenset({"fail"}),
    "unknown": frozenset({"fail", "unknown"}),
    "none": frozenset(),
}
TARGETS_MISSED = 6  # exit code: every drill verified, a documented target was missed


def missed(verdicts: Mapping[str, int], fail_on: FailOn) -> int:
    """How many of a run's verdicts (counts by status) are missed targets under `fail_on`."""
    return sum(verdicts[status] for status in FAILING[fail_on])


def exit_code(drills: Sequence[Mapping[str, Any]], fail_on: FailOn) -> int:
    """A run's exit code from its judged drills: 1 a drill failed, EnvironmentFailure's when
    every failed drill failed because of the machine (its record's `environment` names the
    cause: a full disk, a server that died), TARGETS_MISSED a target missed under
    `fail_on`, 0."""
    failed = [d for d in drills if d["ok"] is not True]
    if failed:
        by_machine = all(d.get("environment") for d in failed)
        return EnvironmentFailure.exit_code if by_machine else 1
    return TARGETS_MISSED if missed(counts(drills), fail_on) else 0
