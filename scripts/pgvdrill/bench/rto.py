"""The RTO-optimised logical restore: pg_restore with one job per core, its index builds
given maintenance_work_mem enough for the largest HNSW graph (within a share of the
machine's memory) and parallel maintenance workers. pg_restore already loads all data
before it builds indexes."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg

from pgvdrill.cluster import Cluster
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.logical.restore import RESTORE_SETTINGS, RestoreSetting

MIB = 1024 * 1024
DEFAULT_BYTES = 64 * MIB  # PostgreSQL's default maintenance_work_mem
MARGIN = 2  # the in-memory graph of an HNSW index is up to ~1.5x its size on disk
MEMORY_SHARE = 4  # at most 1/4 of MemTotal, split over the concurrent builds (pg_restore -j)

LARGEST_HNSW_SQL = """
SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c JOIN pg_am a ON a.oid = c.relam
WHERE c.relkind = 'i' AND a.amname = 'hnsw' ORDER BY 2 DESC, 1 LIMIT 1
"""


@dataclass(frozen=True)
class MemorySizing:
    bytes: int
    reason: str

    @property
    def setting(self) -> str:
        """The value as a PostgreSQL setting, in whole megabytes."""
        return f"{self.bytes // MIB}MB"


def size_maintenance_work_mem(index: tuple[str, int] | None, mem_total: int, jobs: int
                              ) -> MemorySizing:
    """MARGIN times the largest HNSW index (`index`: name and bytes), at least the default,
    at most 1/MEMORY_SHARE of `mem_total` over `jobs` concurrent builds; whole MiB."""
    cap = max(DEFAULT_BYTES, mem_total // MEMORY_SHARE // max(jobs, 1)) // MIB * MIB
    wanted = -(-(index[1] * MARGIN if index else 0) // MIB) * MIB
    chosen = min(max(wanted, DEFAULT_BYTES), cap)
    basis = (f"{MARGIN} x the largest HNSW index ({index[0]}, {index[1] / MIB:.1f} MiB)"
             if index else "no HNSW index")
    return MemorySizing(chosen, f"{basis}, at least the {DEFAULT_BYTES // MIB}MB default, "
                                f"at most 1/{MEMORY_SHARE} of MemTotal "
                                f"({mem_total / 1024**3:.1f} GiB) over {jobs} job(s)")


def largest_hnsw_index(conn: psycopg.Connection[Any]) -> tuple[str, int] | None:
    """Name and on-disk bytes of the database's largest HNSW index, if it has one."""
    row = conn.execute(LARGEST_HNSW_SQL).fetchone()
    return (str(row[0]), int(row[1])) if row else None


def mem_total(meminfo: Path = Path("/proc/meminfo")) -> int:
    """The machine's memory in bytes (MemTotal)."""
    for line in meminfo.read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "MemTotal":
            return int(value.split()[0]) * 1024
    raise ValueError(f"no MemTotal in {meminfo}")


def rto_setting(source: Cluster, cpus: int | None = None) -> tuple[RestoreSetting, str]:
    """The RTO-optimised restore setting for the database on `source`, and how it was
    sized. Jobs and parallel maintenance workers: one per core, at least 2."""
    jobs = max(2, cpus or os.cpu_count() or 1)
    with source.connect(SOURCE_DB) as conn:
        sizing = size_maintenance_work_mem(largest_hnsw_index(conn), mem_total(), jobs)
    session = (("maintenance_work_mem", sizing.setting),
               ("max_parallel_maintenance_workers", str(jobs)))
    setting = replace(RESTORE_SETTINGS["parallel-j2"], name="rto-optimised", jobs=jobs,
                      session=session, description=f"-j {jobs}, " + ", ".join(
                          f"{name} {value}" for name, value in session))
    return setting, f"{setting.description}; maintenance_work_mem is {sizing.reason}"
