"""What verification knows about one database, taken once and reusable."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, replace

import psycopg

from pgvdrill.identifiers import parse_table_name
from pgvdrill.verify import ann
from pgvdrill.verify.fingerprint import Content, read_content
from pgvdrill.verify.schema import SchemaFacts, SequenceWindow, Table, read_schema
from pgvdrill.verify.session import reading


@dataclass(frozen=True)
class AnnBaseline:
    """An index's query set and what the index answered with it when the snapshot was taken."""

    index: ann.VectorIndex
    queries: tuple[str, ...]
    result: ann.AnnResult


@dataclass(frozen=True)
class Snapshot:
    """Schema facts, exact row counts, content fingerprints and ANN baselines of one
    database, all read in one repeatable-read transaction."""

    schema: SchemaFacts
    contents: dict[str, Content]  # plain tables only
    ann: dict[str, AnnBaseline]
    scope: frozenset[tuple[str, str]] | None
    seconds: float
    # sequences are not held by the transaction: where a backup took them at a moment of
    # its own, the restored values are compared with reads around that moment instead
    sequence_window: SequenceWindow | None = None


def table_scope(tables: Collection[str] | None) -> frozenset[tuple[str, str]] | None:
    """(schema, name) pairs of table names given as `items` or `schema.items`."""
    return None if tables is None else frozenset(parse_table_name(t) for t in tables)


def snapshot(conn: psycopg.Connection, *, tables: Collection[str] | None = None,
             queries_per_index: int = 20, k: int = ann.K) -> Snapshot:
    """Snapshot a database: its schema, counts and fingerprints, and per vector index a
    deterministic query set with the recall, plan and answers measured for it."""
    start = time.monotonic()
    scope = table_scope(tables)
    with reading(conn):
        facts, contents = read_facts(conn, scope)
        baselines = {}
        for key, index in ann.vector_indexes(conn).items():
            if index.table in facts.tables:
                queries = tuple(ann.sample_queries(conn, index, queries_per_index))
                baselines[key] = AnnBaseline(index, queries, ann.measure(conn, index, queries, k))
    return Snapshot(facts, contents, baselines, scope, round(time.monotonic() - start, 3))


def read_facts(conn: psycopg.Connection, scope: frozenset[tuple[str, str]] | None,
               keys: SchemaFacts | None = None) -> tuple[SchemaFacts, dict[str, Content]]:
    """Schema facts and contents of the tables in `scope` (inside `session.reading`).

    `keys`: the source's facts, whose primary keys bucket the rows, so that a target
    that lost its primary key still fingerprints comparably (and the loss shows as a
    schema difference, not as changed content).
    """
    facts = read_schema(conn).restricted(scope)
    contents = {key: read_content(conn, _keyed(table, keys))
                for key, table in sorted(facts.tables.items()) if table.kind == "r"}
    return facts, contents


def _keyed(table: Table, keys: SchemaFacts | None) -> Table:
    source = keys.tables.get(table.key) if keys is not None else None
    if source is None or source.primary_key == table.primary_key:
        return table
    if not {c.name for c in table.columns} >= set(source.primary_key):
        return table
    return replace(table, primary_key=source.primary_key)
