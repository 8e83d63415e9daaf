"""`pgvdrill restore logical`: every example of its --help parses, and the role options
reach pg_restore as its own options."""

from __future__ import annotations

import shlex

from pgvdrill.cli.main import build_parser
from pgvdrill.cli.restore import LOGICAL_EPILOG
from pgvdrill.ops.restore_logical import Ownership


def examples() -> list[list[str]]:
    return [shlex.split(line.split("#")[0])[1:] for line in LOGICAL_EPILOG.splitlines()
            if line.strip().startswith("pgvdrill restore logical ")]


def test_every_example_parses_with_the_role_options_among_them() -> None:
    parsed = [build_parser().parse_args(argv) for argv in examples()]

    assert len(parsed) == 6
    assert [(a.with_globals, a.no_owner, a.no_privileges, a.into_copy_of_source)
            for a in parsed][-3:] == [
        (True, False, False, False), (False, True, True, False), (False, False, False, True)]


def test_ownership_becomes_pg_restore_options() -> None:
    assert Ownership().argv() == []
    assert Ownership(with_globals=True).argv() == []
    assert Ownership(no_owner=True, no_privileges=True).argv() == [
        "--no-owner", "--no-privileges"]
