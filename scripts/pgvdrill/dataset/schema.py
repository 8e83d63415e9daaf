"""The drill schema (modelled on the runbook's tables) and its indexes.

Vector indexes: HNSW with m=16, ef_construction=64 (pgvector's defaults, written out so
index definitions are explicit); IVFFlat with `ivfflat_lists(rows)` lists (at least 25:
with server-default ivfflat.probes = 1 an IVFFlat index built before its data answers
visibly worse than one built after it).
"""

from __future__ import annotations

from typing import NamedTuple

import psycopg
from psycopg import sql

from pgvdrill.dataset.generate import BEHAVIOR_DIM, SPARSE_DIM, ivfflat_lists
from pgvdrill.dataset.spec import check_dim

TABLES: tuple[str, ...] = ("documents", "account_behaviors", "product_embeddings")
HNSW_OPTIONS = "m = 16, ef_construction = 64"


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
VECTOR_INDEXES: dict[str, tuple[str, str, str]] = {
    name: (ix.table, ix.column, ix.opclass) for name, ix in _VECTOR_INDEXES.items()
}
BTREE_INDEXES: dict[str, tuple[str, str]] = {
    "documents_created_at_idx": ("documents", "created_at"),
    "account_behaviors_account_id_idx": ("account_behaviors", "account_id"),
}

_TABLES_DDL = """
CREATE TABLE documents (
    id bigint PRIMARY KEY,
    title text,
    body text,
    metadata jsonb,
    created_at timestamptz NOT NULL,
    embedding vector({dim}),
    embedding_half halfvec({dim})
);
CREATE TABLE account_behaviors (
    id bigint PRIMARY KEY,
    account_id bigint NOT NULL,
    event jsonb,
    occurred_at timestamptz NOT NULL,
    behavior vector({behavior_dim})
);
CREATE TABLE product_embeddings (
    id bigint PRIMARY KEY,
    name text NOT NULL,
    price numeric(10,2),
    tags text[],
    features sparsevec({sparse_dim}),
    embedding vector({dim})
);
"""


def create_schema(conn: psycopg.Connection, dim: int) -> None:
    """The vector extension and the three empty tables (only their primary keys indexed)."""
    check_dim(dim)
    ddl = _TABLES_DDL.format(dim=dim, behavior_dim=BEHAVIOR_DIM, sparse_dim=SPARSE_DIM)
    with conn.transaction():
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(ddl.encode())


def create_indexes(conn: psycopg.Connection, *, maintenance_work_mem: str = "1GB") -> None:
    """Every secondary index, in one transaction; run it after the data load."""
    with conn.transaction():
        conn.execute("SELECT set_config('maintenance_work_mem', %s, true)",
                     [maintenance_work_mem])
        for name, (table, column) in BTREE_INDEXES.items():
            conn.execute(sql.SQL("CREATE INDEX {} ON {} ({})").format(
                sql.Identifier(name), sql.Identifier(table), sql.Identifier(column)))
        for name, index in _VECTOR_INDEXES.items():
            conn.execute(_vector_index_ddl(conn, name, index))


def _vector_index_ddl(conn: psycopg.Connection, name: str, index: VectorIndex) -> sql.Composed:
    options: sql.Composable = sql.SQL(HNSW_OPTIONS)
    if index.method == "ivfflat":
        rows = conn.execute(sql.SQL("SELECT count({}) FROM {}").format(
            sql.Identifier(index.column), sql.Identifier(index.table))).fetchone()
        options = sql.SQL("lists = {}").format(ivfflat_lists(rows[0] if rows else 0))
    return sql.SQL("CREATE INDEX {} ON {} USING {} ({} {}) WITH ({})").format(
        sql.Identifier(name), sql.Identifier(index.table), sql.SQL(index.method),
        sql.Identifier(index.column), sql.SQL(index.opclass), options)
