"""Manual timing of snapshot() + verify() on a large vector table (not a pytest module).

    python scripts/tests/manual_verify_timing.py [rows] [dims]    # default 100000 768

Builds a table of random vectors (server-side) with an HNSW cosine index, clones it with
CREATE DATABASE ... TEMPLATE, and times each step.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pgvdrill import installation, osuser
from pgvdrill.cluster.local import LocalBackend
from pgvdrill.verify import snapshot, verify


def main(rows: int, dims: int) -> None:
    backend = LocalBackend(installation.embedded(osuser.server_user()),
                           Path("/var/tmp/pgvdrill-vf-work"), Path("/var/tmp/pgvdrill-vf-cache"))
    with backend.cluster("vf-timing") as cluster:
        cluster.configure(shared_buffers="2GB", maintenance_work_mem="2GB")
        cluster.stop()
        cluster.start()
        cluster.query("CREATE DATABASE big")

        def step(label: str, sql: str, dbname: str = "big") -> None:
            start = time.monotonic()
            cluster.query(sql, dbname)
            print(f"{label}: {time.monotonic() - start:.1f} s", flush=True)

        step("create", f"CREATE EXTENSION vector; CREATE TABLE docs (id int PRIMARY KEY,"
                       f" title text, emb vector({dims}))")
        step("load", f"INSERT INTO docs SELECT i, 'doc ' || i, (SELECT array_agg(random() + d * 0"
                     f" - 0.5 + i * 0) FROM generate_series(1, {dims}) d)::vector"
                     f" FROM generate_series(1, {rows}) i")
        step("hnsw build", "CREATE INDEX docs_emb ON docs USING hnsw (emb vector_cosine_ops)")
        step("vacuum analyze", "VACUUM ANALYZE docs")
        step("clone", "CREATE DATABASE tgt TEMPLATE big", "postgres")
        with cluster.connect("big") as src, cluster.connect("tgt") as tgt:
            start = time.monotonic()
            snap = snapshot(src)
            print(f"snapshot: {time.monotonic() - start:.1f} s", flush=True)
            start = time.monotonic()
            result = verify(snap, tgt)
            print(f"verify: {time.monotonic() - start:.1f} s, ok={result.ok}")
            for check in result.checks:
                print(f"  {check.name}: {check.seconds:.2f} s {check.problems or ''}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
