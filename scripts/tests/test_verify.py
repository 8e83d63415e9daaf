"""verify/ against a real server: an identical copy passes, and every kind of damage a
broken backup or restore can do is reported with the object that differs."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import psycopg
import pytest

from pgvdrill import installation, osuser
from pgvdrill.cluster.base import Cluster
from pgvdrill.cluster.local import LocalBackend
from pgvdrill.identifiers import parse_table_name
from pgvdrill.verify import Snapshot, Verification, ann, same_ann_answers, snapshot, verify
from pgvdrill.verify.objects import read_objects
from pgvdrill.verify.schema import (
    SequenceWindow,
    compare_extensions,
    compare_schema,
    extension_versions,
    versions,
)
from pgvdrill.verify.session import reading

WORK = Path("/var/tmp/pgvdrill-vf-work")
CACHE = Path("/var/tmp/pgvdrill-vf-cache")
ROWS = 1500
CLUSTER_ROWS = 2000
_names = itertools.count()

SCHEMA = """
CREATE EXTENSION vector;
CREATE TABLE items (
    id bigserial PRIMARY KEY, label text NOT NULL, score float8, created timestamptz,
    emb vector(16), half halfvec(16), sparse sparsevec(50));
CREATE SCHEMA "App Data";
CREATE TABLE "App Data"."Clustered" (id int PRIMARY KEY, v vector(64));
CREATE TABLE events (at timestamptz, payload jsonb);
"""
INDEXES = """
CREATE INDEX items_emb_hnsw ON items USING hnsw (emb vector_cosine_ops);
CREATE INDEX items_emb_l2 ON items USING hnsw (emb vector_l2_ops) WITH (m = 8);
CREATE INDEX items_half_hnsw ON items USING hnsw (half halfvec_l2_ops);
CREATE INDEX items_sparse_hnsw ON items USING hnsw (sparse sparsevec_l2_ops);
CREATE INDEX items_label ON items (label);
CREATE INDEX "Clustered_ivf" ON "App Data"."Clustered" USING ivfflat (v vector_l2_ops)
    WITH (lists = 20);
"""


def vec(values: np.ndarray) -> str:
    """A vector literal that round-trips exactly (shortest repr of each float32/16)."""
    return "[" + ",".join(str(v) for v in values) + "]"


def load(conn: psycopg.Connection) -> None:
    rng = np.random.default_rng(42)
    conn.execute(SCHEMA)
    emb = rng.normal(size=(ROWS, 16)).astype(np.float32)
    emb[5, 0] = 0.0  # a zero component to flip to -0.0
    half = rng.normal(size=(ROWS, 16)).astype(np.float16)
    with conn.cursor().copy(
            "COPY items (label, score, created, emb, half, sparse) FROM STDIN") as copy:
        for i in range(ROWS):
            null = i % 97 == 3
            sparse = {int(j): float(rng.normal()) for j in rng.choice(50, 4, replace=False)}
            copy.write_row((f"item {i}", float(rng.normal()), f"2025-01-01 00:00:{i % 60}+00",
                            None if null else vec(emb[i]), None if null else vec(half[i]),
                            "{" + ",".join(f"{j + 1}:{v}" for j, v in sparse.items()) + "}/50"))
    # clustered data: an IVFFlat index built after loading finds the clusters (recall
    # near 1), one built on the empty table has random centres that cut every cluster
    # apart. 32 clusters for 20 lists and a spread of 0.2 keep the two far apart whatever
    # centres pgvector draws (simulated: at most 0.61 over 200 draws, kmeans 0.99); with
    # 20 clusters and 0.1 a lucky draw reached the required recall
    centres = rng.random((32, 64))
    clustered = (centres[rng.integers(0, 32, CLUSTER_ROWS)]
                 + 0.2 * rng.normal(size=(CLUSTER_ROWS, 64))).astype(np.float32)
    with conn.cursor().copy('COPY "App Data"."Clustered" FROM STDIN') as copy:
        for i, v in enumerate(clustered):
            copy.write_row((i, vec(v)))
    conn.execute("INSERT INTO events SELECT '2025-01-01'::timestamptz + i * interval '1 h',"
                 " jsonb_build_object('i', i) FROM generate_series(1, 50) i")
    conn.execute(INDEXES)
    conn.execute("VACUUM ANALYZE")


@pytest.fixture(scope="module")
def server() -> Iterator[Cluster]:
    backend = LocalBackend(installation.embedded(osuser.server_user()), WORK, CACHE)
    with backend.cluster("vf") as cluster:
        cluster.query("CREATE DATABASE src")
        with cluster.connect("src") as conn:
            load(conn)
        yield cluster


@pytest.fixture(scope="module")
def source(server: Cluster) -> Snapshot:
    with server.connect("src") as conn:
        return snapshot(conn)


@pytest.fixture
def target(server: Cluster) -> Iterator[psycopg.Connection]:
    """A fresh copy of the source database (CREATE DATABASE ... TEMPLATE src)."""
    name = f"tgt{next(_names)}"
    server.query(f"CREATE DATABASE {name} TEMPLATE src")
    with server.connect(name) as conn:
        yield conn
    server.query(f"DROP DATABASE {name}")


@pytest.fixture
def source_conn(server: Cluster, target: psycopg.Connection) -> Iterator[psycopg.Connection]:
    with server.connect("src") as conn:  # after the clone: a template must be idle
        yield conn


def failing(result: Verification) -> dict[str, list[str]]:
    return {c.name: c.problems for c in result.checks if c.problems}


def test_identical_copy_passes(target: psycopg.Connection, source_conn: psycopg.Connection
                               ) -> None:
    result = verify(source_conn, target)
    assert failing(result) == {}
    result.raise_for_problems()
    names = [c.name for c in result.checks]
    assert names == ["row_counts", "fingerprints", "schema", "extensions", "index_validity",
                     "ann_recall", "planner", "amcheck"]
    recall = result.check("ann_recall").details
    assert set(recall) == {"public.items_emb_hnsw", "public.items_emb_l2",
                           "public.items_half_hnsw", "public.items_sparse_hnsw",
                           '"App Data"."Clustered_ivf"'}
    ivf = recall['"App Data"."Clustered_ivf"']
    assert isinstance(ivf, dict)
    assert ivf["queries"] == 20 and ivf["target"] == ivf["source"]
    assert result.as_dict()["ok"] is True


def test_snapshot_is_reusable_and_leaves_no_amcheck(source: Snapshot,
                                                    target: psycopg.Connection) -> None:
    result = verify(source, target)
    assert failing(result) == {}
    amcheck = result.check("amcheck").details
    assert amcheck == {"public.items_pkey": "ok", "public.items_label": "ok",
                       '"App Data"."Clustered_pkey"': "ok"}
    assert target.execute("SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'"
                          ).fetchone() == (0,)


def test_deleted_row(source: Snapshot, target: psycopg.Connection,
                     source_conn: psycopg.Connection) -> None:
    target.execute("DELETE FROM items WHERE id = 17")
    problems = failing(verify(source, target, source_conn=source_conn))
    assert problems["row_counts"] == ["table public.items has 1499 rows in the target, "
                                      "1500 in the source (1 fewer)"]
    assert problems["fingerprints"] == ["table public.items: content differs; first "
                                        "differing rows: id=17 missing in the target"]


def _set_component(conn: psycopg.Connection, column: str, row: int, change: object) -> None:
    text = conn.execute(f"SELECT {column}::text FROM items WHERE id = %s", (row,)).fetchone()
    assert text is not None
    values = np.array(text[0][1:-1].split(","),
                      dtype=np.float16 if column == "half" else np.float32)
    values[3 if change == "ulp" else 0] = (
        np.nextafter(values[3], values.dtype.type(np.inf)) if change == "ulp"
        else values.dtype.type(change))
    conn.execute(f"UPDATE items SET {column} = %s WHERE id = %s", (vec(values), row))


@pytest.mark.parametrize(("column", "row", "change"), [
    ("emb", 40, "ulp"), ("half", 40, "ulp"), ("emb", 6, -0.0)])
def test_one_component_changed(source: Snapshot, target: psycopg.Connection,
                               source_conn: psycopg.Connection, column: str, row: int,
                               change: object) -> None:
    _set_component(target, column, row, change)
    problems = failing(verify(source, target, source_conn=source_conn))
    assert problems == {"fingerprints": [f"table public.items: content differs; first "
                                         f"differing rows: id={row} changed"]}


def test_without_source_conn_rows_are_not_named(source: Snapshot,
                                                 target: psycopg.Connection) -> None:
    target.execute("UPDATE events SET payload = '{}' WHERE at = '2025-01-01 05:00+00'")
    target.execute("UPDATE items SET score = score + 1 WHERE id = 3")
    assert failing(verify(source, target))["fingerprints"] == [
        "table public.events: content differs (no primary key to name the rows)",
        "table public.items: content differs in 1 of 256 key buckets (pass source_conn to "
        "name the rows)"]


def test_dropped_index_and_table(source: Snapshot, target: psycopg.Connection) -> None:
    target.execute("DROP INDEX items_emb_l2; DROP TABLE events")
    problems = failing(verify(source, target))
    assert problems == {"schema": ["table public.events is missing in the target",
                                   "index public.items_emb_l2 on public.items is missing in "
                                   "the target"]}


def test_invalid_hnsw_index(source: Snapshot, target: psycopg.Connection) -> None:
    target.execute("UPDATE pg_index SET indisvalid = false"
                   " WHERE indexrelid = 'items_emb_hnsw'::regclass")
    problems = failing(verify(source, target))
    assert problems["index_validity"] == [
        "index public.items_emb_hnsw on public.items is not valid and ready: indisvalid=false"]
    assert problems["ann_recall"] == [
        "index public.items_emb_hnsw on public.items: recall@10 not measured in the target, "
        "the planner does not use the index"]
    assert problems["planner"][0].startswith(
        "index public.items_emb_hnsw on public.items is not used for ORDER BY emb <=> $q "
        "LIMIT 10 even with enable_seqscan=off (plan: Limit > Sort > Seq Scan on items")
    assert set(problems) == {"index_validity", "ann_recall", "planner"}


def test_changed_index_definition(source: Snapshot, target: psycopg.Connection) -> None:
    target.execute("DROP INDEX items_emb_l2;"
                   " CREATE INDEX items_emb_l2 ON items USING hnsw (emb vector_l2_ops)"
                   " WITH (m = 12)")
    assert failing(verify(source, target)) == {"schema": [
        'index public.items_emb_l2 on public.items differs: source "CREATE INDEX items_emb_l2'
        " ON items USING hnsw (emb public.vector_l2_ops) WITH (m='8')\", target \"CREATE "
        "INDEX items_emb_l2 ON items USING hnsw (emb public.vector_l2_ops) WITH (m='12')\""]}


def test_ivfflat_built_before_its_data(source: Snapshot, target: psycopg.Connection) -> None:
    target.execute("""
        CREATE TABLE keep AS SELECT * FROM "App Data"."Clustered";
        TRUNCATE "App Data"."Clustered";
        DROP INDEX "App Data"."Clustered_ivf";
        CREATE INDEX "Clustered_ivf" ON "App Data"."Clustered" USING ivfflat (v vector_l2_ops)
            WITH (lists = 20);
        INSERT INTO "App Data"."Clustered" SELECT * FROM keep ORDER BY id;
        DROP TABLE keep""")
    result = verify(source, target)
    problems = failing(result)
    assert list(problems) == ["ann_recall"]
    figures = result.check("ann_recall").details['"App Data"."Clustered_ivf"']
    assert isinstance(figures, dict)
    # pgvector picks an empty table's centres at random, and k-means samples at random:
    # assert the verdict and the message, not exact figures
    assert figures["target"] < figures["required"] < figures["source"], figures
    [message] = problems["ann_recall"]
    assert re.fullmatch(
        r'index "App Data"\."Clustered_ivf" on "App Data"\."Clustered": recall@10 is '
        r"0\.\d\d in the target and (0\.\d\d|1\.00) in the source \(required >= 0\.\d\d = "
        r"min\(0\.90, source\) - 0\.\d\d; settings hnsw\.ef_search=40, "
        r"hnsw\.iterative_scan=off, ivfflat\.probes=1, ivfflat\.iterative_scan=off\); an "
        r"IVFFlat index built before its data \(a schema-only restore, then the data\) has "
        r'random centres: REINDEX INDEX "App Data"\."Clustered_ivf" after loading', message)


def test_sequence_and_constraint(source: Snapshot, target: psycopg.Connection) -> None:
    target.execute("SELECT nextval('items_id_seq'); ALTER TABLE items ADD CHECK (score < 100)")
    problems = failing(verify(source, target))["schema"]
    assert problems == [
        "constraint items_score_check on public.items exists only in the target",
        "sequence public.items_id_seq last value differs: source 1500, target 1501"]


def test_sequence_window(server: Cluster, source: Snapshot, target: psycopg.Connection
                         ) -> None:
    """A backup that took its sequences while the source kept calling them (pg_dump,
    WAL) passes between the reads before and after, and fails outside them."""
    seq = source.schema.sequences["public.items_id_seq"]
    after = replace(seq, last_value=seq.last_value + 5)
    window = replace(source, sequence_window=SequenceWindow({seq.key: seq}, {seq.key: after}))
    for calls, problems in [(0, []), (3, []), (5, []), (6, [
            "sequence public.items_id_seq last value is 1506 in the target, outside what the "
            "source held while the backup took it: from 1500 (read before) to 1505 (read "
            "after)"])]:
        if calls:
            target.execute("SELECT setval('items_id_seq', %s)", (seq.last_value + calls,))
        assert failing(verify(window, target)).get("schema", []) == problems, calls
    target.execute("SELECT setval('items_id_seq', %s)", (seq.last_value - 1,))
    assert failing(verify(window, target))["schema"] == [
        "sequence public.items_id_seq last value is 1499 in the target, outside what the "
        "source held while the backup took it: from 1500 (read before) to 1505 (read after)"]


def test_owners_and_grants(server: Cluster, source: Snapshot, target: psycopg.Connection
                           ) -> None:
    server.query("DO $$ BEGIN IF to_regrole('vf_owner') IS NULL THEN CREATE ROLE vf_owner;"
                 " CREATE ROLE vf_reader; END IF; END $$")
    target.execute("""
        ALTER TABLE items OWNER TO vf_owner;
        GRANT SELECT ON "App Data"."Clustered" TO vf_reader WITH GRANT OPTION;
        GRANT USAGE ON SCHEMA "App Data" TO PUBLIC;
        REVOKE TRUNCATE ON events FROM postgres""")
    assert failing(verify(source, target)) == {"schema": [
        'schema "App Data" privileges differ: granted only in the target: USAGE to PUBLIC',
        "sequence public.items_id_seq is owned by vf_owner in the target, postgres in the "
        "source",
        'table "App Data"."Clustered" privileges differ: granted only in the target: '
        "SELECT to vf_reader with grant option",
        "table public.events privileges differ: granted only in the source: TRUNCATE to "
        "postgres",
        "table public.items is owned by vf_owner in the target, postgres in the source"]}


def test_missing_extension(server: Cluster) -> None:
    server.query("CREATE DATABASE plain")
    try:
        with server.connect("src") as src, server.connect("plain") as tgt:
            problems = failing(verify(src, tgt))
    finally:
        server.query("DROP DATABASE plain")
    assert "extension vector 0.8.6 is missing in the target" in problems["extensions"]
    assert "table public.items is missing in the target" in problems["schema"]


def test_extension_versions_are_stated_not_failed(source: Snapshot) -> None:
    """A target's pgvector is the one its server offers: another version is said, and the
    restore (not this comparison) judges whether the dump needs what it lacks."""
    older = {**source.schema.extensions, "vector": "0.7.0"}
    target = replace(source.schema, extensions=older)
    assert compare_extensions(source.schema, target) == []
    assert extension_versions(source.schema, target) == [
        "extension vector is 0.7.0 in the target (older), 0.8.6 in the source"]
    assert extension_versions(target, source.schema) == [
        "extension vector is 0.8.6 in the target (newer), 0.7.0 in the source"]


def test_privileges_of_another_major_are_stated_not_compared(source: Snapshot) -> None:
    """A PostgreSQL 16 source has no MAINTAIN privilege: a target of 17 or later, whose
    owners hold it by default, does not differ for that; the report says why."""
    facts = source.schema
    tables = facts.privilege_types["table"]
    assert "MAINTAIN" in tables, facts.server  # the embedded server is 17 or later
    old = replace(facts, server="16.2", privilege_types={
        **facts.privilege_types, "table": tables - {"MAINTAIN"}},
        privileges={k: replace(p, grants=tuple(g for g in p.grants
                                               if g.privilege != "MAINTAIN"))
                    for k, p in facts.privileges.items()})
    assert compare_schema(old, facts) == []
    assert versions(old, facts)[:2] == [
        f"the source ran PostgreSQL 16.2, the target {facts.server}",
        f"privilege MAINTAIN on tables exists only in the target's PostgreSQL "
        f"{facts.server}, not in 16.2: not compared"]
    dropped = replace(facts, privileges={k: replace(p, grants=tuple(
        g for g in p.grants if g.privilege != "SELECT")) for k, p in facts.privileges.items()})
    assert any("SELECT" in p for p in compare_schema(old, dropped))  # the rest still counts


def test_not_null_of_a_major_before_18_is_compared_as_nullability(source: Snapshot) -> None:
    """PostgreSQL 18 records NOT NULL as constraints (items_label_not_null), 16 does not:
    a 16 source restored into 18 does not differ for that, and says how it compared; a
    NOT NULL really dropped in the target is still caught, by the column's nullability."""
    facts = source.schema
    assert facts.server.startswith("18"), facts.server
    catalogued = {k: c for k, c in facts.constraints.items() if c.not_null}
    assert ("public.items", "items_label_not_null") in catalogued, sorted(catalogued)
    old = replace(facts, server="16.2", constraints={
        k: c for k, c in facts.constraints.items() if not c.not_null})
    assert compare_schema(old, facts) == []
    assert compare_schema(facts, old) == []
    assert any("NOT NULL constraints compared as column nullability" in s
               for s in versions(old, facts))
    items = facts.tables["public.items"]
    nullable = replace(items, columns=tuple(replace(c, not_null=False) if c.name == "label"
                                            else c for c in items.columns))
    dropped = replace(facts, tables={**facts.tables, "public.items": nullable}, constraints={
        k: c for k, c in facts.constraints.items() if k[1] != "items_label_not_null"})
    assert compare_schema(old, dropped) == [
        "column label of table public.items differs: source text NOT NULL, target text"]
    assert compare_schema(facts, dropped) == [  # same major: the constraint is compared too
        "column label of table public.items differs: source text NOT NULL, target text",
        "constraint items_label_not_null on public.items is missing in the target"]


def test_a_domain_not_null_reads_alike_on_every_major(server: Cluster) -> None:
    """17+ catalogue a domain's NOT NULL as a constraint, 16 only as typnotnull: the
    definition is read from typnotnull, so it is the same text on both, and a dropped
    NOT NULL still changes it."""
    server.query("CREATE DATABASE dom")
    try:
        with server.connect("dom") as conn:
            assert conn.info.server_version >= 170000
            conn.execute("CREATE DOMAIN positive AS int NOT NULL CHECK (VALUE > 0)")
            before = read_objects(conn)["type public.positive"].text
            conn.execute("ALTER DOMAIN positive DROP NOT NULL")
            after = read_objects(conn)["type public.positive"].text
    finally:
        server.query("DROP DATABASE dom")
    assert before == "domain over integer NOT NULL CHECK ((VALUE > 0))"
    assert after == "domain over integer CHECK ((VALUE > 0))"


def test_a_measurement_leaves_the_planner_settings_as_it_found_them(server: Cluster) -> None:
    """Every index of a snapshot is measured in one transaction: each measurement's
    enable_* settings are undone, so the next index's default plan is the server's own
    (not planned with index scans off, which said "not used by default")."""
    names = ("enable_seqscan", "enable_indexscan", "enable_bitmapscan", "enable_indexonlyscan")
    with server.connect("src") as conn, reading(conn):
        before = [conn.execute("SHOW " + n).fetchone() for n in names]
        indexes = ann.vector_indexes(conn)
        first, second = indexes["public.items_emb_hnsw"], indexes["public.items_emb_l2"]
        ann.measure(conn, first, ann.sample_queries(conn, first, 5))
        assert [conn.execute("SHOW " + n).fetchone() for n in names] == before
        queries = ann.sample_queries(conn, second, 5)
        after_first = ann.measure(conn, second, queries).default_plan_uses_index
    with server.connect("src") as conn, reading(conn):
        alone = ann.measure(conn, second, queries).default_plan_uses_index
    assert after_first == alone


def test_partial_restore_scope(server: Cluster, source: Snapshot,
                               target: psycopg.Connection) -> None:
    target.execute("DROP TABLE events; DELETE FROM \"App Data\".\"Clustered\" WHERE id = 1")
    assert failing(verify(source, target, tables=["items"])) == {}
    problems = failing(verify(source, target, tables=['"App Data"."Clustered"', "events"]))
    assert problems["schema"] == ["table public.events is missing in the target"]
    assert problems["row_counts"] == ['table "App Data"."Clustered" has 1999 rows in the '
                                      'target, 2000 in the source (1 fewer)']
    assert failing(verify(source, target, tables=["ITEMS"])) == {}  # folds to items
    assert failing(verify(source, target, tables=['"Items"']))["schema"] == [
        "table public.Items was asked for but does not exist in the source"]


def test_same_ann_answers(server: Cluster, target: psycopg.Connection,
                          source_conn: psycopg.Connection) -> None:
    check = same_ann_answers(source_conn, target)
    assert check.ok, check.problems
    assert len(check.details) == 5
    target.execute("DROP INDEX items_emb_hnsw;"
                   " CREATE INDEX items_emb_hnsw ON items USING hnsw (emb vector_cosine_ops)"
                   " WITH (m = 4, ef_construction = 8)")
    target.execute("SET hnsw.ef_search = 10")  # also changes the answers of the others
    check = same_ann_answers(source_conn, target, tables=["items"])
    assert "public.items_emb_hnsw" in check.details
    assert check.problems[0].startswith(
        "index public.items_emb_hnsw on public.items: ")
    assert "k-NN answers differ; first, query" in check.problems[0]


@pytest.mark.parametrize(("text", "parsed"), [
    ("items", ("public", "items")), ("App.Items", ("app", "items")),
    ('"My Schema"."T.x"', ("My Schema", "T.x")), ('"a""b"', ("public", 'a"b'))])
def test_parse_table_name(text: str, parsed: tuple[str, str]) -> None:
    assert parse_table_name(text) == parsed


@pytest.mark.parametrize("text", ["", "a.b.c", "a..b", '"open'])
def test_parse_table_name_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a table name"):
        parse_table_name(text)


OBJECTS = """
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE DOMAIN score AS float8 CHECK (VALUE >= 0);
CREATE TYPE pair AS (a int, b text);
CREATE TABLE notes (id int PRIMARY KEY, m mood, s score);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER notes_touch BEFORE UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION touch();
CREATE VIEW sad_notes AS SELECT id FROM notes WHERE m = 'sad';
"""


def test_functions_views_types_and_triggers(server: Cluster) -> None:
    for name in ("objs_src", "objs_tgt"):
        server.query(f"CREATE DATABASE {name}")
        with server.connect(name) as conn:
            conn.execute(OBJECTS)
    try:
        with server.connect("objs_src") as src, server.connect("objs_tgt") as tgt:
            assert failing(verify(src, tgt)) == {}
            tgt.execute("""
                ALTER TYPE mood ADD VALUE 'glad';
                ALTER DOMAIN score DROP CONSTRAINT score_check;
                CREATE OR REPLACE VIEW sad_notes AS SELECT id FROM notes WHERE m = 'ok';
                DROP TRIGGER notes_touch ON notes;
                CREATE PROCEDURE tidy() LANGUAGE sql AS 'SELECT 1'""")
            problems = failing(verify(src, tgt))["schema"]
    finally:
        for name in ("objs_src", "objs_tgt"):
            server.query(f"DROP DATABASE {name}")
    assert [p.split(":")[0] for p in problems] == [
        "trigger notes_touch on public.notes is missing in the target",
        "function public.tidy() exists only in the target",
        "type public.mood differs",
        "type public.score differs",
        "view public.sad_notes differs"]
    assert "source \"enum ('sad', 'ok')\", target \"enum ('sad', 'ok', 'glad')\"" in \
        problems[2]
