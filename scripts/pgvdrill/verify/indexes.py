"""Index health in the target: valid and ready flags, and btree amcheck."""

from __future__ import annotations

import psycopg
from psycopg import sql

from pgvdrill.capabilities import server_capabilities
from pgvdrill.verify.outcome import Check
from pgvdrill.verify.schema import SchemaFacts
from pgvdrill.verify.session import STABLE_SETTINGS, set_local

AMCHECK_SCHEMA = "pgvdrill_amcheck"  # created and rolled back with the check


def validity_problems(facts: SchemaFacts) -> list[str]:
    """Indexes not valid (unusable by queries) or not ready (not maintained by writes)."""
    problems = []
    for key, index in sorted(facts.indexes.items()):
        flags = [f for f, ok in (("indisvalid", index.valid), ("indisready", index.ready))
                 if not ok]
        if flags:
            problems.append(f"index {key} on {index.table} is not valid and ready: "
                            + ", ".join(f"{f}=false" for f in flags))
    return problems


def amcheck(check: Check, conn: psycopg.Connection, facts: SchemaFacts) -> None:
    """bt_index_check(heapallindexed => true) on every valid btree index of `facts` (of
    partitioned tables: each partition's), a verdict per index in `check.details`.

    Runs in a transaction that is rolled back, so an amcheck extension created for the
    check (in a schema of its own: the database's search_path may name no schema that
    exists) is gone again afterwards. A server without amcheck makes the check unknown,
    with the reason: the indexes were not checked, which is no pass.
    """
    wanted = {k for k, i in facts.indexes.items() if i.method == "btree" and i.valid
              and facts.tables[i.table].kind != "p"}  # a partitioned index has no pages
    with conn.transaction(force_rollback=True):
        schema = _amcheck_schema(conn)
        if schema is None:
            offered = server_capabilities(conn).extension("amcheck")
            if not offered.available:
                check.unknown = f"btree indexes not checked: {offered.reason}"
                return
            try:
                with conn.transaction():
                    conn.execute(f"CREATE SCHEMA {AMCHECK_SCHEMA}; "
                                 f"CREATE EXTENSION amcheck SCHEMA {AMCHECK_SCHEMA}")
            except psycopg.Error as exc:
                check.unknown = ("btree indexes not checked: CREATE EXTENSION amcheck "
                                 f"failed: {exc.diag.message_primary or exc}")
                return
            schema = _amcheck_schema(conn)
        assert schema is not None
        call = sql.SQL("SELECT {}.bt_index_check(%s::regclass, true)").format(
            sql.Identifier(schema))
        set_local(conn, STABLE_SETTINGS)
        for key in sorted(wanted):
            try:
                with conn.transaction():
                    conn.execute(call, (key,))
                check.details[key] = "ok"
            except psycopg.Error as exc:
                if conn.broken or conn.closed:
                    raise  # the server or the connection was lost: not the index's fault
                message = exc.diag.message_primary or str(exc)
                check.details[key] = message
                check.problems.append(f"index {key} on {facts.indexes[key].table} fails "
                                      f"amcheck: {message}")


def _amcheck_schema(conn: psycopg.Connection) -> str | None:
    row = conn.execute(
        "SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n"
        " ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'").fetchone()
    return None if row is None else str(row[0])
