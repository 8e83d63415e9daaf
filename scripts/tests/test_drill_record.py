"""The drill record: one failure type writes the entries report.json held before it, and
the reader parses what the writers build."""

from __future__ import annotations

from pgvdrill.drill.record import DrillFailure, DrillResult, run_cases
from pgvdrill.errors import DrillError
from pgvdrill.report.model import drill
from pgvdrill.report.record import DrillEntry


def test_a_failed_restore_records_what_it_reached_and_why() -> None:
    failed = DrillFailure("logical:plain->fresh", "logical", DrillError("no pgvector", "add it"),
                          stage="restore", backup={"setting": "plain"},
                          restore={"setting": "fresh"}, measures={})
    assert failed.as_dict() == {
        "drill": "logical:plain->fresh", "kind": "logical", "ok": False,
        "backup": {"setting": "plain"}, "restore": {"setting": "fresh"}, "measures": {},
        "evidence": {"restore": {"kind": "logical", "seconds": None,
                                 "why": "the restore failed: FAILED: no pgvector"}},
        "error": "no pgvector\n  hint: add it"}
    assert failed.problems() == ["no pgvector\n  hint: add it"]


def test_a_dr_failure_lists_its_problems_and_the_machine_cause() -> None:
    failed = DrillFailure("physical:b1", "physical", OSError(28, "No space left on device"),
                          stage=None, more_evidence={"backup_age": {"kind": "physical",
                                                                    "seconds": 5.0}},
                          listed=())
    entry = failed.as_dict()
    assert entry["problems"] == [entry["error"]]
    assert entry["evidence"]["restore"]["why"] == entry["error"]
    assert "environment" in entry
    more = DrillFailure("physical:b1", "physical", "broken", stage=None, listed=("gap",))
    assert more.as_dict()["problems"] == ["broken", "gap"]
    assert "environment" not in more.as_dict()


def test_the_reader_parses_what_the_writer_builds() -> None:
    entry = DrillEntry("pitr:time", "pitr", True, backup={"setting": "plain", "seconds": 1.5},
                       restore={"setting": "time", "seconds": 2.0}, phases=[],
                       problems=[], target_kind="time")
    assert DrillEntry.parse(entry.as_dict()) == entry
    row = drill(entry.as_dict())
    assert (row.name, row.kind, row.ok, row.backup_seconds, row.problems) == \
        ("pitr:time", "pitr", True, 1.5, ())


def test_the_loop_reports_each_case_and_turns_a_drill_error_into_a_failure() -> None:
    said: list[str] = []

    def drilled(case: str) -> DrillResult:
        raise DrillError(f"{case} broke")

    results = run_cases(["a", "b"], drilled,
                        lambda case, exc: DrillFailure(f"x:{case}", "x", exc), said.append,
                        label=lambda case: f"case {case}",
                        skip=lambda case: "not this one" if case == "b" else None)
    assert [r.name for r in results] == ["x:a"]
    assert said == ["  case a: FAILED: a broke", "    - a broke",
                    "  case b: not applicable (not this one)"]
