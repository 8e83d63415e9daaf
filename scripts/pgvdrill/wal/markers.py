"""The marker workload: rows with vectors committed one per transaction, each remembered
with its xid, commit time and commit record LSN, so that a point-in-time recovery can be
checked exactly: every marker committed before the target present (bit-exact), every one
after it absent, and the vector index answering like exact search over the expected set.

A commit record is found with pg_walinspect where the server offers it, else with
pg_waldump (of the server's own installation) over the server's pg_wal."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from pgvdrill.capabilities import server_capabilities
from pgvdrill.cluster.base import Cluster, ToolRunner
from pgvdrill.cluster.directory import DirectoryCluster
from pgvdrill.errors import DrillError
from pgvdrill.proc.runner import ToolCall
from pgvdrill.wal.names import format_lsn, parse_lsn

TABLE = "pitr_markers"
DIM = 8
DDL = f"""
CREATE TABLE {TABLE} (id int PRIMARY KEY, committed_at timestamptz NOT NULL,
                      xid xid8 NOT NULL, embedding vector({DIM}) NOT NULL);
CREATE INDEX {TABLE}_embedding_idx ON {TABLE} USING hnsw (embedding vector_l2_ops);
"""
_COMMIT_LINE = re.compile(r"lsn: ([0-9A-F]+/[0-9A-F]+), prev [0-9A-F/]+, desc: COMMIT ")


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
    """Writes markers into `conn`'s database; `wal_conn` (any database of the same server)
    finds their commit records with pg_walinspect, or, where the server has none, pg_waldump
    reads them from `pg_wal` (the tools of the server's installation, its pg_wal
    directory). Needs track_commit_timestamp = on."""

    def __init__(self, conn: psycopg.Connection[Any], wal_conn: psycopg.Connection[Any],
                 seed: int = 11, *, pg_wal: tuple[ToolRunner, Path] | None = None) -> None:
        self.conn = conn
        self.wal_conn = wal_conn
        self.pg_wal = pg_wal
        self.walinspect = False
        self.rng = np.random.default_rng(seed)
        self.written: list[Marker] = []
        register_vector(conn)

    @classmethod
    def of(cls, cluster: Cluster, conn: psycopg.Connection[Any],
           wal_conn: psycopg.Connection[Any], seed: int = 11) -> MarkerWriter:
        """A writer for `cluster`'s connections, reading its pg_wal where it can."""
        pg_wal = ((cluster, cluster.datadir / "pg_wal")
                  if isinstance(cluster, DirectoryCluster) else None)
        return cls(conn, wal_conn, seed, pg_wal=pg_wal)

    def create(self) -> None:
        """The marker table; pg_walinspect where offered, else a `DrillError` saying why
        without pg_waldump's way in either."""
        walinspect = server_capabilities(self.wal_conn).extension("pg_walinspect")
        if not walinspect.available and self.pg_wal is None:
            raise DrillError(f"cannot locate the markers' commit records: {walinspect.reason},"
                             " and this server's pg_wal cannot be read with pg_waldump",
                             "use a server with pg_walinspect, or a backend whose data "
                             "directories are local (embedded or system)")
        self.conn.execute(DDL.encode())
        if walinspect.available:
            self.wal_conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        self.walinspect = walinspect.available

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
        lsn = self.commit_lsn(xid, before)
        committed = self.wal_conn.execute(
            "SELECT pg_xact_commit_timestamp(%s::text::xid)", (xid,)).fetchone()
        if lsn is None or committed is None or committed[0] is None:
            raise RuntimeError(f"no commit record or timestamp for marker {marker_id} "
                               f"(xid {xid}): is track_commit_timestamp on?")
        marker = Marker(marker_id, xid, committed[0], lsn, tuple(float(v) for v in vector))
        self.written.append(marker)
        return marker

    def commit_lsn(self, xid: int, start: int) -> int | None:
        """Where the commit record of transaction `xid` starts, searched from `start` to
        the flushed end of WAL: with pg_walinspect if `walinspect`, else pg_waldump over
        the server's pg_wal (the record is there: a commit is flushed)."""
        if self.walinspect:
            row = self.wal_conn.execute(
                "SELECT start_lsn::text FROM pg_get_wal_records_info(%s::pg_lsn, "
                "pg_current_wal_flush_lsn()) WHERE resource_manager = 'Transaction' "
                "AND record_type = 'COMMIT' AND xid = %s::text::xid",
                (format_lsn(start), xid)).fetchone()
            return None if row is None else parse_lsn(str(row[0]))
        assert self.pg_wal is not None
        tools, pg_wal = self.pg_wal
        end = self.wal_conn.execute("SELECT pg_current_wal_flush_lsn()::text, "
                                    "pg_walfile_name(pg_current_wal_flush_lsn())").fetchone()
        assert end is not None
        out = tools.run_tool(ToolCall("pg_waldump", [
            "--path", pg_wal, "--timeline", str(int(str(end[1])[:8], 16)),
            "--start", format_lsn(start), "--end", str(end[0]), "--rmgr", "Transaction",
            "--xid", str(xid % 2**32)])).stdout
        found = _COMMIT_LINE.search(out)
        return None if found is None else parse_lsn(found.group(1))

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
