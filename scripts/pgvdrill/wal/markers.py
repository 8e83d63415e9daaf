"""The marker workload: rows with vectors committed one per transaction, each remembered
with its xid, commit time and commit record LSN, so that a point-in-time recovery can be
checked exactly: every marker committed before the target present (bit-exact), every one
after it absent, and the vector index answering like exact search over the expected set."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from pgvdrill.wal.names import format_lsn, parse_lsn

TABLE = "pitr_markers"
DIM = 8
DDL = f"""
CREATE TABLE {TABLE} (id int PRIMARY KEY, committed_at timestamptz NOT NULL,
                      xid xid8 NOT NULL, embedding vector({DIM}) NOT NULL);
CREATE INDEX {TABLE}_embedding_idx ON {TABLE} USING hnsw (embedding vector_l2_ops);
"""


@dataclass(frozen=True)
class Marker:
    """One committed marker row and where its commit lies in time, xids and WAL."""

    id: int
    xid: int
    commit_time: datetime  # the commit record's timestamp (track_commit_timestamp)
    commit_lsn: int  # start of the commit record
    vector: tuple[float, ...]

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "xid": self.xid, "commit_time": self.commit_time.isoformat(),
                "commit_lsn": format_lsn(self.commit_lsn)}


class MarkerWriter:
    """Writes markers into `conn`'s database; `wal_conn` (any database of the same server,
    with pg_walinspect) finds their commit records. Needs track_commit_timestamp = on."""

    def __init__(self, conn: psycopg.Connection[Any], wal_conn: psycopg.Connection[Any],
                 seed: int = 11) -> None:
        self.conn = conn
        self.wal_conn = wal_conn
        self.rng = np.random.default_rng(seed)
        self.written: list[Marker] = []
        register_vector(conn)

    def create(self) -> None:
        self.conn.execute(DDL.encode())
        self.wal_conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")

    def write(self, marker_id: int) -> Marker:
        """Commit one marker in its own transaction and locate its commit record."""
        vector = self.rng.standard_normal(DIM).astype(np.float32)
        before = self._lsn("pg_current_wal_insert_lsn()")
        with self.conn.transaction():
            row = self.conn.execute(
                f"INSERT INTO {TABLE} VALUES (%s, clock_timestamp(), pg_current_xact_id(), %s)"
                " RETURNING xid::text::bigint", (marker_id, vector)).fetchone()
        assert row is not None
        xid = int(row[0])
        commit = self.wal_conn.execute(
            "SELECT start_lsn::text, pg_xact_commit_timestamp(%s::text::xid) "
            "FROM pg_get_wal_records_info(%s::pg_lsn, pg_current_wal_flush_lsn()) "
            "WHERE resource_manager = 'Transaction' AND record_type = 'COMMIT' "
            "AND xid = %s::text::xid", (xid, format_lsn(before), xid)).fetchone()
        if commit is None or commit[1] is None:
            raise RuntimeError(f"no commit record or timestamp for marker {marker_id} "
                               f"(xid {xid}): is track_commit_timestamp on?")
        marker = Marker(marker_id, xid, commit[1], parse_lsn(commit[0]),
                        tuple(float(v) for v in vector))
        self.written.append(marker)
        return marker

    def _lsn(self, expression: str) -> int:
        row = self.wal_conn.execute(f"SELECT {expression}::text").fetchone()
        assert row is not None
        return parse_lsn(str(row[0]))


def boundary_problems(conn: psycopg.Connection[Any], expected: list[Marker],
                      absent: list[Marker], *, k: int = 5) -> list[str]:
    """What differs between the recovered markers and `expected` (ids and bit-exact
    vectors), every `absent` marker that is present anyway, and vector-index answers that
    differ from exact search over `expected` (queried with the absent markers' vectors,
    where a leaked row would answer first)."""
    register_vector(conn)
    with conn.cursor(binary=True) as cur:  # vectors bit-exact
        rows = {int(r[0]): np.asarray(r[1].to_numpy(), dtype=np.float32)
                for r in cur.execute(f"SELECT id, embedding FROM {TABLE}")}
    problems = [f"marker {m.id} (xid {m.xid}, committed {m.commit_time.isoformat()}) "
                "committed before the target is missing" for m in expected if m.id not in rows]
    problems += [f"marker {m.id} (xid {m.xid}, committed {m.commit_time.isoformat()}) "
                 "committed after the target is present" for m in absent if m.id in rows]
    problems += [f"marker {m.id}: vector differs from the one committed" for m in expected
                 if m.id in rows and not np.array_equal(rows[m.id], _array(m.vector))]
    queries = [m.vector for m in absent] or [m.vector for m in expected[-3:]]
    with conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL hnsw.ef_search = 100")
        for query in queries:
            got = [int(r[0]) for r in conn.execute(
                f"SELECT id FROM {TABLE} ORDER BY embedding <-> %s LIMIT %s",
                (_array(query), k))]
            want = exact_neighbours(expected, query, k)
            if got != want:
                problems.append(f"index answer {got} differs from exact neighbours {want} "
                                "of the markers committed before the target")
    return problems


def exact_neighbours(markers: list[Marker], query: tuple[float, ...], k: int) -> list[int]:
    if not markers:
        return []
    vectors = np.array([m.vector for m in markers], dtype=np.float32)
    distances = np.linalg.norm(vectors - _array(query), axis=1)
    return [markers[i].id for i in np.argsort(distances, kind="stable")[:k]]


def _array(vector: tuple[float, ...]) -> np.ndarray:
    return np.array(vector, dtype=np.float32)
