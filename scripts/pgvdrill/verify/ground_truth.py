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
from pgvdrill.verify.compare import index_requirement
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
    index path must reach `index_requirement`, and whatever the source's figure, find some
    true neighbour and return at least half the rows exact search returns."""
    k = truth.shape[1]
    required, how = index_requirement(threshold, source_index_recall, truth.size, tolerance)

    def run(check: Check) -> None:
        exact = top_ids(conn, queries, k, EXACT_PATH)
        found = top_ids(conn, queries, k, INDEX_PATH)
        rows = {"exact": _mean_rows(exact), "index": _mean_rows(found)}
        for path, ids, needed, why in (("exact", exact, 0.99, ""),
                                       ("index", found, required, how)):
            recall = _recall(ids, truth)
            check.details[f"{path}_recall"] = round(recall, 4)
            if recall < needed or (recall == 0 and _recall(exact, truth) > 0):
                check.problems.append(
                    f"table public.documents: {path} search finds {recall:.2f} of the "
                    f"dataset's true top-{k} neighbours (required >= {needed}{why})")
        if rows["index"] < rows["exact"] / 2:
            check.problems.append(
                f"table public.documents: index search returns {rows['index']:.1f} rows "
                f"per query where exact search returns {rows['exact']:.1f} (of {k} asked): "
                "the index is missing rows")
        if source_index_recall is not None:
            check.details["source_index_recall"] = round(source_index_recall, 4)

    return run_check("ground_truth", run)


def _mean_rows(found: list[list[int]]) -> float:
    return float(np.mean([len(f) for f in found])) if found else 0.0


def _recall(found: list[list[int]], truth: npt.NDArray[np.int64]) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f) & set(t.tolist())) / k
                          for f, t in zip(found, truth, strict=True)]))


def _literal(vector: npt.NDArray[np.float32]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"
