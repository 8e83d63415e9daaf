"""The outcome of a verification: named checks, each with the problems it found."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from pgvdrill.errors import VerificationError

# a check's detail listing what differs but was not compared or failed (versions of the
# servers, of an extension): said in the report, never silently dropped
STATED = "stated"


@dataclass
class Check:
    """One check: `problems` name the object that differs and how; empty means it passed,
    unless `unknown` says why the check could not run (a capability the server lacks):
    then it neither passed nor failed."""

    name: str
    ok: bool
    problems: list[str]
    seconds: float
    details: dict[str, object] = field(default_factory=dict)
    unknown: str | None = None

    @property
    def status(self) -> str:
        """pass, fail or unknown."""
        return "fail" if not self.ok else "unknown" if self.unknown else "pass"

    def as_dict(self) -> dict[str, object]:
        found = asdict(self)
        if self.unknown is None:
            del found["unknown"]
        return found


@dataclass
class Verification:
    """Every check run by `verify()`; it passes only if every check passed."""

    checks: list[Check]

    @property
    def ok(self) -> bool:
        """No check failed and at least one passed (a check that could not run is
        `unknown`, listed apart: a verification that verified nothing is not ok)."""
        return (all(check.ok for check in self.checks)
                and any(check.status == "pass" for check in self.checks))

    def unknown(self) -> list[str]:
        """Each check that could not run, with why: "amcheck: ...". """
        return [f"{c.name}: {c.unknown}" for c in self.checks if c.ok and c.unknown]

    @property
    def seconds(self) -> float:
        return round(sum(check.seconds for check in self.checks), 3)

    def summary(self) -> str:
        """One line: verdict, checks, time, and the lowest ANN recall measured."""
        recalls = [float(f["target"]) for c in self.checks if c.name == "ann_recall"
                   for f in c.details.values()
                   if isinstance(f, dict) and isinstance(f.get("target"), float)]
        lowest = f", lowest recall@10 {min(recalls):.2f}" if recalls else ""
        verdict = ("ok" if self.ok else f"FAILED ({len(self.problems())} problems)"
                   if self.problems() else "UNKNOWN (nothing could be verified)")
        unknown = f", {len(self.unknown())} unknown" if self.unknown() else ""
        return f"{verdict}: {len(self.checks)} checks{unknown} in {self.seconds:.1f}s{lowest}"

    def problems(self) -> list[str]:
        return [f"{c.name}: {p}" for c in self.checks for p in c.problems]

    def raise_for_problems(self) -> None:
        if not self.ok:
            raise VerificationError(self.problems())

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "checks": [c.as_dict() for c in self.checks],
                **({"unknown": self.unknown()} if self.unknown() else {})}

    def check(self, name: str) -> Check:
        """The check called `name` (KeyError if it did not run)."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)


@contextmanager
def timed(name: str, into: list[Check]) -> Iterator[Check]:
    """A check whose `problems`/`details` the block fills; appended with its duration."""
    check = Check(name, True, [], 0.0)
    start = time.monotonic()
    yield check
    check.seconds = round(time.monotonic() - start, 3)
    check.ok = not check.problems
    into.append(check)


def run_check(name: str, fn: Callable[[Check], None]) -> Check:
    """Run `fn` on a fresh check and time it."""
    checks: list[Check] = []
    with timed(name, checks) as check:
        fn(check)
    return checks[0]
