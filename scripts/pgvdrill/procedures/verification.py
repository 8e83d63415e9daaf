"""A procedure's restore verified exactly like the built-in modes: `verify()` against the
source's snapshot (counts, fingerprints, schema, extensions, indexes, recall, amcheck),
plus the arrival of every table the restore was to bring."""

from __future__ import annotations

from collections.abc import Collection

import psycopg

from pgvdrill.logical.pairing import user_tables
from pgvdrill.procedures.steps import Outcome
from pgvdrill.verify import Snapshot, Verification, verify
from pgvdrill.verify.outcome import run_check
from pgvdrill.verify.snapshot import table_scope


def arrival_problems(source: Snapshot, conn: psycopg.Connection,
                     tables: Collection[str] | None = None) -> list[str]:
    """Tables of the source (within `tables`) missing from the target, and, for a whole
    restore, tables the source does not have."""
    scope = table_scope(tables)
    expected = {(t.schema, t.name) for t in source.schema.restricted(scope).tables.values()
                if t.kind in ("r", "p")}
    present = set(user_tables(conn))
    problems = [f"table {s}.{t} did not arrive" for s, t in sorted(expected - present)]
    if scope is None:
        problems += [f"table {s}.{t} appeared but is not in the source"
                     for s, t in sorted(present - expected)]
    return problems


def check_restored(outcome: Outcome, source: Snapshot, conn: psycopg.Connection, *,
                   source_conn: psycopg.Connection | None = None,
                   tables: Collection[str] | None = None, content: bool = True,
                   sequence_slack: int = 0) -> Verification:
    """Verify the restored database behind `conn` against `source`; its problems go to
    `outcome`, and what was proven to its evidence."""
    verification = verify(source, conn, source_conn=source_conn, tables=tables,
                          content=content, sequence_slack=sequence_slack)
    verification.checks.append(run_check("arrived", lambda c: c.problems.extend(
        arrival_problems(source, conn, tables))))
    outcome.problems += verification.problems()
    scope = source.schema.restricted(table_scope(tables))
    rows = sum(c.rows for k, c in source.contents.items() if k in scope.tables)
    what = (f"{len(scope.tables)} tables with {rows} rows" if content
            else f"{len(scope.tables)} empty tables")
    outcome.evidence = (f"restored {what}, equal to the source (checks: "
                        f"{', '.join(c.name for c in verification.checks)})")
    return verification
