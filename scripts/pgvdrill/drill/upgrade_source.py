"""The source of an upgrade drill: a pgvector dataset any pgvector version holds.

`vector` columns only (halfvec and sparsevec need pgvector 0.7), so the same data loads
into every installation an upgrade starts from: documents (an HNSW L2 and an HNSW cosine
index on its embeddings) and account_behaviors (an IVFFlat index). Loaded once per
installation and dataset into a cached template, as the other drills' sources are.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from pgvdrill.cluster import Backend, Cluster
from pgvdrill.dataset import Dataset, ivfflat_lists
from pgvdrill.drill.source import SOURCE_DB, require_pgvector

# the index the planner check asks for: ORDER BY embedding <-> $q LIMIT 10
HNSW_L2 = "documents_embedding_hnsw_l2"
SCHEMA = """
CREATE EXTENSION vector;
CREATE TABLE documents (id bigint PRIMARY KEY, title text, created_at timestamptz NOT NULL,
                        embedding vector({dim}));
CREATE TABLE account_behaviors (id bigint PRIMARY KEY, account_id bigint NOT NULL,
                                behavior vector({behavior_dim}));
"""
INDEXES = f"""
SET maintenance_work_mem = '1GB';
CREATE INDEX {HNSW_L2} ON documents USING hnsw (embedding vector_l2_ops)
    WITH (m = 16, ef_construction = 64);
CREATE INDEX documents_embedding_hnsw_cos ON documents USING hnsw
    (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
CREATE INDEX account_behaviors_behavior_ivfflat_l2 ON account_behaviors USING ivfflat
    (behavior vector_l2_ops) WITH (lists = {{lists}});
CREATE INDEX account_behaviors_account_id_idx ON account_behaviors (account_id);
ANALYZE documents, account_behaviors;
"""


def load(conn: psycopg.Connection[Any], data: Dataset) -> None:
    """The schema, the dataset's documents and behaviors (binary COPY), the indexes."""
    behaviors = data.account_behaviors
    conn.execute(SCHEMA.format(dim=data.spec.dim,
                               behavior_dim=behaviors.behaviors.shape[1]).encode())
    register_vector(conn)
    docs = data.documents
    with conn.cursor() as cur, cur.copy(
            "COPY documents (id, title, created_at, embedding) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["int8", "text", "timestamptz", "vector"])
        times = docs.created_at.astype("datetime64[us]").astype(object)
        for i, (id_, present) in enumerate(zip(docs.ids.tolist(), docs.has_embedding.tolist(),
                                               strict=True)):
            copy.write_row((id_, docs.titles[i], times[i].replace(tzinfo=dt.UTC),
                            docs.embeddings[i] if present else None))
    with conn.cursor() as cur, cur.copy(
            "COPY account_behaviors (id, account_id, behavior) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["int8", "int8", "vector"])
        for i, (id_, account, present) in enumerate(zip(
                behaviors.ids.tolist(), behaviors.account_ids.tolist(),
                behaviors.has_behavior.tolist(), strict=True)):
            copy.write_row((id_, account, behaviors.behaviors[i] if present else None))
    lists = ivfflat_lists(int(behaviors.has_behavior.sum()))
    conn.execute(INDEXES.replace("{lists}", str(lists)).encode())


def source_template(backend: Backend, data: Dataset) -> str:
    """Name of `backend`'s template holding `data` in SOURCE_DB (loaded now if missing)."""
    require_pgvector(backend)
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:10]
    name = f"upgrade-{data.spec.key()}-{digest}"

    def build(cluster: Cluster) -> None:
        with cluster.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SOURCE_DB)))
        with cluster.connect(SOURCE_DB) as conn:
            load(conn, data)
            conn.execute("CHECKPOINT")

    backend.ensure_template(name, build)
    return name
