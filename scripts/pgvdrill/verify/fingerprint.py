"""Exact row counts and content fingerprints of tables, computed by the server.

A row's hash is md5 over the md5s of its columns in name order: pgvector columns
hashed in their binary send form (bit-exact: -0.0, one-ULP changes and NaN payloads
all show), other columns in their text form under the fixed settings of
`session.STABLE_SETTINGS`. The table's fingerprint is, per key bucket (the first byte
of md5 of the primary key), the row count and two sums of 64-bit slices of the row
hashes: order-independent, one streaming scan, memory bounded by the bucket count.
When fingerprints differ, only the differing buckets are fetched row by row (primary
key and row hash) from both sides to name the first differing rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from pgvdrill.verify.schema import Table

BUCKETS = 256
MAX_NAMED_ROWS = 3


@dataclass(frozen=True)
class Content:
    """Row count and per-bucket fingerprint of one table: {bucket: (rows, sum1, sum2)}."""

    rows: int
    buckets: dict[int, tuple[int, int, int]]


def row_hash(table: Table) -> sql.Composable:
    """SQL for the md5 (text) of a row of `table`, covering every column."""
    parts: list[sql.Composable] = []
    for column in sorted(table.columns, key=lambda c: c.name):
        value: sql.Composable
        if column.send is not None:
            value = sql.SQL("{}({})").format(sql.Identifier(*column.send),
                                              sql.Identifier(column.name))
        else:
            value = sql.SQL("{}::text").format(sql.Identifier(column.name))
        parts.append(sql.SQL("coalesce(md5({}), 'n')").format(value))
    return sql.SQL("md5({})").format(sql.SQL(" || ").join(parts) if parts else sql.Literal(""))


def bucket(table: Table) -> sql.Composable:
    """SQL for a row's key bucket: from its primary key, 0 for tables without one."""
    if not table.primary_key:
        return sql.SQL("0")
    key = sql.SQL(", ").join(sql.Identifier(c) for c in table.primary_key)
    return sql.SQL("('x' || substr(md5(ROW({})::text), 1, 2))::bit(8)::int4").format(key)


def read_content(conn: psycopg.Connection, table: Table) -> Content:
    """count(*) and fingerprint of a plain table (inside `session.reading`)."""
    query = sql.SQL(
        """
        SELECT b, count(*), sum(('x' || substr(h, 1, 16))::bit(64)::int8),
               sum(('x' || substr(h, 17, 16))::bit(64)::int8)
        FROM (SELECT {bucket} AS b, {hash} AS h FROM ONLY {table}) AS rows
        GROUP BY b
        """
    ).format(bucket=bucket(table), hash=row_hash(table), table=table.ident)
    buckets = {b: (n, int(s1), int(s2)) for b, n, s1, s2 in conn.execute(query)}
    return Content(sum(n for n, _, _ in buckets.values()), buckets)


def differing_buckets(source: Content, target: Content) -> list[int]:
    return sorted(b for b in source.buckets.keys() | target.buckets.keys()
                  if source.buckets.get(b) != target.buckets.get(b))


def differing_rows(source: psycopg.Connection, target: psycopg.Connection, table: Table,
                   buckets: list[int]) -> list[str]:
    """The first differing rows by primary key in `buckets`, e.g. `id=7 changed`."""
    src = _row_hashes(source, table, buckets)
    tgt = _row_hashes(target, table, buckets)
    keys = _sorted([k for k in src.keys() | tgt.keys() if src.get(k) != tgt.get(k)])
    named = []
    for key in keys[:MAX_NAMED_ROWS]:
        how = ("missing in the target" if key not in tgt else
               "only in the target" if key not in src else "changed")
        named.append(f"{_key_text(table, key)} {how}")
    if len(keys) > MAX_NAMED_ROWS:
        named.append(f"{len(keys) - MAX_NAMED_ROWS} more")
    return named


def _row_hashes(conn: psycopg.Connection, table: Table, buckets: list[int]
                ) -> dict[tuple[object, ...], str]:
    key = sql.SQL(", ").join(sql.Identifier(c) for c in table.primary_key)
    query = sql.SQL("SELECT {hash}, {key} FROM ONLY {table} WHERE {bucket} = ANY(%s)").format(
        hash=row_hash(table), key=key, table=table.ident, bucket=bucket(table))
    return {tuple(row[1:]): row[0] for row in conn.execute(query, (buckets,))}


def _sorted(keys: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    try:
        return sorted(keys)
    except TypeError:  # keys Python cannot order (e.g. json): any stable order
        return sorted(keys, key=repr)


def _key_text(table: Table, key: tuple[object, ...]) -> str:
    if len(key) == 1:
        return f"{table.primary_key[0]}={key[0]!r}"
    return f"({', '.join(table.primary_key)})=({', '.join(repr(v) for v in key)})"
