"""A dataset in memory: the rows of the three tables, the queries and their ground truth.

Row i of a table has id i + 1. Embeddings are float32; rows whose `has_*` flag is False
hold zeros in the array and are loaded as NULL. Timestamps are UTC datetime64[us].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pgvdrill.dataset.spec import DatasetSpec

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]
Times = npt.NDArray[np.datetime64]
Json = dict[str, Any]


@dataclass
class Documents:
    """documents(id, title, body, metadata, created_at, embedding, embedding_half)."""

    ids: Ints
    titles: list[str | None]
    bodies: list[str | None]
    metadata: list[Json]
    created_at: Times
    embeddings: Floats  # (n, dim)
    has_embedding: Flags

    @property
    def embeddings_half(self) -> npt.NDArray[np.float16]:
        """What embedding_half stores: the embeddings rounded to float16."""
        return self.embeddings.astype(np.float16)


@dataclass
class AccountBehaviors:
    """account_behaviors(id, account_id, event, occurred_at, behavior vector(32))."""

    ids: Ints
    account_ids: Ints
    events: list[Json]
    occurred_at: Times
    behaviors: Floats  # (n, 32)
    has_behavior: Flags


@dataclass
class ProductEmbeddings:
    """product_embeddings(id, name, price, tags, features sparsevec(1000), embedding).

    `features` is CSR: row i's non-zeros are at feature_indices[indptr[i]:indptr[i+1]]
    (0-based, ascending) with values feature_values[...]. Prices are in cents.
    """

    ids: Ints
    names: list[str]
    price_cents: Ints
    tags: list[list[str]]
    feature_indptr: Ints
    feature_indices: npt.NDArray[np.int32]
    feature_values: Floats
    embeddings: Floats  # (n, dim)


@dataclass
class Dataset:
    """Everything needed to load the tables and to check ANN answers against exact ones."""

    spec: DatasetSpec
    documents: Documents
    account_behaviors: AccountBehaviors
    product_embeddings: ProductEmbeddings
    queries: Floats  # (q, dim), searched against documents.embedding
    ground_truth: Ints  # (q, K): ids of the exact nearest documents by cosine distance
