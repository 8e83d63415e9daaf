"""Seeded datasets: vectors from a spec, and the companion columns every dataset gets.

Each part draws from its own random stream (seed, part), so the tables are independent
of each other and a file dataset gets the same companion tables as a generated one.
Sizes: account_behaviors has rows // 2 rows, product_embeddings rows // 4 (at least 1).

Behaviour vectors cluster (accounts fall into behaviour segments): non-negative
features in [0, 1), one segment centre per ~1.6 IVFFlat lists plus Gaussian spread. An
IVFFlat index built on the data finds the segments (recall@10 near 1 with probes=1);
one built on an empty table has random centres in the same unit cube, which cut the
segments apart (recall about half): the pitfall of a schema-first restore shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import isqrt

import numpy as np
import numpy.typing as npt

from pgvdrill.dataset import text
from pgvdrill.dataset.data import (
    AccountBehaviors,
    Dataset,
    Documents,
    Flags,
    Floats,
    Ints,
    ProductEmbeddings,
)
from pgvdrill.dataset.spec import KINDS, DatasetSpec
from pgvdrill.dataset.truth import exact_top_k
from pgvdrill.errors import ConfigError

BEHAVIOR_DIM = 32
BEHAVIOR_NULL_FRACTION = 0.05
SPARSE_DIM = 1000
MAX_FEATURES = 8  # non-zeros per sparse feature vector: 1..MAX_FEATURES
CLUSTER_SPREAD = 0.6  # expected norm of a point's offset from its (unit) cluster centre
BEHAVIOR_SPREAD = 0.2  # per-feature standard deviation around a behaviour segment's centre
MIN_LISTS = 25  # IVFFlat lists on small tables: fewer would make search (nearly) exact


def generate(spec: DatasetSpec) -> Dataset:
    """The dataset `spec` describes: the same spec always gives the same arrays."""
    if spec.kind not in KINDS:
        raise ConfigError(f"cannot generate a {spec.kind!r} dataset",
                          "load file datasets with from_file() or real_dataset()")
    vectors = _unit_vectors(spec, spec.rows + spec.queries, _stream(spec.seed, "vectors"))
    missing = _stream(spec.seed, "nulls").choice(
        spec.rows, size=round(spec.rows * spec.null_fraction), replace=False)
    present = np.ones(spec.rows, dtype=np.bool_)
    present[missing] = False
    embeddings = vectors[:spec.rows]
    embeddings[~present] = 0.0
    return assemble(spec, embeddings, present, vectors[spec.rows:])


def assemble(
    spec: DatasetSpec, embeddings: Floats, present: Flags, queries: Floats, *,
    titles: Sequence[str | None] | None = None, bodies: Sequence[str | None] | None = None,
    ground_truth: Ints | None = None,
) -> Dataset:
    """A Dataset around given document vectors: seeded text where none is given, the
    companion tables, and the exact ground truth unless one is given."""
    rng = _stream(spec.seed, "documents")
    n = len(embeddings)
    documents = Documents(
        ids=np.arange(1, n + 1, dtype=np.int64),
        titles=list(titles) if titles is not None else list(text.phrases(rng, n, 2, 5)),
        bodies=list(bodies) if bodies is not None else text.bodies(rng, n),
        metadata=text.document_metadata(rng, n),
        created_at=text.timestamps(rng, n),
        embeddings=embeddings,
        has_embedding=present,
    )
    if ground_truth is None:
        ground_truth = exact_top_k(embeddings, present, queries)
    return Dataset(spec, documents, _account_behaviors(spec), _product_embeddings(spec),
                   queries, ground_truth)


def _stream(seed: int, part: str) -> np.random.Generator:
    return np.random.default_rng([seed, *part.encode()])


def _unit_vectors(spec: DatasetSpec, n: int, rng: np.random.Generator) -> Floats:
    """n vectors of the spec's kind, L2-normalised, float32."""
    vectors = rng.standard_normal((n, spec.dim), dtype=np.float32)
    if spec.kind == "clustered":
        centres = _normalise(rng.standard_normal((_clusters(spec.rows), spec.dim),
                                                 dtype=np.float32))
        vectors *= np.float32(CLUSTER_SPREAD / np.sqrt(spec.dim))
        vectors += centres[rng.integers(len(centres), size=n)]
    return _normalise(vectors)


def _clusters(rows: int) -> int:
    return int(np.clip(rows // 100, 2, 256))


def _normalise(vectors: Floats) -> Floats:
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def ivfflat_lists(rows: int) -> int:
    """IVFFlat lists for `rows` vectors: pgvector's advice (rows / 1000 up to a million
    rows, sqrt(rows) beyond), but at least MIN_LISTS (and at least 30 rows a list), so
    that an index built without its data answers measurably worse than one built after."""
    if rows > 1_000_000:
        return isqrt(rows)
    return max(1, rows // 1000, min(MIN_LISTS, rows // 30))


def behavior_segments(rows: int) -> int:
    """Segment centres behaviour vectors cluster around: more than the index's lists, so
    that k-means groups whole segments instead of splitting one."""
    return max(2, ivfflat_lists(rows) * 8 // 5)


def _account_behaviors(spec: DatasetSpec) -> AccountBehaviors:
    rng = _stream(spec.seed, "account_behaviors")
    n = max(1, spec.rows // 2)
    present = rng.random(n) >= BEHAVIOR_NULL_FRACTION
    centres = rng.random((behavior_segments(n), BEHAVIOR_DIM), dtype=np.float32)
    behaviors = rng.standard_normal((n, BEHAVIOR_DIM), dtype=np.float32)
    behaviors *= np.float32(BEHAVIOR_SPREAD)
    behaviors += centres[rng.integers(len(centres), size=n)]
    behaviors[~present] = 0.0
    return AccountBehaviors(
        ids=np.arange(1, n + 1, dtype=np.int64),
        account_ids=rng.integers(1, max(2, n // 10) + 1, size=n, dtype=np.int64),
        events=text.events(rng, n),
        occurred_at=text.timestamps(rng, n),
        behaviors=behaviors,
        has_behavior=present,
    )


def _product_embeddings(spec: DatasetSpec) -> ProductEmbeddings:
    rng = _stream(spec.seed, "product_embeddings")
    n = max(1, spec.rows // 4)
    indptr, indices = _sparse_pattern(rng, n)
    values = rng.uniform(0.1, 1.0, size=len(indices)).astype(np.float32)
    return ProductEmbeddings(
        ids=np.arange(1, n + 1, dtype=np.int64),
        names=text.phrases(rng, n, 1, 3),
        price_cents=rng.integers(1, 10_000_000, size=n, dtype=np.int64),
        tags=text.tag_lists(rng, n),
        feature_indptr=indptr,
        feature_indices=indices,
        feature_values=values,
        embeddings=_normalise(rng.standard_normal((n, spec.dim), dtype=np.float32)),
    )


def _sparse_pattern(rng: np.random.Generator, n: int) -> tuple[Ints, npt.NDArray[np.int32]]:
    """CSR indptr and ascending, distinct column indices: 1..MAX_FEATURES per row."""
    counts = rng.integers(1, MAX_FEATURES + 1, size=(n, 1))
    draws = rng.integers(SPARSE_DIM, size=(n, MAX_FEATURES))
    cols = np.sort(np.where(np.arange(MAX_FEATURES) < counts, draws, SPARSE_DIM), axis=1)
    keep = cols < SPARSE_DIM
    keep[:, 1:] &= cols[:, 1:] != cols[:, :-1]
    indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int64)
    return indptr, cols[keep].astype(np.int32)
