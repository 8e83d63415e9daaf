"""pgvector pitfalls of logical restores, each caught with a message that says what to do.

A target server without pgvector; -t/-n dumps without CREATE EXTENSION vector; an IVFFlat
index built before its data (the runbook's schema-only-then-data-only restore); objects
owned by roles the target lacks (globals not restored). Each drill shows the pitfall
detected on real servers, then the fix passing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.options import DrillOptions
from pgvdrill.backends import make_backend
from pgvdrill.capabilities import server_capabilities
from pgvdrill.cli import main as cli
from pgvdrill.cluster import Backend, Cluster
from pgvdrill.drill.logical import drop_database, restore_dump_and_verify
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.errors import RestoreError, ToolError
from pgvdrill.logical import diagnose, vector_use
from pgvdrill.logical.dump import (
    DUMP_SETTINGS,
    PARTIAL_DUMP_SETTINGS,
    DumpResult,
    DumpSetting,
    dump,
)
from pgvdrill.logical.globals import dump_globals, restore_globals
from pgvdrill.logical.restore import (
    PARTIAL_RESTORE_SETTINGS,
    RESTORE_SETTINGS,
    create_database,
    restore,
)
from pgvdrill.logical.selection import Selection
from pgvdrill.proc.runner import ToolCall
from pgvdrill.verify import Snapshot, snapshot, verify

FRESH = RESTORE_SETTINGS["fresh"]
IVFFLAT = "public.account_behaviors_behavior_ivfflat_l2"


def user_tables(cluster: Cluster, dbname: str) -> list[tuple[object, ...]]:
    return cluster.query("SELECT relname FROM pg_class c JOIN pg_namespace n"
                         " ON n.oid = c.relnamespace WHERE relkind = 'r'"
                         " AND nspname NOT IN ('pg_catalog', 'information_schema')", dbname)


# 1. A target server without pgvector.
@pytest.mark.parametrize("setting", ["custom-z1", "plain"])
def test_logical_pitfall_target_without_pgvector_is_refused_before_any_data_moves(
    novector_backend: Backend, dumps: Callable[[DumpSetting], DumpResult], setting: str,
) -> None:
    archive = dumps(DUMP_SETTINGS[setting]).archive
    with novector_backend.cluster("novector") as target:
        create_database(target, SOURCE_DB)

        with pytest.raises(RestoreError) as caught:
            restore(target, archive, SOURCE_DB, FRESH)

        assert user_tables(target, SOURCE_DB) == []
    assert caught.value.message == (
        f"the target server (PostgreSQL {novector_backend.tools().version}) has no pgvector "
        f"extension, and {archive.path} needs it")
    assert caught.value.hint.startswith("install pgvector on the target server")


def test_logical_pitfall_cli_on_a_server_without_pgvector_says_what_to_do(
    novector_bindir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["drill", "--backend", "system", "--pg-bin", str(novector_bindir),
                     "--rows", "100", "--reports-dir", str(tmp_path),
                     "--cache-dir", str(tmp_path / "cache")])

    err = capsys.readouterr().err
    assert code == 2, err
    assert "has no pgvector extension" in err and "hint: install pgvector" in err, err


# 2. -t / -n dumps lack CREATE EXTENSION vector.
SCOPED = [PARTIAL_DUMP_SETTINGS["table"], PARTIAL_DUMP_SETTINGS["schema-public"]]
CREATE_EXTENSION_HINT = ("the dump holds tables with pgvector columns (vector) but no "
                         "CREATE EXTENSION vector (pg_dump leaves extensions out of -t/-n "
                         "dumps): run CREATE EXTENSION vector in the target database first, "
                         "or dump with --extension=vector")


def test_logical_pitfall_table_dump_restore_fails_on_type_vector(
    dumps: Callable[[DumpSetting], DumpResult], target: Cluster,
) -> None:
    archive = dumps(PARTIAL_DUMP_SETTINGS["table"]).archive
    create_database(target, SOURCE_DB)

    with pytest.raises(RestoreError) as caught:
        restore(target, archive, SOURCE_DB, FRESH)

    assert caught.value.message.startswith('restore failed: type "public.vector" does not exist')
    assert caught.value.hint == CREATE_EXTENSION_HINT


@pytest.mark.parametrize("setting", SCOPED, ids=lambda s: s.name)
def test_logical_pitfall_scoped_dump_lacks_create_extension_and_the_fix_verifies(
    dumps: Callable[[DumpSetting], DumpResult], target: Cluster, source_snapshot: Snapshot,
    setting: DumpSetting,
) -> None:
    dumped = dumps(setting)
    assert ("EXTENSION", "-", "vector") not in {e.identity for e in dumped.archive.toc}
    create_database(target, "runbook")

    with pytest.raises(ToolError) as caught:  # the runbook's pg_restore -d (no --exit-on-error)
        target.run_tool(ToolCall("pg_restore", ["--dbname", "runbook", "--no-password",
                                                str(dumped.archive.path)], stdout="/dev/null"))
    explained = diagnose.explain(caught.value)

    assert explained is not None, caught.value.stderr
    assert explained.message.startswith('restore failed: type "public.vector" does not exist')
    assert explained.hint.startswith(CREATE_EXTENSION_HINT)
    # the fix: CREATE EXTENSION vector first ('scoped' also skips re-creating public)
    fixed = restore_dump_and_verify(dumped, target, SOURCE_DB, PARTIAL_RESTORE_SETTINGS["scoped"],
                               source_snapshot)
    fixed.verification.raise_for_problems()


# 3. IVFFlat built before its data: valid, but its centres are random.
def test_logical_pitfall_ivfflat_built_before_its_data_loses_recall(
    dumps: Callable[[DumpSetting], DumpResult], target: Cluster, source_snapshot: Snapshot,
    options: DrillOptions,
) -> None:
    dumped = dumps(DUMP_SETTINGS["custom-z1"])
    normal = restore_dump_and_verify(dumped, target, "normal", FRESH, source_snapshot,
                                recall_threshold=options.recall_threshold)
    schema_first = restore_dump_and_verify(dumped, target, "schema_first",
                                      PARTIAL_RESTORE_SETTINGS["data-runbook"],
                                      source_snapshot, recall_threshold=options.recall_threshold)

    normal.verification.raise_for_problems()
    figures = schema_first.verification.check("ann_recall").details[IVFFLAT]
    assert isinstance(figures, dict)
    threshold = options.recall_threshold
    assert {c.name: c.problems for c in schema_first.verification.checks if c.problems} == {
        "ann_recall": [
            f"index {IVFFLAT} on public.account_behaviors: recall@10 is "
            f"{figures['target']:.2f} in the target and {figures['source']:.2f} in the source "
            f"(required >= {figures['required']:.2f} = min({threshold:.2f}, source) - "
            f"{min(threshold, figures['source']) - figures['required']:.2f}; settings "
            "hnsw.ef_search=40, hnsw.iterative_scan=off, ivfflat.probes=1, "
            "ivfflat.iterative_scan=off); an IVFFlat index built before its data (a "
            "schema-only restore, then the data) has random centres: REINDEX INDEX "
            f"{IVFFLAT} after loading"]}
    # the fix: rebuild the index on its data
    target.query(f"REINDEX INDEX {IVFFLAT}", "schema_first")
    with target.connect("schema_first") as conn:
        verify(source_snapshot, conn).raise_for_problems()


# 4. Objects owned by roles the target lacks: the globals were not restored.
APP_SQL = """
CREATE EXTENSION vector;
CREATE SCHEMA app AUTHORIZATION app_owner;
CREATE TABLE app.items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                        embedding vector(8));
INSERT INTO app.items (embedding)
    SELECT (SELECT array_agg(random()) FROM generate_series(1, 8) WHERE g > 0)::vector
    FROM generate_series(1, 300) g;
CREATE INDEX items_embedding_hnsw ON app.items USING hnsw (embedding vector_l2_ops);
ALTER TABLE app.items OWNER TO app_owner;
GRANT USAGE ON SCHEMA app TO app_reader;
GRANT SELECT ON app.items TO app_reader;
"""


def test_logical_pitfall_roles_missing_on_target_then_globals_restored(
    make_cluster: Callable[..., Cluster], tmp_path: Path,
) -> None:
    source = make_cluster("roles-source")
    source.query("CREATE ROLE app_owner NOLOGIN; CREATE ROLE app_reader NOLOGIN")
    source.query("CREATE DATABASE app")
    with source.connect("app") as conn:
        conn.execute(APP_SQL)
        conn.execute("ANALYZE")
        source_snapshot = snapshot(conn)
    archive = dump(source, "app", DUMP_SETTINGS["custom-z1"], tmp_path / "dumps").archive
    target = make_cluster("roles-target")
    create_database(target, "app")

    with pytest.raises(RestoreError) as caught:
        restore(target, archive, "app", FRESH)

    assert caught.value.message.startswith('restore failed: role "app_owner" does not exist')
    assert caught.value.hint.startswith(
        "the dump names role app_owner, which the target server lacks: rerun pgvdrill "
        "restore logical with --with-globals")
    # the fix: restore the globals, then the same dump; owners and grants arrive
    globals_file = dump_globals(source, tmp_path / "globals")
    assert restore_globals(target, globals_file) == ["app_owner", "app_reader"]
    assert restore_globals(target, globals_file) == []
    drop_database(target, "app")
    create_database(target, "app")
    restore(target, archive, "app", FRESH)
    with target.connect("app") as conn:
        verify(source_snapshot, conn).raise_for_problems()
    # the hint's other way, --no-owner --no-privileges, loses owners and grants: verify says so
    create_database(target, "no_owner")
    target.run_tool(ToolCall("pg_restore", ["--dbname", "no_owner", "--exit-on-error", "--no-owner",
                                            "--no-privileges", str(archive.path)]))
    with target.connect("no_owner") as conn:
        problems = verify(source_snapshot, conn).check("schema").problems
    assert problems == [
        "schema app is owned by postgres in the target, app_owner in the source",
        "schema app privileges differ: granted only in the source: USAGE to app_reader",
        "sequence app.items_id_seq is owned by postgres in the target, app_owner in the source",
        "table app.items is owned by postgres in the target, app_owner in the source",
        "table app.items privileges differ: granted only in the source: SELECT to app_reader"]


# 5. A target whose pgvector is another version: refused only for what the dump uses.
def test_logical_pitfall_target_pgvector_refused_only_for_what_the_dump_uses(
    options: DrillOptions, backend: Backend, source: Cluster,
    dumps: Callable[[DumpSetting], DumpResult], tmp_path: Path,
) -> None:
    """A dump of the drill schema restored toward each --drill-installations server: where
    its pgvector lacks a type the dump uses (halfvec before 0.7), refused before anything
    moves (RestoreError, exit 5) naming the type and the version; a dump of the vector
    tables alone passes there, and a pgvector other than the backup's is stated."""
    if not options.installations:
        pytest.skip("needs servers of other versions: --drill-installations DIR,DIR "
                    "(scripts/install-installations.sh installs 16.2/0.6.2 and 18.3/0.8.2)")
    with source.connect(SOURCE_DB) as conn:
        caps = server_capabilities(conn)
    if not caps.vector_type("halfvec").available:
        pytest.skip(f"the source's dump uses no halfvec: {caps.vector_type('halfvec').reason}")
    whole = dumps(DUMP_SETTINGS["custom-z1"]).archive
    vector_only = dump(source, SOURCE_DB, DumpSetting(
        "vector-only", "custom", 1, selection=Selection(tables=("account_behaviors",))),
        tmp_path).archive
    for bindir in options.installations:
        other = make_backend("system", pg_bin=bindir, workdir=options.workdir,
                             cache_dir=tmp_path / f"cache-{bindir.parent.name}")
        try:
            with other.cluster("other-pgvector") as target:
                create_database(target, SOURCE_DB)
                with target.connect(SOURCE_DB) as conn:
                    there = server_capabilities(conn)
                    needs = caps.pgvector
                    if ("type", "halfvec") not in vector_use.offered(conn, installed=False):
                        with pytest.raises(RestoreError) as caught:
                            diagnose.preflight(conn, whole, backend.tools(), needs=needs)
                        assert caught.value.exit_code == 5
                        assert "type halfvec" in caught.value.message, caught.value.message
                        assert f"pgvector {there.pgvector_offered}" in caught.value.message
                    stated = diagnose.preflight(conn, vector_only, backend.tools(),
                                                needs=needs)
                assert user_tables(target, SOURCE_DB) == []  # nothing moved
                if there.pgvector_offered != needs:
                    assert stated and f"pgvector {there.pgvector_offered} is" in stated[0], \
                        (there.as_dict(), stated)
        finally:
            other.close()
