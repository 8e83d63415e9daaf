"""How verification talks to a server: stable settings and properly quoted names."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

# Catalog filters (pg_namespace as n): user schemas, and objects no extension owns.
USER_SCHEMA = """
    n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'
"""


def not_extension_member(catalog: str, oid: str) -> str:
    """SQL: the object `oid` of system catalog `catalog` belongs to no extension."""
    return (f"NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = '{catalog}'::regclass"
            f" AND d.objid = {oid} AND d.deptype = 'e')")


# Output that must not depend on the session: every deparsed name is schema-qualified
# (search_path is pg_catalog only) and values print the same way on both servers.
STABLE_SETTINGS = {
    "search_path": "pg_catalog",
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",
    "bytea_output": "hex",
    "jit": "off",
}


@contextmanager
def reading(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """A repeatable-read, read-only transaction with `STABLE_SETTINGS`, rolled back at the end.

    Inside a transaction the caller already opened, a savepoint instead (the caller's
    isolation level then applies).
    """
    fresh = conn.info.transaction_status == TransactionStatus.IDLE
    with conn.transaction(force_rollback=True):
        if fresh:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        set_local(conn, STABLE_SETTINGS)
        yield conn


def set_local(conn: psycopg.Connection, settings: dict[str, str]) -> None:
    """SET LOCAL each setting (until the end of the current transaction)."""
    for name, value in settings.items():
        conn.execute("SELECT pg_catalog.set_config(%s, %s, true)", (name, value))


def ident(schema: str, name: str) -> sql.Identifier:
    return sql.Identifier(schema, name)


