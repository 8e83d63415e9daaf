"""Steps and their verdicts: each step of a procedure runs, what it showed is recorded as an
`Outcome`, and `judge` turns that into `works`, `fails` or `unsafe` with the reason.

The verdict always comes from what was observed: `unsafe` when the step did something
that loses data or exposes a secret (seen happening: WAL acknowledged but never archived,
a backup deleted, a password in a process environment), `fails` when it exited non-zero,
raised an error or its result did not verify, `works` when it ran and its result verified.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import psycopg

from pgvdrill.errors import DrillError
from pgvdrill.proc.runner import Result

Verdict = Literal["works", "fails", "unsafe"]
VERDICTS: tuple[Verdict, ...] = ("works", "fails", "unsafe")
Say = Callable[[str], None]
LOG_PREFIX = re.compile(r"\d+\.\d+ \[\d+\] [^:\n]*: ")  # statement_log.PREFIX as written
MAX_LISTED = 5  # problems spelled out in `why`; the row's `problems` keeps them all


@dataclass
class Outcome:
    """What running a step showed; filled in while the step runs."""

    command: str = ""
    error: str = ""  # the command failed or raised: what it said
    problems: list[str] = field(default_factory=list)  # its result did not verify
    hazards: list[str] = field(default_factory=list)  # observed data loss or exposure
    evidence: str = ""  # what was verified, when all is well


def judge(outcome: Outcome) -> tuple[Verdict, str]:
    """The verdict on an outcome and why: hazards make it unsafe, an error or a problem
    makes it fail, otherwise it works (with what was verified). Problems after an error
    are mostly its consequences: the reason then names how many and the first."""
    if outcome.hazards:
        return "unsafe", "; ".join(outcome.hazards)
    problems = outcome.problems
    if outcome.error and problems:
        return "fails", (f"{outcome.error}; verification: {len(problems)} problem(s), the "
                         f"first: {problems[0]}")
    if outcome.error:
        return "fails", outcome.error
    if problems:
        more = len(problems) - MAX_LISTED
        return "fails", "; ".join(problems[:MAX_LISTED]) + (f" (and {more} more)" if more > 0
                                                            else "")
    return "works", outcome.evidence or "ran and its result verified"


@dataclass(frozen=True)
class StepResult:
    """One row of the report's `procedures` list."""

    pack: str  # "runbook" for the built-in pack, "config" for [[procedure]] entries
    procedure: str
    step: str
    command: str
    verdict: Verdict
    why: str
    seconds: float
    adapted: str = ""  # what the throw-away environment changed in the command
    problems: tuple[str, ...] = ()

    def line(self) -> str:
        return f"[{self.pack}] {self.procedure}: {self.step}: {self.verdict}: {self.why}"

    def as_dict(self) -> dict[str, object]:
        row: dict[str, object] = {
            "pack": self.pack, "procedure": self.procedure, "step": self.step,
            "command": self.command, "verdict": self.verdict, "why": self.why,
            "seconds": round(self.seconds, 3)}
        if self.adapted:
            row["adapted"] = self.adapted
        if self.problems:
            row["problems"] = list(self.problems)
        return row


class Recorder:
    """Collects the results of a pack's or a configuration's steps, announcing each."""

    def __init__(self, pack: str, say: Say) -> None:
        self.pack = pack
        self.say = say
        self.results: list[StepResult] = []

    @contextmanager
    def step(self, procedure: str, step: str, command: str = "", adapted: str = ""
             ) -> Iterator[Outcome]:
        """Time the block, which fills the yielded Outcome; a DrillError or database error
        it raises becomes the step's error (the next step still runs)."""
        outcome = Outcome(command=command)
        started = time.monotonic()
        try:
            yield outcome
        except (DrillError, psycopg.Error) as exc:
            outcome.error = "; ".join(filter(None, [outcome.error, first_lines(str(exc))]))
        verdict, why = judge(outcome)
        result = StepResult(self.pack, procedure, step, outcome.command, verdict, why,
                            time.monotonic() - started, adapted, tuple(outcome.problems))
        self.results.append(result)
        self.say(result.line())

    def order(self, procedures: Sequence[str]) -> None:
        """Sort the results by procedure in the given order (steps keep theirs)."""
        self.results.sort(key=lambda r: procedures.index(r.procedure))

    def skip(self, procedure: str, step: str, why: str) -> None:
        """Record a step that could not run (it fails: what it would prove is unproven)."""
        with self.step(procedure, step) as out:
            out.error = f"not run: {why}"


def first_lines(text: str, lines: int = 4) -> str:
    """The first non-empty lines of a message, joined into one line, without the server
    log's line prefixes."""
    kept = [line.strip() for line in LOG_PREFIX.sub("", text).splitlines() if line.strip()]
    return " / ".join(kept[:lines])


def exit_text(result: Result) -> str:
    """A failed command in one line: its exit status and its error lines (or its last
    lines of stderr when none says error)."""
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if any(w in line for w in ("ERROR", "error", "FATAL"))]
    shown = list(dict.fromkeys(errors))[:3] or lines[-3:]
    return f"exit {result.returncode}" + (f": {' / '.join(shown)}" if shown else "")
