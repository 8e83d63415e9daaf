"""What an upgraded database must show against the source's snapshot taken before it.

Checks: `extension` (vector at the version the target offers: the update was applied),
`vector_types` (halfvec and sparsevec where that pgvector has them), `content` (row counts
and every column bit-exact: vectors by their binary send form), `indexes` (every source
index there, same definition, valid and ready), `ann` (each vector index answers the
snapshot's queries with recall@10 against exact search; after pg_upgrade with the very
same top-10), `planner` (the server's own plan for ORDER BY embedding <-> $q LIMIT 10 uses
the HNSW index; unknown when its estimate prefers a scan of a small table) and `settings`
(nothing archives, streams, restores from elsewhere or preloads a library; no subscription
in any database is enabled; foreign servers are stated).
"""

from __future__ import annotations

from typing import Any

import psycopg

from pgvdrill.capabilities import server_capabilities, vector_types, version_key
from pgvdrill.cluster import Cluster
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.drill.upgrade import UpgradePlan
from pgvdrill.drill.upgrade_source import HNSW_L2
from pgvdrill.verify import Check, Snapshot, Verification, ann, snapshot
from pgvdrill.verify.compare import noise_margin, recall_floor
from pgvdrill.verify.fingerprint import differing_buckets
from pgvdrill.verify.indexes import validity_problems
from pgvdrill.verify.outcome import run_check
from pgvdrill.verify.schema import SchemaFacts
from pgvdrill.verify.session import reading
from pgvdrill.verify.snapshot import read_facts

Conn = psycopg.Connection[Any]
HALFVEC_FROM = (0, 7, 0)  # halfvec and sparsevec arrived in pgvector 0.7.0
# settings that would make the upgraded server reach another one: archive into an archive,
# follow a primary, restore WAL, or run code at start (pgvdrill preloads nothing)
QUIET = {"archive_mode": ("off",), "primary_conninfo": ("",), "restore_command": ("",),
         "primary_slot_name": ("",), "shared_preload_libraries": ("",)}
# stated only: what archive_mode = on would run; whether subscriptions could start
STATED = ("archive_command", "archive_library", "max_logical_replication_workers")


def baseline(conn: Conn) -> tuple[Snapshot, ann.AnnResult | None]:
    """What the upgraded database is verified against: the source's snapshot, and its
    planner's choice for the HNSW query."""
    before = snapshot(conn)
    with reading(conn):
        return before, default_plan(conn, before)


def verify_upgraded(cluster: Cluster, before: Snapshot, planned: ann.AnnResult | None,
                    plan: UpgradePlan, *, same_answers: bool
                    ) -> tuple[Verification, dict[str, Any]]:
    """The meta-drill's `after_upgrade` (when set), then SOURCE_DB on the upgraded `cluster`
    verified; with the server's facts as it reports them."""
    if plan.tamper.after_upgrade is not None:
        plan.tamper.after_upgrade(cluster, SOURCE_DB)
    with cluster.connect(SOURCE_DB) as conn:
        return (verify_upgrade(before, planned, conn, same_answers=same_answers,
                               recall_threshold=plan.recall_threshold),
                server_capabilities(conn).as_dict())


def verify_upgrade(before: Snapshot, planned: ann.AnnResult | None, conn: Conn, *,
                   same_answers: bool, recall_threshold: float) -> Verification:
    """Every check of the module docstring on the upgraded database `conn`."""
    checks = [run_check("extension", lambda c: _extension(c, conn)),
              run_check("vector_types", lambda c: _types(c, conn))]
    with reading(conn):
        facts, contents = read_facts(conn, None, keys=before.schema)
    checks.append(run_check("content", lambda c: _content(c, before, contents)))
    checks.append(run_check("indexes", lambda c: _indexes(c, before.schema, facts)))
    checks.append(run_check("ann", lambda c: _ann(c, before, conn, same_answers,
                                                  recall_threshold)))
    with reading(conn):
        after = default_plan(conn, before)
    checks.append(run_check("planner", lambda c: _planner(c, planned, after)))
    checks.append(run_check("settings", lambda c: _settings(c, conn)))
    return Verification(checks)


def _versions(conn: Conn) -> tuple[str | None, str | None]:
    row = conn.execute(
        "SELECT (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'vector'),"
        " (SELECT default_version FROM pg_catalog.pg_available_extensions"
        "  WHERE name = 'vector')").fetchone()
    assert row is not None
    return row[0], row[1]


def _extension(check: Check, conn: Conn) -> None:
    installed, offered = _versions(conn)
    check.details = {"installed": installed, "offered": offered}
    if installed is None:
        check.problems.append("the vector extension is missing in the upgraded database")
    elif offered is not None and version_key(installed) < version_key(offered):
        check.problems.append(
            f"extension vector is at {installed} in the upgraded database, the server offers "
            f"{offered}: ALTER EXTENSION vector UPDATE was not applied (pg_upgrade's "
            "update_extensions.sql), so the old version's SQL objects run on the new library")


def _types(check: Check, conn: Conn) -> None:
    installed, offered = _versions(conn)
    present = vector_types(conn)
    check.details = {"present": sorted(present)}
    if offered is None or version_key(offered) < HALFVEC_FROM:
        check.details["note"] = f"pgvector {offered} has no halfvec or sparsevec"
        return
    for name in ("halfvec", "sparsevec"):
        if name not in present:
            check.problems.append(
                f"type {name} is not available after the upgrade (extension vector at "
                f"{installed}, the server offers {offered}): update the extension")


def _content(check: Check, before: Snapshot, contents: dict[str, Any]) -> None:
    for key, source in sorted(before.contents.items()):
        target = contents.get(key)
        if target is None:
            check.problems.append(f"table {key} is missing after the upgrade")
            continue
        differing = differing_buckets(source, target)
        check.details[key] = {"rows": target.rows, "equal": not differing}
        if target.rows != source.rows:
            check.problems.append(f"table {key} has {target.rows} rows after the upgrade, "
                                  f"{source.rows} before")
        elif differing:
            check.problems.append(
                f"table {key}: content differs in {len(differing)} of the key buckets "
                "(vectors are compared by their binary form: bit-exact)")


def _indexes(check: Check, source: SchemaFacts, target: SchemaFacts) -> None:
    for key, index in sorted(source.indexes.items()):
        found = target.indexes.get(key)
        if found is None:
            check.problems.append(f"index {key} on {index.table} ({index.method}) is missing "
                                  "after the upgrade")
        elif found.definition != index.definition:
            check.problems.append(f"index {key} differs: {found.definition} after the "
                                  f"upgrade, {index.definition} before")
    check.problems += validity_problems(target)
    check.details = {"source": len(source.indexes), "target": len(target.indexes)}


def _ann(check: Check, before: Snapshot, conn: Conn, same_answers: bool, threshold: float
         ) -> None:
    with reading(conn):
        indexes = ann.vector_indexes(conn)
    for key, base in sorted(before.ann.items()):
        if key not in indexes:
            check.problems.append(f"index {key}: missing, its queries cannot run")
            continue
        with reading(conn):  # one each: measure leaves its enable_* settings behind
            result = ann.measure(conn, indexes[key], base.queries)
        src = threshold if base.result.recall is None else base.result.recall
        base_recall = min(threshold, src)
        required = recall_floor(base_recall, noise_margin(
            base_recall, len(base.queries) * ann.K, 0.05))
        check.details[key] = {"target": result.recall, "source": base.result.recall,
                              "required": required}
        if result.recall is None:
            check.problems.append(f"index {key}: not used for {indexes[key].describe()} "
                                  "even with enable_seqscan=off")
        elif result.recall < required:
            check.problems.append(f"index {key}: recall@{ann.K} {result.recall:.2f} after "
                                  f"the upgrade, {base.result.recall} before (required "
                                  f">= {required:.2f})")
        if same_answers and result.answers != base.result.answers:
            differing = sum(a != b for a, b in zip(result.answers, base.result.answers,
                                                   strict=False))
            check.problems.append(
                f"index {key}: {differing} of {len(base.queries)} top-{ann.K} answers "
                "differ from the same index before pg_upgrade (it carries the index "
                "files: they must answer identically)")


def default_plan(conn: Conn, before: Snapshot) -> ann.AnnResult | None:
    """HNSW_L2 measured for the planner check (inside `session.reading`, a transaction of
    its own: the snapshot measures its indexes in one, with settings left over)."""
    key = next((k for k, b in before.ann.items() if b.index.name == HNSW_L2), None)
    indexes = ann.vector_indexes(conn)
    if key is None or key not in indexes:
        return None
    return ann.measure(conn, indexes[key], before.ann[key].queries)


def _planner(check: Check, source: ann.AnnResult | None, target: ann.AnnResult | None
             ) -> None:
    if source is None:
        check.unknown = f"the source has no index {HNSW_L2}"
        return
    check.details = {"source_default_plan_uses_index": source.default_plan_uses_index,
                     "target_default_plan_uses_index": None if target is None
                     else target.default_plan_uses_index,
                     "target_plan": None if target is None else target.plan}
    query = f"ORDER BY embedding <-> $q LIMIT {ann.K}"
    if target is None or not target.uses_index:
        check.problems.append(f"the planner cannot use {HNSW_L2} for {query} after the "
                              "upgrade, not even with enable_seqscan=off")
    elif not target.default_plan_uses_index:
        check.unknown = (
            f"with the server's own settings the planner prefers another plan for {query} "
            f"(the source's {'did' if source.default_plan_uses_index else 'did not'} choose "
            f"{HNSW_L2}): its cost estimate finds a sequential scan cheaper on a table this "
            "small; the index serves the query when chosen (enable_seqscan=off)")


def _settings(check: Check, conn: Conn) -> None:
    for name in (*QUIET, *STATED):
        row = conn.execute("SELECT current_setting(%s, true)", (name,)).fetchone()
        value = None if row is None else row[0]
        check.details[name] = value
        if value is not None and value not in QUIET.get(name, (value,)):
            check.problems.append(f"the upgraded server has {name} = {value!r}: it must not "
                                  "archive into, stream from, restore from or reach out to "
                                  "another server")
    _subscriptions(check, conn)
    check.details["foreign_servers"] = [  # postgres_fdw, dblink: stated, they connect on use
        f"{name} ({wrapper})" for name, wrapper in conn.execute(
            "SELECT s.srvname, w.fdwname FROM pg_catalog.pg_foreign_server s"
            " JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw ORDER BY 1")]


def _subscriptions(check: Check, conn: Conn) -> None:
    """pg_subscription is shared: every database's subscriptions, enabled ones a problem
    (their apply workers connect to the publisher and consume its slot)."""
    rows = conn.execute(
        "SELECT s.subname, d.datname, s.subenabled FROM pg_catalog.pg_subscription s"
        " JOIN pg_catalog.pg_database d ON d.oid = s.subdbid ORDER BY 2, 1").fetchall()
    check.details["subscriptions"] = {f"{db}.{name}": "enabled" if on else "disabled"
                                      for name, db, on in rows}
    for name, db, on in rows:
        if on:
            check.problems.append(
                f"subscription {name} in database {db} is enabled in the upgraded cluster: "
                "its apply worker connects to the publisher (production) and takes its "
                f"slot; ALTER SUBSCRIPTION {name} DISABLE before the upgraded cluster starts")
