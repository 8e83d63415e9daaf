"""diagnose.explain: pg_restore's errors of the known pitfalls, each turned into what to do."""

from __future__ import annotations

from pgvdrill.errors import ToolError
from pgvdrill.logical.diagnose import explain


def failed(stderr: str) -> ToolError:
    return ToolError(["pg_restore", "--dbname", "vector_db", "x.dump"], 1, stderr)


def test_unknown_errors_are_left_alone() -> None:
    assert explain(failed("pg_restore: error: could not open input file")) is None


def test_missing_role_is_named_with_options_restore_logical_has() -> None:
    explained = explain(failed(
        'pg_restore: error: could not execute query: ERROR:  role "app owner" does not exist\n'
        'Command was: ALTER SCHEMA app OWNER TO "app owner";'))

    assert explained is not None
    assert explained.message.startswith('restore failed: role "app owner" does not exist\n')
    assert explained.hint.startswith("the dump names role app owner, which the target server "
                                     "lacks: rerun pgvdrill restore logical with --with-globals")
    assert "--no-owner --no-privileges" in explained.hint
    assert "pgvdrill.logical" not in explained.hint and "--no-acl" not in explained.hint


def test_too_many_locks_for_one_transaction_says_what_to_raise_or_use() -> None:
    explained = explain(failed(
        "pg_restore: error: could not execute query: ERROR:  out of shared memory\n"
        "HINT:  You might need to increase \"max_locks_per_transaction\"."))

    assert explained is not None
    assert "raise max_locks_per_transaction" in explained.hint and "--jobs 2" in explained.hint


def test_every_pitfall_of_a_restore_that_went_on_is_named() -> None:
    explained = explain(failed(
        'pg_restore: error: could not execute query: ERROR:  schema "public" already exists\n'
        'pg_restore: error: could not execute query: ERROR:  type "public.halfvec" does not '
        "exist\npg_restore: warning: errors ignored on restore: 2"))

    assert explained is not None
    assert explained.message.splitlines()[0] == (
        'restore failed: type "public.halfvec" does not exist; schema "public" already exists')
    first, second = explained.hint.split("; also: ")
    assert first.startswith("the dump holds tables with pgvector columns (halfvec) but no "
                            "CREATE EXTENSION vector")
    assert second.startswith("the dump creates schema public, which the target database "
                             "already has")
