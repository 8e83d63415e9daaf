"""Loading datasets into a real pgvector server: round trips, indexes, recall."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from pgvdrill import installation, osuser
from pgvdrill.cluster.base import Cluster
from pgvdrill.cluster.local import LocalBackend
from pgvdrill.dataset import (
    BTREE_INDEXES,
    TABLES,
    VECTOR_INDEXES,
    Dataset,
    DatasetSpec,
    columns,
    create_indexes,
    create_schema,
    generate,
    ivfflat_lists,
    load,
    populate,
    real_dataset,
    vector_indexes,
)
from pgvdrill.errors import ConfigError

SPEC = DatasetSpec(rows=2000, dim=64, kind="clustered")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A started server; the backend keeps its clusters in a fresh directory of its own."""
    backend = LocalBackend(installation.embedded(osuser.server_user()),
                           Path("/var/tmp/pgvdrill-test-work"),
                           Path("/var/tmp/pgvdrill-test-cache"))
    try:
        with backend.cluster("ds") as started:
            yield started
    finally:
        backend.close()


def database(cluster: Cluster, name: str) -> psycopg.Connection:
    with cluster.connect() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    return cluster.connect(name)


@pytest.fixture(scope="module")
def loaded(cluster: Cluster) -> Iterator[tuple[psycopg.Connection, Dataset]]:
    data = generate(SPEC)
    with database(cluster, "generated") as conn:
        populate(conn, data)
        register_vector(conn)
        yield conn, data


def column(conn: psycopg.Connection, table: str, expr: str) -> list[object]:
    with conn.cursor(binary=True) as cur:
        return [row[0] for row in cur.execute(f"SELECT {expr} FROM {table} ORDER BY id")]


def floats(values: list[object], present: np.ndarray, dtype: type) -> np.ndarray:
    assert [v is not None for v in values] == present.tolist()
    dim = next(v for v in values if v is not None).to_numpy().shape[0]  # type: ignore[attr-defined]
    return np.stack([v.to_numpy() if v is not None else np.zeros(dim, dtype)  # type: ignore[attr-defined]
                     for v in values])


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_vectors_round_trip_bit_exactly(loaded: tuple[psycopg.Connection, Dataset]) -> None:
    conn, data = loaded
    docs, behaviors = data.documents, data.account_behaviors
    embedding = floats(column(conn, "documents", "embedding"), docs.has_embedding, np.float32)
    assert same_bits(embedding, docs.embeddings)
    half = floats(column(conn, "documents", "embedding_half"), docs.has_embedding, np.float16)
    assert same_bits(half, docs.embeddings_half)
    behavior = floats(column(conn, "account_behaviors", "behavior"), behaviors.has_behavior,
                      np.float32)
    assert same_bits(behavior, behaviors.behaviors)
    products = data.product_embeddings
    product = floats(column(conn, "product_embeddings", "embedding"),
                     np.ones(len(products.ids), dtype=np.bool_), np.float32)
    assert same_bits(product, products.embeddings)
    features = column(conn, "product_embeddings", "features")
    assert [f.indices() for f in features] == [  # type: ignore[attr-defined]
        products.feature_indices[a:b].tolist()
        for a, b in zip(products.feature_indptr[:-1], products.feature_indptr[1:], strict=True)]
    values = np.array([v for f in features for v in f.values()], dtype=np.float32)  # type: ignore[attr-defined]
    assert same_bits(values, products.feature_values)


def test_other_columns_round_trip(loaded: tuple[psycopg.Connection, Dataset]) -> None:
    conn, data = loaded
    docs = data.documents
    assert column(conn, "documents", "title") == docs.titles
    assert column(conn, "documents", "body") == docs.bodies
    assert column(conn, "documents", "metadata") == docs.metadata
    created = column(conn, "documents", "created_at")
    assert np.array_equal(
        np.array([t.astimezone(dt.UTC).replace(tzinfo=None) for t in created],  # type: ignore[attr-defined]
                 dtype="datetime64[us]"), docs.created_at)
    assert column(conn, "account_behaviors", "event") == data.account_behaviors.events
    products = data.product_embeddings
    assert column(conn, "product_embeddings", "tags") == products.tags
    assert column(conn, "product_embeddings", "(price * 100)::bigint") == \
        products.price_cents.tolist()
    assert not " ".join(column(conn, "documents", "body")).isascii()  # type: ignore[arg-type]


def test_indexes_are_named_valid_and_analyzed(loaded: tuple[psycopg.Connection, Dataset]
                                              ) -> None:
    conn, data = loaded
    rows = conn.execute("""
        SELECT i.relname, t.relname, a.attname, o.opcname, x.indisvalid
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
        JOIN pg_opclass o ON o.oid = x.indclass[0]
        WHERE t.relname = ANY(%s) AND NOT x.indisprimary""", [list(TABLES)]).fetchall()
    found = {name: (table, col, opclass) for name, table, col, opclass, _ in rows}
    assert all(valid for *_, valid in rows)
    assert {name: found[name] for name in VECTOR_INDEXES} == VECTOR_INDEXES
    assert {name: found[name][:2] for name in BTREE_INDEXES} == BTREE_INDEXES
    assert set(found) == set(VECTOR_INDEXES) | set(BTREE_INDEXES)
    options = conn.execute("SELECT reloptions FROM pg_class"
                           " WHERE relname = 'account_behaviors_behavior_ivfflat_l2'").fetchone()
    lists = ivfflat_lists(int(data.account_behaviors.has_behavior.sum()))
    assert options == ([f"lists={lists}"],)
    analyzed = conn.execute("SELECT count(*) FROM pg_stat_user_tables"
                            " WHERE last_analyze IS NOT NULL").fetchone()
    assert analyzed == (len(TABLES),)


def recall(conn: psycopg.Connection, data: Dataset, column: str = "embedding") -> float:
    conn.execute("SET hnsw.ef_search = 100")
    hits = 0
    for query, truth in zip(data.queries, data.ground_truth, strict=True):
        rows = conn.execute(f"SELECT id FROM documents ORDER BY {column} <=> %s LIMIT 10",
                            [query]).fetchall()
        hits += len({r[0] for r in rows} & set(truth.tolist()))
    return hits / data.ground_truth.size


def test_hnsw_recall_against_ground_truth(loaded: tuple[psycopg.Connection, Dataset]) -> None:
    conn, data = loaded
    plan = conn.execute("EXPLAIN SELECT id FROM documents ORDER BY embedding <=> %s LIMIT 10",
                        [data.queries[0]]).fetchall()
    assert "documents_embedding_hnsw_cos" in str(plan)
    assert recall(conn, data) >= 0.95


def test_real_dataset_loads_with_high_recall(cluster: Cluster) -> None:
    data = real_dataset()
    with database(cluster, "real") as conn:
        populate(conn, data)
        register_vector(conn)
        assert conn.execute("SELECT count(embedding) FROM documents").fetchone() == (3000,)
        assert recall(conn, data) >= 0.95


def test_load_refuses_a_schema_of_another_dimension(cluster: Cluster) -> None:
    with database(cluster, "mismatch") as conn:
        create_schema(conn, 8)
        with pytest.raises(ConfigError, match=r"vector\(8\)"):
            load(conn, generate(DatasetSpec(rows=20, dim=16)))
        assert conn.execute("SELECT count(*) FROM documents").fetchone() == (0,)
        create_indexes(conn)  # an empty schema still gets every index
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'"
                            ).fetchone() == (len(VECTOR_INDEXES) + len(BTREE_INDEXES) + 3,)


def test_schema_leaves_out_the_types_an_old_pgvector_lacks() -> None:
    """pgvector before 0.7 has no halfvec or sparsevec: their columns and indexes go."""
    assert [c.name for c in columns("documents", {"vector"})] == [
        "id", "title", "body", "metadata", "created_at", "embedding"]
    assert "features" not in [c.name for c in columns("product_embeddings", {"vector"})]
    assert set(vector_indexes({"vector"})) == set(VECTOR_INDEXES) - {
        "documents_embedding_half_hnsw_cos"}
    assert vector_indexes({"vector", "halfvec", "sparsevec"}) == VECTOR_INDEXES
