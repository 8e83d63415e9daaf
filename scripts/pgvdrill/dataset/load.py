"""Loading a Dataset: binary COPY through pgvector's psycopg adapters, then ANALYZE."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal

import psycopg
from pgvector import HalfVector, SparseVector
from pgvector.psycopg import register_vector
from psycopg import sql

from pgvdrill.capabilities import vector_types
from pgvdrill.dataset.data import Dataset, Times
from pgvdrill.dataset.generate import SPARSE_DIM
from pgvdrill.dataset.schema import COLUMNS, TABLES, Column, columns, create_indexes, create_schema
from pgvdrill.errors import ConfigError

Row = Sequence[object]


def populate(conn: psycopg.Connection, data: Dataset) -> None:
    """Schema, data and indexes for `data` in an empty database."""
    create_schema(conn, data.spec.dim)
    load(conn, data)
    create_indexes(conn)


def load(conn: psycopg.Connection, data: Dataset) -> None:
    """COPY the three tables (FORMAT BINARY) in one transaction, then ANALYZE them; the
    columns are those the tables have (create_schema leaves out the types pgvector lacks)."""
    register_vector(conn)
    with conn.transaction():
        _check_dim(conn, data.spec.dim)
        types = vector_types(conn)
        for table, rows in (("documents", _document_rows(data)),
                            ("account_behaviors", _behavior_rows(data)),
                            ("product_embeddings", _product_rows(data))):
            _copy(conn, table, COLUMNS[table], columns(table, types), rows)
        for table in TABLES:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))


def _check_dim(conn: psycopg.Connection, dim: int) -> None:
    row = conn.execute("SELECT atttypmod FROM pg_attribute"
                       " WHERE attrelid = 'documents'::regclass AND attname = 'embedding'"
                       ).fetchone()
    if row is None or row[0] != dim:
        raise ConfigError(
            f"documents.embedding is vector({row[0] if row else '?'}), the dataset has "
            f"{dim} dimensions", "create the schema with create_schema(conn, data.spec.dim)")


def _copy(conn: psycopg.Connection, table: str, every: tuple[Column, ...],
          present: tuple[Column, ...], rows: Iterator[Row]) -> None:
    """COPY `rows` (a value for each of `every` column) into the `present` columns."""
    keep = [every.index(c) for c in present]
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c.name) for c in present))
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types([c.copy_type for c in present])
        for row in rows:
            copy.write_row([row[i] for i in keep])


def _document_rows(data: Dataset) -> Iterator[Row]:
    docs = data.documents
    halves = docs.embeddings_half
    for i, (id_, present, at) in enumerate(zip(docs.ids.tolist(), docs.has_embedding.tolist(),
                                               _datetimes(docs.created_at), strict=True)):
        yield (id_, docs.titles[i], docs.bodies[i], docs.metadata[i], at,
               docs.embeddings[i] if present else None,
               HalfVector(halves[i]) if present else None)


def _behavior_rows(data: Dataset) -> Iterator[Row]:
    table = data.account_behaviors
    for i, (id_, account, present, at) in enumerate(zip(
            table.ids.tolist(), table.account_ids.tolist(), table.has_behavior.tolist(),
            _datetimes(table.occurred_at), strict=True)):
        yield id_, account, table.events[i], at, table.behaviors[i] if present else None


def _product_rows(data: Dataset) -> Iterator[Row]:
    table = data.product_embeddings
    ptr = table.feature_indptr.tolist()
    indices, values = table.feature_indices.tolist(), table.feature_values.tolist()
    for i, (id_, cents) in enumerate(zip(table.ids.tolist(), table.price_cents.tolist(),
                                         strict=True)):
        features = dict(zip(indices[ptr[i]:ptr[i + 1]], values[ptr[i]:ptr[i + 1]], strict=True))
        yield (id_, table.names[i], Decimal(cents).scaleb(-2), table.tags[i],
               SparseVector(features, SPARSE_DIM), table.embeddings[i])


def _datetimes(times: Times) -> Iterator[dt.datetime]:
    for naive in times.astype("datetime64[us]").astype(object):
        yield naive.replace(tzinfo=dt.UTC)
