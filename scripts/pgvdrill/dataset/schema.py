"""The drill schema (modelled on the runbook's tables) and its indexes.

Vector indexes: HNSW with m=16, ef_construction=64 (pgvector's defaults, written out so
index definitions are explicit); IVFFlat with `ivfflat_lists(rows)` lists (at least 25:
with server-default ivfflat.probes = 1 an IVFFlat index built before its data answers
visibly worse than one built after it).

Capabilities, not versions, shape it: a column of a type the server's pgvector lacks
(halfvec and sparsevec before 0.7) is left out, and so are the indexes on it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

import psycopg
from psycopg import sql

from pgvdrill.capabilities import vector_types
from pgvdrill.dataset.generate import BEHAVIOR_DIM, SPARSE_DIM, ivfflat_lists
from pgvdrill.dataset.spec import check_dim

TABLES: tuple[str, ...] = ("documents", "account_behaviors", "product_embeddings")
HNSW_OPTIONS = "m = 16, ef_construction = 64"


class Column(NamedTuple):
    name: str
    ddl: str  # its type and constraints in CREATE TABLE ({dim} etc. filled in)
    copy_type: str  # the type binary COPY sends
    needs: str | None = None  # the pgvector type it needs (None: always there)


# Every column a drill table can have; one whose `needs` the server's pgvector lacks
# (halfvec and sparsevec before 0.7) is left out, with the indexes on it.
COLUMNS: dict[str, tuple[Column, ...]] = {
    "documents": (
        Column("id", "bigint PRIMARY KEY", "int8"), Column("title", "text", "text"),
        Column("body", "text", "text"), Column("metadata", "jsonb", "jsonb"),
        Column("created_at", "timestamptz NOT NULL", "timestamptz"),
        Column("embedding", "vector({dim})", "vector", "vector"),
        Column("embedding_half", "halfvec({dim})", "halfvec", "halfvec")),
    "account_behaviors": (
        Column("id", "bigint PRIMARY KEY", "int8"),
        Column("account_id", "bigint NOT NULL", "int8"), Column("event", "jsonb", "jsonb"),
        Column("occurred_at", "timestamptz NOT NULL", "timestamptz"),
        Column("behavior", "vector({behavior_dim})", "vector", "vector")),
    "product_embeddings": (
        Column("id", "bigint PRIMARY KEY", "int8"), Column("name", "text NOT NULL", "text"),
        Column("price", "numeric(10,2)", "numeric"), Column("tags", "text[]", "text[]"),
        Column("features", "sparsevec({sparse_dim})", "sparsevec", "sparsevec"),
        Column("embedding", "vector({dim})", "vector", "vector")),
}


class VectorIndex(NamedTuple):
    table: str
    column: str
    opclass: str
    method: str  # "hnsw" or "ivfflat"


_VECTOR_INDEXES = {
    "documents_embedding_hnsw_cos": VectorIndex(
        "documents", "embedding", "vector_cosine_ops", "hnsw"),
    "documents_embedding_half_hnsw_cos": VectorIndex(
        "documents", "embedding_half", "halfvec_cosine_ops", "hnsw"),
    "product_embeddings_embedding_hnsw_l2": VectorIndex(
        "product_embeddings", "embedding", "vector_l2_ops", "hnsw"),
    "account_behaviors_behavior_ivfflat_l2": VectorIndex(
        "account_behaviors", "behavior", "vector_l2_ops", "ivfflat"),
}
# every vector index of the full schema (pgvector 0.7 and later)
VECTOR_INDEXES: dict[str, tuple[str, str, str]] = {
    name: (ix.table, ix.column, ix.opclass) for name, ix in _VECTOR_INDEXES.items()
}
BTREE_INDEXES: dict[str, tuple[str, str]] = {
    "documents_created_at_idx": ("documents", "created_at"),
    "account_behaviors_account_id_idx": ("account_behaviors", "account_id"),
}


def columns(table: str, types: Collection[str]) -> tuple[Column, ...]:
    """The columns `table` has where pgvector offers the types `types`."""
    return tuple(c for c in COLUMNS[table] if c.needs is None or c.needs in types)


def vector_indexes(types: Collection[str]) -> dict[str, tuple[str, str, str]]:
    """The vector indexes of the schema where pgvector offers the types `types`."""
    return {name: ix for name, ix in VECTOR_INDEXES.items()
            if ix[1] in {c.name for c in columns(ix[0], types)}}


def create_schema(conn: psycopg.Connection, dim: int) -> frozenset[str]:
    """The vector extension and the three empty tables (only their primary keys indexed),
    with the columns the server's pgvector has types for; returns those types."""
    check_dim(dim)
    with conn.transaction():
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        types = vector_types(conn)
        for table in TABLES:
            ddl = ",\n    ".join(f"{c.name} {c.ddl}" for c in columns(table, types)).format(
                dim=dim, behavior_dim=BEHAVIOR_DIM, sparse_dim=SPARSE_DIM)
            conn.execute(f"CREATE TABLE {table} (\n    {ddl}\n)".encode())
    return types


def create_indexes(conn: psycopg.Connection, *, maintenance_work_mem: str = "1GB") -> None:
    """Every secondary index the tables' columns allow, in one transaction; run it after
    the data load."""
    with conn.transaction():
        conn.execute("SELECT set_config('maintenance_work_mem', %s, true)",
                     [maintenance_work_mem])
        for name, (table, column) in BTREE_INDEXES.items():
            conn.execute(sql.SQL("CREATE INDEX {} ON {} ({})").format(
                sql.Identifier(name), sql.Identifier(table), sql.Identifier(column)))
        for name in vector_indexes(vector_types(conn)):
            conn.execute(_vector_index_ddl(conn, name, _VECTOR_INDEXES[name]))


def documents_copies_sql(conn: psycopg.Connection, where: str) -> sql.Composed:
    """INSERT copies of the documents matching `where` (trusted SQL) under new ids (after
    the highest) and created now, with every column the database's documents table has."""
    names = [c.name for c in columns("documents", vector_types(conn))]
    copied = [sql.SQL("id + (SELECT max(id) FROM documents)") if n == "id" else
              sql.SQL("now()") if n == "created_at" else sql.Identifier(n) for n in names]
    return sql.SQL("INSERT INTO documents ({}) SELECT {} FROM documents WHERE {}").format(
        sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(", ").join(copied),
        sql.SQL(where))


def _vector_index_ddl(conn: psycopg.Connection, name: str, index: VectorIndex) -> sql.Composed:
    options: sql.Composable = sql.SQL(HNSW_OPTIONS)
    if index.method == "ivfflat":
        rows = conn.execute(sql.SQL("SELECT count({}) FROM {}").format(
            sql.Identifier(index.column), sql.Identifier(index.table))).fetchone()
        options = sql.SQL("lists = {}").format(ivfflat_lists(rows[0] if rows else 0))
    return sql.SQL("CREATE INDEX {} ON {} USING {} ({} {}) WITH ({})").format(
        sql.Identifier(name), sql.Identifier(index.table), sql.SQL(index.method),
        sql.Identifier(index.column), sql.SQL(index.opclass), options)
