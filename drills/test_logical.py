"""The full logical drill: pg_dump in each setting, pg_restore each way, verify.

Reads like the runbook: dump vector_db (section 2), restore it fresh, over an existing
database with --clean --if-exists, and in parallel (section 3), then prove the copy.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fixtures.options import DrillOptions
from pgvdrill.capabilities import server_capabilities
from pgvdrill.cluster import Backend, Cluster
from pgvdrill.dataset import TABLES, Dataset, columns, vector_indexes
from pgvdrill.drill.logical import LogicalDrill, restore_dump_and_verify
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.logical.dump import ALL_DUMP_SETTINGS, DUMP_SETTINGS, DumpResult, DumpSetting
from pgvdrill.logical.pairing import refusal
from pgvdrill.logical.restore import RESTORE_SETTINGS, RestoreSetting
from pgvdrill.verify import Snapshot

FULL_PAIRS = [pytest.param(d, r, id=f"{d.name}-{r.name}")
              for d in DUMP_SETTINGS.values() for r in RESTORE_SETTINGS.values()
              if refusal(d, r) is None]


@pytest.mark.parametrize(("dump_setting", "restore_setting"), FULL_PAIRS)
def test_logical_full_drill(
    dumps: Callable[[DumpSetting], DumpResult], target: Cluster, source_snapshot: Snapshot,
    options: DrillOptions, dataset: Dataset, dump_setting: DumpSetting,
    restore_setting: RestoreSetting, record_drill: Callable[[LogicalDrill], None],
    backend: Backend,
) -> None:
    dumped = dumps(dump_setting)

    drill = restore_dump_and_verify(dumped, target, SOURCE_DB, restore_setting, source_snapshot,
                               data=dataset, recall_threshold=options.recall_threshold)
    record_drill(drill)

    drill.verification.raise_for_problems()
    server = drill.entry().server  # what the report says it ran on: the lane's server
    assert server is not None
    assert (server["postgresql"], server["pgvector"]) == (
        backend.facts().get("version", server["postgresql"]), backend.pgvector_version())
    assert "server" in drill.as_dict()


def test_logical_drill_schema_follows_the_servers_pgvector_types(
    source: Cluster, backend: Backend, record_property: Callable[[str, object], None],
) -> None:
    """The drill schema has halfvec/sparsevec columns and the halfvec HNSW index only where
    the server's pgvector has those types (0.7 on): a 16.2/0.6.2 source loads without
    them, and restores like any other."""
    with source.connect(SOURCE_DB) as conn:
        caps = server_capabilities(conn)
        found = {(str(t), str(c)) for t, c in conn.execute(
            "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c"
            " ON c.oid = a.attrelid WHERE c.relname = ANY(%s) AND a.attnum > 0"
            " AND NOT a.attisdropped", [list(TABLES)])}
        indexes = {str(r[0]) for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
            " AND indexdef ~ 'USING (hnsw|ivfflat)' AND tablename = ANY(%s)", [list(TABLES)])}
    record_property("server", caps.as_dict())
    assert caps.pgvector == backend.pgvector_version()
    assert found == {(t, c.name) for t in TABLES for c in columns(t, caps.vector_types)}
    assert indexes == set(vector_indexes(caps.vector_types))
    assert (("documents", "embedding_half") in found) == ("halfvec" in caps.vector_types)


@pytest.mark.parametrize("dump_setting", ALL_DUMP_SETTINGS.values(), ids=lambda s: s.name)
def test_logical_archive_holds_exactly_what_it_covers(
    dumps: Callable[[DumpSetting], DumpResult], dump_setting: DumpSetting
) -> None:
    """The archive's table of contents, by object identity: every table, data, index and
    constraint the setting covers, and nothing beyond it."""
    dumped = dumps(dump_setting)

    assert dumped.toc_problems == ()
    assert dumped.archive.toc and dumped.archive.size_bytes > 0


def test_logical_runbook_tables_are_in_the_full_dump(
    dumps: Callable[[DumpSetting], DumpResult]
) -> None:
    """The runbook's content check (section 5), by identity rather than by substring."""
    identities = {e.identity for e in dumps(DUMP_SETTINGS["custom-z9"]).archive.toc}
    for table in ("documents", "account_behaviors", "product_embeddings"):
        assert ("TABLE", "public", table) in identities
        assert ("TABLE DATA", "public", table) in identities
    assert ("EXTENSION", "-", "vector") in identities


def test_logical_restore_times_the_data_load_and_each_index_build(
    dumps: Callable[[DumpSetting], DumpResult], target: Cluster, source_snapshot: Snapshot,
    options: DrillOptions,
) -> None:
    """The server's statement log splits the restore: schema, data load, index builds;
    every table's load and every index's build (each HNSW graph) is its own item."""
    drill = restore_dump_and_verify(dumps(DUMP_SETTINGS["custom-z9"]), target, SOURCE_DB,
                               RESTORE_SETTINGS["parallel-j2"], source_snapshot,
                               recall_threshold=options.recall_threshold)

    restore = drill.restore
    assert [p.phase for p in restore.phases] == ["schema", "data", "post-data"]
    assert sum(p.seconds for p in restore.phases) == pytest.approx(restore.seconds)
    loaded = {i.item for i in restore.items if i.phase == "data"}
    built = {i.item.split(" ")[0] for i in restore.items if i.phase == "index"}
    assert loaded == {f"{t.schema}.{t.name}" for t in source_snapshot.schema.tables.values()}
    hnsw = {i.key for i in source_snapshot.schema.indexes.values() if i.method == "hnsw"}
    assert hnsw and hnsw <= built
    assert all(i.seconds > 0 for i in restore.items if i.item.endswith("(hnsw)"))
