"""Exact nearest neighbours by cosine distance: the ground truth ANN answers are scored on."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pgvdrill.dataset.data import Flags, Floats, Ints
from pgvdrill.dataset.spec import K
from pgvdrill.errors import ConfigError

QUERY_BLOCK = 256
ROW_BLOCK = 8192


def exact_top_k(embeddings: Floats, present: Flags, queries: Floats, k: int = K) -> Ints:
    """Ids (row index + 1) of the k rows nearest each query by cosine distance.

    Rows with present=False (NULL embeddings) never match. Computed in float64 in blocks,
    so memory stays bounded; ties go to the lower id.
    """
    rows = np.flatnonzero(present)
    if len(rows) < k:
        raise ConfigError(f"{len(rows)} embeddings are too few for a top-{k} ground truth",
                          f"give the dataset at least {k} rows with embeddings")
    truth = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), QUERY_BLOCK):
        block = _unit(queries[start:start + QUERY_BLOCK])
        best_dist = np.full((len(block), 0), np.inf)
        best_rows = np.empty((len(block), 0), dtype=np.int64)
        for first in range(0, len(rows), ROW_BLOCK):
            chunk = rows[first:first + ROW_BLOCK]
            dist = 1.0 - block @ _unit(embeddings[chunk]).T
            best_dist = np.hstack([best_dist, dist])
            best_rows = np.hstack([best_rows, np.broadcast_to(chunk, dist.shape)])
            keep = np.argpartition(best_dist, min(k, best_dist.shape[1]) - 1, axis=1)[:, :k]
            best_dist = np.take_along_axis(best_dist, keep, axis=1)
            best_rows = np.take_along_axis(best_rows, keep, axis=1)
        order = np.lexsort((best_rows, best_dist), axis=1)
        truth[start:start + len(block)] = np.take_along_axis(best_rows, order, axis=1) + 1
    return truth


def _unit(vectors: Floats) -> npt.NDArray[np.float64]:
    wide = vectors.astype(np.float64)
    wide /= np.linalg.norm(wide, axis=1, keepdims=True)
    return wide
