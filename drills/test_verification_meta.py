"""The verification must fail when a restore is wrong, naming what differs.

Each case restores a good dump, damages the restored database in one small way, and
checks that verification reports it with the object's name.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from pgvdrill.capabilities import server_capabilities
from pgvdrill.cluster import Cluster
from pgvdrill.cluster.local import LocalCluster
from pgvdrill.dataset import VECTOR_INDEXES, Dataset
from pgvdrill.drill.logical import restore_dump_and_verify
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.logical.dump import DUMP_SETTINGS, DumpResult, DumpSetting
from pgvdrill.logical.restore import RESTORE_SETTINGS
from pgvdrill.proc import runner
from pgvdrill.verify import Snapshot, verify
from pgvdrill.verify.ground_truth import ground_truth_check

Conn = psycopg.Connection[tuple[Any, ...]]
PAGE = 8192  # BLCKSZ
HNSW_COSINE = next(name for name, (table, _, opclass) in VECTOR_INDEXES.items()
                   if table == "documents" and opclass == "vector_cosine_ops")


def first_id(conn: Conn, table: str) -> int:
    row = conn.execute(f"SELECT min(id) FROM {table} WHERE embedding IS NOT NULL").fetchone()
    assert row is not None
    return int(row[0])


def delete_one_row(conn: Conn) -> str:
    conn.execute("DELETE FROM documents WHERE id = %s", [first_id(conn, "documents")])
    return "documents"


def change_one_ulp(conn: Conn) -> str:
    register_vector(conn)
    row_id = first_id(conn, "documents")
    row = conn.execute("SELECT embedding FROM documents WHERE id = %s", [row_id]).fetchone()
    assert row is not None
    vector = row[0].to_numpy().copy()
    vector[3] = np.nextafter(vector[3], np.float32(np.inf))
    conn.execute("UPDATE documents SET embedding = %s WHERE id = %s", [vector, row_id])
    return "documents"


def drop_index(conn: Conn) -> str:
    conn.execute(f"DROP INDEX {HNSW_COSINE}")
    return HNSW_COSINE


def invalidate_hnsw(conn: Conn) -> str:
    conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass",
                 [HNSW_COSINE])
    return HNSW_COSINE


def drop_table(conn: Conn) -> str:
    conn.execute("DROP TABLE account_behaviors CASCADE")
    return "account_behaviors"


@pytest.fixture
def restored(dumps: Callable[[DumpSetting], DumpResult], target: Cluster,
             source_snapshot: Snapshot) -> Cluster:
    """A verified restore of the source, ready to be damaged."""
    drill = restore_dump_and_verify(dumps(DUMP_SETTINGS["custom-z1"]), target, SOURCE_DB,
                               RESTORE_SETTINGS["fresh"], source_snapshot)
    drill.verification.raise_for_problems()
    return target


@pytest.mark.parametrize("damage", [delete_one_row, change_one_ulp, drop_index,
                                    invalidate_hnsw, drop_table], ids=lambda f: f.__name__)
def test_verification_names_the_damage(
    restored: Cluster, source_snapshot: Snapshot, damage: Callable[[Conn], str]
) -> None:
    with restored.connect(SOURCE_DB) as conn:
        damaged = damage(conn)
        outcome = verify(source_snapshot, conn)

    assert not outcome.ok
    assert any(damaged in problem for problem in outcome.problems()), outcome.problems()


def test_ground_truth_check_catches_consistent_damage(
    restored: Cluster, dataset: Dataset
) -> None:
    """Vectors changed on both sides alike would fool a source-vs-target comparison; the
    dataset's own ground truth does not move with them."""
    with restored.connect(SOURCE_DB) as conn:
        assert ground_truth_check(conn, dataset.queries, dataset.ground_truth).ok
        # every vector moves to the next row: same vectors, wrong documents
        conn.execute("UPDATE documents d SET embedding = n.embedding FROM documents n"
                     " WHERE n.id = d.id + 1")
        check = ground_truth_check(conn, dataset.queries, dataset.ground_truth)

    assert not check.ok
    assert "public.documents: exact search" in check.problems[0]


def swap_first_leaf_keys(cluster: LocalCluster, index: str) -> None:
    """Swap the keys of data items 2 and 3 on block 1 of btree `index` (its first leaf,
    after the metapage), in the file: the server is stopped for it, and data checksums
    are turned off so that only the key order is wrong, not the page's checksum."""
    path = str(cluster.query(f"SELECT pg_relation_filepath('{index}')", SOURCE_DB)[0][0])
    cluster.stop()
    checksums = [cluster.installation.tool("pg_checksums"), "--disable", "-D", cluster.datadir]
    runner.run(checksums, user=cluster.server_user, timeout=300)
    data = bytearray(cluster.read_file(path))
    page = PAGE  # block 1 starts where the metapage (block 0) ends
    items = [struct.unpack_from("<I", data, page + 24 + 4 * i)[0] for i in (1, 2)]
    (off_a, len_a), (off_b, len_b) = [(i & 0x7FFF, i >> 17) for i in items]
    assert len_a == len_b == 16, (len_a, len_b)  # IndexTupleData + a bigint key
    key_a = bytes(data[page + off_a + 8:page + off_a + 16])
    data[page + off_a + 8:page + off_a + 16] = data[page + off_b + 8:page + off_b + 16]
    data[page + off_b + 8:page + off_b + 16] = key_a
    cluster.write_file(path, bytes(data))
    cluster.start()


def test_amcheck_names_a_btree_whose_key_order_is_broken(
    restored: Cluster, source_snapshot: Snapshot
) -> None:
    """Two keys of the documents primary key swapped in the index file: counts, content and
    vectors are untouched, so only amcheck (bt_index_check) can tell; it must, naming the
    index."""
    if not isinstance(restored, LocalCluster):
        pytest.skip("edits an index file of a local cluster")
    with restored.connect(SOURCE_DB) as conn:
        offered = server_capabilities(conn).extension("amcheck")
    if not offered.available:
        pytest.skip(f"amcheck cannot run here: {offered.reason}")
    index = "public.documents_pkey"
    swap_first_leaf_keys(restored, index)
    with restored.connect(SOURCE_DB) as conn:
        outcome = verify(source_snapshot, conn)

    amcheck = outcome.check("amcheck")
    assert not amcheck.ok
    assert any(index in problem for problem in amcheck.problems), amcheck.problems


def test_amcheck_that_cannot_run_is_unknown_never_a_pass(
    restored: Cluster, source_snapshot: Snapshot, record_property: Callable[[str, object], None],
) -> None:
    """On a server without amcheck (the 16.2 and 18.3 wheels) the amcheck check is unknown,
    with the reason, and listed as such: the btree indexes were not checked. Where amcheck
    exists it passes with a verdict per btree index."""
    with restored.connect(SOURCE_DB) as conn:
        caps = server_capabilities(conn)
        outcome = verify(source_snapshot, conn)
    record_property("server", caps.as_dict())
    amcheck = outcome.check("amcheck")
    assert amcheck.ok and not amcheck.problems, amcheck.problems
    if caps.extension("amcheck").available:
        assert amcheck.status == "pass" and amcheck.details, caps.as_dict()
        return
    assert amcheck.status == "unknown", (caps.as_dict(), amcheck)
    assert amcheck.unknown == ("btree indexes not checked: "
                               f"{caps.extension('amcheck').reason}")
    assert f"amcheck: {amcheck.unknown}" in outcome.unknown()
    assert "unknown" in outcome.summary() and outcome.ok
