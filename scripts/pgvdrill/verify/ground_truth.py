"""The restored documents answer the dataset's queries like its exact ground truth.

This ties the database to the data that was generated or read from a file: a loader or
restore that altered vectors consistently on both sides would pass the source-vs-target
comparison, but not this one. Exact search must reproduce the ground truth (an absolute
requirement); the index path is judged against the source's own index on the same queries
when that was measured: what an approximate index finds depends on the data and its
parameters (random 768-d vectors at ef_search 40 find well under half), not on the restore.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import psycopg

from pgvdrill.verify.ann import EXACT_PATH, INDEX_PATH
from pgvdrill.verify.compare import noise_margin
from pgvdrill.verify.outcome import Check, run_check
from pgvdrill.verify.session import reading, set_local

KNN = ("SELECT id FROM public.documents WHERE embedding IS NOT NULL "
       "ORDER BY embedding OPERATOR(public.<=>) %s::public.vector LIMIT %s")


def top_ids(conn: psycopg.Connection, queries: npt.NDArray[np.float32], k: int,
            settings: dict[str, str]) -> list[list[int]]:
    """Ids of the k documents nearest each query, under `settings` (exact or index path)."""
    with reading(conn):
        set_local(conn, settings)
        return [[int(r[0]) for r in conn.execute(
                    KNN, (_literal(q), k), prepare=False)] for q in queries]


def index_recall(conn: psycopg.Connection, queries: npt.NDArray[np.float32],
                 truth: npt.NDArray[np.int64]) -> float:
    """The index path's recall@k against the ground truth: the source's own figure, which a
    restored copy's is judged against."""
    return _recall(top_ids(conn, queries, truth.shape[1], INDEX_PATH), truth)


def ground_truth_check(conn: psycopg.Connection, queries: npt.NDArray[np.float32],
                       truth: npt.NDArray[np.int64], *, threshold: float = 0.9,
                       source_index_recall: float | None = None,
                       tolerance: float = 0.05) -> Check:
    """Exact search must reproduce the ground truth (near-ties aside: >= 0.99 overlap); the
    index path must reach min(`threshold`, the source's index recall on the same queries)
    less a noise margin (compare.noise_margin), or `threshold` when the source's figure is
    not known."""
    k = truth.shape[1]
    base = threshold if source_index_recall is None else min(threshold, source_index_recall)
    margin = 0.0 if source_index_recall is None else noise_margin(base, truth.size, tolerance)

    def run(check: Check) -> None:
        for path, settings, required in (("exact", EXACT_PATH, 0.99),
                                         ("index", INDEX_PATH, round(base - margin, 4))):
            recall = _recall(top_ids(conn, queries, k, settings), truth)
            check.details[f"{path}_recall"] = round(recall, 4)
            if recall >= required:
                continue
            source = ("" if path == "exact" or source_index_recall is None else
                      f" = min({threshold}, the source's {source_index_recall:.2f}) - "
                      f"{margin:.2f}")
            check.problems.append(
                f"table public.documents: {path} search finds {recall:.2f} of the "
                f"dataset's true top-{k} neighbours (required >= {required}{source})")
        if source_index_recall is not None:
            check.details["source_index_recall"] = round(source_index_recall, 4)

    return run_check("ground_truth", run)


def _recall(found: list[list[int]], truth: npt.NDArray[np.int64]) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f) & set(t.tolist())) / k
                          for f, t in zip(found, truth, strict=True)]))


def _literal(vector: npt.NDArray[np.float32]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"
