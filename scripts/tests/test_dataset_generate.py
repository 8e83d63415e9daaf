"""Seeded generation, specs and exact ground truth (no server)."""

from __future__ import annotations

import numpy as np
import pytest

from pgvdrill.dataset import DatasetSpec, K, generate, ivfflat_lists
from pgvdrill.dataset.generate import MAX_FEATURES, SPARSE_DIM, behavior_segments
from pgvdrill.dataset.truth import exact_top_k
from pgvdrill.errors import ConfigError

SMALL = DatasetSpec(rows=300, dim=16, queries=5, null_fraction=0.1)


def test_key_names_the_dataset() -> None:
    assert DatasetSpec().key() == "gaussian-2000x64-s7"
    assert DatasetSpec(kind="clustered", rows=10, dim=3, seed=1, queries=4,
                       null_fraction=0).key() == "clustered-10x3-s1-q4-n0"


@pytest.mark.parametrize("bad", [
    {"kind": "uniform"}, {"dim": 0}, {"dim": 2001}, {"queries": 0}, {"seed": -1},
    {"null_fraction": 1.0}, {"null_fraction": -0.1}, {"rows": 9},
    {"rows": 12, "null_fraction": 0.5},
])
def test_bad_specs_are_config_errors(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        DatasetSpec(**bad)  # type: ignore[arg-type]


def test_file_kinds_are_not_generated() -> None:
    with pytest.raises(ConfigError, match="from_file"):
        generate(DatasetSpec(kind="file:x"))


def test_same_spec_same_data_other_seed_other_data() -> None:
    a, b, c = generate(SMALL), generate(SMALL), generate(DatasetSpec(**{**vars(SMALL), "seed": 8}))
    for table in ("documents", "account_behaviors", "product_embeddings"):
        for field, value in vars(getattr(a, table)).items():
            other = getattr(getattr(b, table), field)
            assert (np.array_equal(value, other) if isinstance(value, np.ndarray)
                    else value == other), f"{table}.{field}"
    assert np.array_equal(a.queries, b.queries)
    assert np.array_equal(a.ground_truth, b.ground_truth)
    assert not np.array_equal(a.documents.embeddings, c.documents.embeddings)
    assert a.documents.bodies != c.documents.bodies


@pytest.mark.parametrize("kind", ["gaussian", "clustered"])
def test_shapes_nulls_and_unit_vectors(kind: str) -> None:
    data = generate(DatasetSpec(rows=300, dim=16, queries=5, null_fraction=0.1, kind=kind))
    docs = data.documents
    assert docs.embeddings.shape == (300, 16) and docs.embeddings.dtype == np.float32
    assert np.array_equal(docs.ids, np.arange(1, 301))
    assert (~docs.has_embedding).sum() == 30
    assert not docs.embeddings[~docs.has_embedding].any()
    norms = np.linalg.norm(docs.embeddings[docs.has_embedding], axis=1)
    assert np.allclose(norms, 1, atol=1e-6)
    assert np.allclose(np.linalg.norm(data.queries, axis=1), 1, atol=1e-6)
    assert data.queries.shape == (5, 16) and data.queries.dtype == np.float32
    assert data.ground_truth.shape == (5, K) and data.ground_truth.dtype == np.int64
    assert docs.has_embedding[data.ground_truth - 1].all()
    assert len(data.account_behaviors.ids) == 150 and len(data.product_embeddings.ids) == 75


def test_clustered_data_is_clustered() -> None:
    def mean_top1(kind: str) -> float:
        data = generate(DatasetSpec(rows=1000, dim=32, kind=kind, null_fraction=0))
        sims = data.queries @ data.documents.embeddings.T
        return float(sims.max(axis=1).mean())
    assert mean_top1("clustered") > mean_top1("gaussian") + 0.2


def test_text_is_deterministic_non_ascii_and_timestamps_in_range() -> None:
    docs = generate(SMALL).documents
    text = " ".join(t or "" for t in docs.titles + docs.bodies)
    assert not text.isascii()
    assert docs.created_at.min() >= np.datetime64("2025-01-01")
    assert docs.created_at.max() < np.datetime64("2025-10-29")
    assert {"lang", "source", "tags", "version", "reviewed"} <= docs.metadata[0].keys()


def test_sparse_features_are_valid_csr() -> None:
    products = generate(SMALL).product_embeddings
    ptr = products.feature_indptr
    counts = np.diff(ptr)
    assert ptr[0] == 0 and ptr[-1] == len(products.feature_indices)
    assert counts.min() >= 1 and counts.max() <= MAX_FEATURES
    for i in range(len(counts)):
        row = products.feature_indices[ptr[i]:ptr[i + 1]]
        assert (np.diff(row) > 0).all() and row.min() >= 0 and row.max() < SPARSE_DIM
    assert (products.feature_values != 0).all()


def test_exact_top_k_matches_brute_force_and_skips_nulls() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((500, 8)).astype(np.float32)
    queries = rng.standard_normal((7, 8)).astype(np.float32)
    present = rng.random(500) > 0.2
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    dist = 1 - (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    dist[:, ~present] = np.inf
    expected = np.argsort(dist, axis=1, kind="stable")[:, :K] + 1
    assert np.array_equal(exact_top_k(vectors, present, queries), expected)


def test_exact_top_k_breaks_ties_by_id_and_needs_k_rows() -> None:
    vectors = np.ones((12, 2), dtype=np.float32)
    truth = exact_top_k(vectors, np.ones(12, dtype=np.bool_), np.ones((1, 2), dtype=np.float32))
    assert truth.tolist() == [list(range(1, K + 1))]
    with pytest.raises(ConfigError, match="too few"):
        exact_top_k(vectors, np.arange(12) < 5, vectors[:1])


def test_ivfflat_lists() -> None:
    """At least 25 lists (30 rows a list at most), rows / 1000 from 25k rows, sqrt beyond 1M."""
    sizes = (0, 59, 300, 950, 5000, 40_000, 1_000_000, 4_000_000)
    assert [ivfflat_lists(n) for n in sizes] == [1, 1, 10, 25, 25, 40, 1000, 2000]


def test_behaviours_cluster_in_more_segments_than_lists() -> None:
    """Each behaviour's nearest neighbour is far closer than a typical other behaviour, and
    the segments outnumber the IVFFlat lists (k-means groups segments, never splits one)."""
    behaviors = generate(DatasetSpec(rows=2000)).account_behaviors
    vectors = behaviors.behaviors[behaviors.has_behavior]
    dist = np.linalg.norm(vectors[:200, None] - vectors[None], axis=2)
    dist[np.arange(200), np.arange(200)] = np.inf
    assert np.median(dist.min(axis=1)) < 0.55 * np.median(dist[np.isfinite(dist)])
    assert behavior_segments(len(vectors)) == 40 > ivfflat_lists(len(vectors)) == 25
