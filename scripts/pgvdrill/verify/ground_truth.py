"""The restored documents answer the dataset's queries like its exact ground truth.

This ties the database to the data that was generated or read from a file: a loader or
restore that altered vectors consistently on both sides would pass the source-vs-target
comparison, but not this one.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import psycopg

from pgvdrill.verify.ann import EXACT_PATH, INDEX_PATH
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


def ground_truth_check(conn: psycopg.Connection, queries: npt.NDArray[np.float32],
                       truth: npt.NDArray[np.int64], *, threshold: float = 0.9) -> Check:
    """Exact search must reproduce the ground truth (near-ties aside: >= 0.99 overlap) and
    the index path must reach `threshold` recall@k against it."""
    k = truth.shape[1]

    def run(check: Check) -> None:
        for path, settings, required in (("exact", EXACT_PATH, 0.99),
                                         ("index", INDEX_PATH, threshold)):
            found = top_ids(conn, queries, k, settings)
            recall = float(np.mean([len(set(f) & set(t.tolist())) / k
                                    for f, t in zip(found, truth, strict=True)]))
            check.details[f"{path}_recall"] = round(recall, 4)
            if recall < required:
                check.problems.append(
                    f"table public.documents: {path} search finds {recall:.2f} of the "
                    f"dataset's true top-{k} neighbours (required >= {required})")

    return run_check("ground_truth", run)


def _literal(vector: npt.NDArray[np.float32]) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"
