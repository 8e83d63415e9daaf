"""How a procedure step's verdict follows from what it showed, and which procedures are
refused before anything runs; no server."""

from __future__ import annotations

import pytest

from pgvdrill.config import Procedure
from pgvdrill.errors import ConfigError, ToolError
from pgvdrill.proc.runner import Result
from pgvdrill.procedures.runbook_physical import active_settings
from pgvdrill.procedures.steps import Outcome, Recorder, exit_text, first_lines, judge
from pgvdrill.procedures.user import check


def test_hazards_make_a_step_unsafe_whatever_else_it_did() -> None:
    outcome = Outcome(error="exit 1", problems=["x"], hazards=["WAL acknowledged, then lost"],
                      evidence="archived")
    assert judge(outcome) == ("unsafe", "WAL acknowledged, then lost")


def test_an_error_or_a_problem_makes_it_fail_with_why() -> None:
    assert judge(Outcome(error="exit 2: pg_restore: error: x")) == \
        ("fails", "exit 2: pg_restore: error: x")
    problems = [f"table t{i} did not arrive" for i in range(8)]
    verdict, why = judge(Outcome(problems=problems, evidence="restored"))
    assert verdict == "fails"
    assert why.startswith("table t0 did not arrive; table t1") and why.endswith("(and 3 more)")
    verdict, why = judge(Outcome(error="exit 1", problems=problems))
    assert (verdict, why) == ("fails", "exit 1; verification: 8 problem(s), the first: "
                                       "table t0 did not arrive")


def test_only_a_clean_outcome_works() -> None:
    assert judge(Outcome(evidence="restored 5 tables")) == ("works", "restored 5 tables")


def test_recorder_turns_errors_into_failed_steps_and_keeps_going() -> None:
    said: list[str] = []
    recorder = Recorder("runbook", said.append)
    with recorder.step("pg_dump", "full", "pg_dump -f x") as out:
        raise ToolError(["pg_dump"], 1, "pg_dump: error: connection refused")
    with recorder.step("pg_dump", "again", "pg_dump -f y") as out:
        out.evidence = "archive checked"
    recorder.skip("pg_restore", "-j 4", "the full pg_dump failed")
    assert [(r.step, r.verdict) for r in recorder.results] == \
        [("full", "fails"), ("again", "works"), ("-j 4", "fails")]
    assert "connection refused" in recorder.results[0].why
    assert recorder.results[2].why == "not run: the full pg_dump failed"
    assert said[1] == "[runbook] pg_dump: again: works: archive checked"
    assert recorder.results[0].as_dict().keys() == {"pack", "procedure", "step", "command",
                                                    "verdict", "why", "seconds"}
    with pytest.raises(ZeroDivisionError), recorder.step("bug", "bug"):
        print(1 / 0)  # a bug in pgvdrill is no verdict


def test_recorder_orders_rows_by_procedure_keeping_step_order() -> None:
    recorder = Recorder("runbook", lambda line: None)
    for procedure, step in [("b", "1"), ("a", "1"), ("b", "2"), ("a", "2")]:
        with recorder.step(procedure, step):
            pass
    recorder.order(["a", "b"])
    assert [(r.procedure, r.step) for r in recorder.results] == \
        [("a", "1"), ("a", "2"), ("b", "1"), ("b", "2")]


def test_exit_text_names_the_error_lines() -> None:
    result = Result(["sh"], 1, "", "pg_restore: connecting\npg_restore: error: could not "
                                    "execute query: ERROR:  x\nCommand was: CREATE\n", 0.1)
    assert exit_text(result) == "exit 1: pg_restore: error: could not execute query: ERROR:  x"
    assert exit_text(Result(["sh"], 2, "", "", 0.1)) == "exit 2"
    assert first_lines("1795522042.159 [4581] : FATAL:  no\n\n  hint: yes") == \
        "FATAL:  no / hint: yes"


@pytest.mark.parametrize(("changes", "says"), [
    ({"archive_command": "cp %p {wal_dir}/%f"}, 'need kind = "physical"'),
    ({"restore": ""}, "restore is empty"),
    ({"restore": "pg_restore -d {target_dsn} /x.dump"}, "does not use backup"),
    ({"backup": "pg_dump -f {backup} {target_dsn}"}, "target_dsn cannot be used here"),
    ({"kind": "physical", "restore": "tar -xf {backup}/base.tar"}, "does not use pgdata"),
    ({"kind": "physical", "restore": "tar -xf {backup}/base.tar -C {pgdata}",
      "restore_command": "cp {wal_dir}/%f"}, "must use %f and %p"),
    ({"kind": "physical", "restore": "tar -xf {backup}/base.tar -C {pgdata} # {target_time}"},
     "target_time cannot be used here"),
])
def test_procedures_that_cannot_be_drilled_are_refused(changes: dict[str, str],
                                                       says: str) -> None:
    proc = Procedure(**{"name": "p", "backup": "pg_dump -f {backup} {dsn}",
                        "restore": "pg_restore -d {target_dsn} {backup}", **changes})
    with pytest.raises(ConfigError, match="'p'") as caught:
        check(proc)
    assert says in caught.value.message


def test_a_pitr_procedure_passes_the_check() -> None:
    check(Procedure("pitr", kind="physical",
                    backup="pg_basebackup -d {dsn} -D {backup} -Ft",
                    restore="tar -xf {backup}/base.tar -C {pgdata}",
                    archive_command="test ! -f {wal_dir}/%f && cp %p {wal_dir}/%f",
                    restore_command="cp {wal_dir}/%f %p"))


def test_active_settings_of_a_configuration_file() -> None:
    text = ("# a comment\nmax_connections = 100   # (change requires restart)\n"
            "#port = 5432\n\ninclude_if_exists 'pgvdrill.conf'\nshared_buffers=128MB\n")
    assert active_settings(text) == {"max_connections": "100",
                                     "include_if_exists": "'pgvdrill.conf'",
                                     "shared_buffers": "128MB"}
