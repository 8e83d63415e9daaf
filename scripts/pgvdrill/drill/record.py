"""What every drill result is (DrillResult), the one way a drill fails outright
(DrillFailure), and the one loop that runs drill cases and reports each as it ends."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

import psycopg

from pgvdrill.capabilities import server_capabilities
from pgvdrill.errors import DrillError, environment_cause
from pgvdrill.report.record import DrillEntry, Record
from pgvdrill.report.run_dir import described

Progress = Callable[[str], None]
Case = TypeVar("Case")


class DrillResult(Protocol):
    """A drill's outcome: what the loop reports and report.json records."""

    @property
    def name(self) -> str: ...  # "<kind>:<what>"

    @property
    def kind(self) -> str: ...  # logical, physical, pitr

    @property
    def ok(self) -> bool: ...

    def summary(self) -> str: ...  # one line for the progress output

    def problems(self) -> list[str]: ...

    def evidence(self) -> dict[str, object]: ...  # what the targets judge

    def entry(self) -> DrillEntry: ...

    def as_dict(self) -> dict[str, Any]: ...  # entry().as_dict()


@dataclass
class DrillFailure:
    """A drill that failed outright: what stopped it and what it had reached."""

    name: str
    kind: str
    error: BaseException | str
    stage: str | None = "drill"  # evidence: "the <stage> failed: ..."; None: the error
    backup: Record | None = None
    restore: Record | None = None
    measures: Record | None = None
    more_evidence: Mapping[str, object] = field(default_factory=dict)
    # a DR drill's record lists its problems (the error, then these) and, when it lists
    # nothing more, the machine's part in the error; None: it lists neither
    listed: tuple[str, ...] | None = None
    target_kind: str | None = None  # a `pgvdrill drill --pitr` kind
    server: Record | None = None  # ran_on() of the server it reached, if any
    ok: ClassVar[bool] = False

    @property
    def text(self) -> str:
        """The error as the report says it (with the notes added to it since)."""
        return self.error if isinstance(self.error, str) else described(self.error)

    @property
    def exception(self) -> BaseException | None:
        return None if isinstance(self.error, str) else self.error

    def summary(self) -> str:
        message = self.error.message if isinstance(self.error, DrillError) else self.text
        return f"FAILED: {message.splitlines()[0]}"

    def problems(self) -> list[str]:
        return [self.text, *(self.listed or ())]

    def evidence(self) -> dict[str, object]:
        why = self.text if self.stage is None else f"the {self.stage} failed: {self.summary()}"
        return {"restore": {"kind": self.kind, "seconds": None, "why": why},
                **self.more_evidence}

    def entry(self) -> DrillEntry:
        cause = None if self.exception is None else environment_cause(self.exception)
        return DrillEntry(
            self.name, self.kind, False, server=self.server, backup=self.backup,
            restore=self.restore,
            measures=self.measures, evidence=self.evidence(),
            problems=None if self.listed is None else self.problems(), error=self.text,
            environment=cause if self.listed is not None and not self.listed else None,
            target_kind=self.target_kind)

    def as_dict(self) -> dict[str, Any]:
        return self.entry().as_dict()


def ran_on(conn: psycopg.Connection[Any]) -> Record:
    """What a drill ran on, for its entry's `server`: the PostgreSQL and pgvector versions
    (and pgvector's types) of the database `conn` is connected to, e.g. the restored
    target: {"postgresql": "16.2", "pgvector": "0.6.2", "vector_types": ["vector"]}."""
    return server_capabilities(conn).as_dict()


def run_cases(cases: Iterable[Case], drill: Callable[[Case], DrillResult],
              failed: Callable[[Case, DrillError], DrillResult], progress: Progress, *,
              label: Callable[[Case], str],
              skip: Callable[[Case], str | None] = lambda case: None,
              after: Callable[[Case, DrillResult], None] = lambda case, result: None
              ) -> list[DrillResult]:
    """Drill each case (a DrillError makes it `failed`), unless `skip` gives a reason not
    to; run `after` (its cleanup); announce each as "<label>: <summary>" and its problems."""
    results: list[DrillResult] = []
    for case in cases:
        reason = skip(case)
        if reason is not None:
            progress(f"  {label(case)}: not applicable ({reason})")
            continue
        try:
            result = drill(case)
        except DrillError as exc:
            result = failed(case, exc)
        after(case, result)
        results.append(result)
        progress(f"  {label(case)}: {result.summary()}")
        for problem in result.problems():
            progress(f"    - {problem}")
    return results
