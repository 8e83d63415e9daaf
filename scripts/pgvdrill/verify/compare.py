"""verify(): compare a restored database against its source, check by check."""

from __future__ import annotations

import math
import time
from collections.abc import Collection

import psycopg

from pgvdrill.verify import ann, fingerprint
from pgvdrill.verify.indexes import amcheck, validity_problems
from pgvdrill.verify.outcome import STATED, Check, Verification, run_check, timed
from pgvdrill.verify.schema import (
    SchemaFacts,
    compare_extensions,
    compare_schema,
    extension_versions,
    versions,
)
from pgvdrill.verify.session import reading
from pgvdrill.verify.snapshot import Snapshot, read_facts, snapshot, table_scope


def verify(
    source: psycopg.Connection | Snapshot, target: psycopg.Connection, *,
    source_conn: psycopg.Connection | None = None,
    tables: Collection[str] | None = None,
    recall_threshold: float = 0.9, recall_tolerance: float = 0.05,
    queries_per_index: int = 20, sequence_slack: int = 0, content: bool = True,
) -> Verification:
    """Compare `target` with `source` (a live connection or an earlier `snapshot()`).

    Checks, in order: row_counts, fingerprints, schema, extensions, index_validity,
    ann_recall, planner, amcheck (last: it may create amcheck in a rolled-back
    transaction). `tables` restricts everything to those tables (partial restores; the
    target may then hold more). Recall passes when the target's is at least
    min(recall_threshold, source recall) - recall_tolerance. `sequence_slack`: how far
    target sequences may be ahead (32 after physical restores, whose WAL replay restores
    the value logged ahead). With a Snapshot, differing rows are named only when
    `source_conn` is given. `content=False` (schema-only restores) replaces the content
    checks with one that every table is empty.
    """
    if isinstance(source, psycopg.Connection):
        source_conn = source_conn or source
        source = snapshot(source, tables=tables, queries_per_index=queries_per_index)
    scope = table_scope(tables) if tables is not None else source.scope
    if scope is not None and source.scope is not None and not scope <= source.scope:
        raise ValueError(f"tables {sorted(tables or ())} are not all in the snapshot's scope")
    src_facts = source.schema.restricted(scope)
    checks: list[Check] = []

    scan_started = time.monotonic()
    with reading(target):
        tgt_facts, tgt_contents = read_facts(target, scope, keys=src_facts)
    scan_seconds = time.monotonic() - scan_started
    if not content:
        checks.append(run_check("empty_tables", lambda c: c.problems.extend(
            f"table {key} has {facts.rows} rows; a schema-only restore leaves it empty"
            for key, facts in sorted(tgt_contents.items()) if facts.rows)))
        _schema_checks(checks, source, src_facts, tgt_facts, scope, sequence_slack=None)
        return Verification(checks)
    checks.append(run_check("row_counts", lambda c: _count_problems(c, source, tgt_contents)))
    fingerprints = run_check("fingerprints", lambda c: _fingerprint_problems(
        c, source, src_facts, tgt_contents, source_conn, target))
    fingerprints.seconds = round(fingerprints.seconds + scan_seconds, 3)
    fingerprints.details["scan_seconds"] = round(scan_seconds, 3)  # row counts included
    checks.append(fingerprints)
    _schema_checks(checks, source, src_facts, tgt_facts, scope, sequence_slack=sequence_slack)
    _ann_checks(checks, source, src_facts, target, recall_threshold, recall_tolerance)
    with timed("amcheck", checks) as check:
        amcheck(check, target, tgt_facts)
    return Verification(checks)


def _schema_checks(checks: list[Check], source: Snapshot, src_facts: SchemaFacts,
                   tgt_facts: SchemaFacts, scope: frozenset[tuple[str, str]] | None, *,
                   sequence_slack: int | None) -> None:
    """schema, extensions and index_validity; `sequence_slack=None` ignores sequence values
    (a schema-only restore leaves sequences at their start)."""
    partial = scope is not None
    with timed("schema", checks) as check:
        check.problems += _unknown_tables(scope, src_facts)
        check.problems += compare_schema(src_facts, tgt_facts, partial=partial,
                                         sequence_slack=sequence_slack,
                                         sequence_window=source.sequence_window)
        check.details = {"tables": len(tgt_facts.tables), "indexes": len(tgt_facts.indexes),
                         "constraints": len(tgt_facts.constraints),
                         "sequences": len(tgt_facts.sequences),
                         **_stated(versions(source.schema, tgt_facts))}
    with timed("extensions", checks) as check:
        check.problems += compare_extensions(source.schema, tgt_facts, partial=partial)
        check.details = {**tgt_facts.extensions,
                         **_stated(extension_versions(source.schema, tgt_facts))}
    with timed("index_validity", checks) as check:
        check.problems += validity_problems(tgt_facts)


def _stated(differences: list[str]) -> dict[str, object]:
    """A check's `stated` detail: differences of versions, said but not failed."""
    return {STATED: differences} if differences else {}


def _unknown_tables(scope: frozenset[tuple[str, str]] | None, facts: SchemaFacts
                    ) -> list[str]:
    """Tables asked for that the source does not have: nothing would check them."""
    known = {(t.schema, t.name) for t in facts.tables.values()}
    return [f"table {schema}.{name} was asked for but does not exist in the source"
            for schema, name in sorted((scope or set()) - known)]


def _count_problems(check: Check, source: Snapshot,
                    tgt_contents: dict[str, fingerprint.Content]) -> None:
    for key in sorted(source.contents.keys() & tgt_contents.keys()):
        s, t = source.contents[key].rows, tgt_contents[key].rows
        check.details[key] = {"source": s, "target": t}
        if s != t:
            check.problems.append(f"table {key} has {t} rows in the target, {s} in the "
                                  f"source ({_signed(t - s)})")


def _fingerprint_problems(check: Check, source: Snapshot, src_facts: SchemaFacts,
                          tgt_contents: dict[str, fingerprint.Content],
                          source_conn: psycopg.Connection | None,
                          target: psycopg.Connection) -> None:
    for key in sorted(source.contents.keys() & tgt_contents.keys()):
        differing = fingerprint.differing_buckets(source.contents[key], tgt_contents[key])
        check.details[key] = "equal" if not differing else "differs"
        if not differing:
            continue
        table = src_facts.tables[key]
        problem = f"table {key}: content differs"
        if not table.primary_key:
            problem += " (no primary key to name the rows)"
        elif source_conn is None:
            problem += (f" in {len(differing)} of {fingerprint.BUCKETS} key buckets"
                        " (pass source_conn to name the rows)")
        else:
            with reading(source_conn), reading(target):
                rows = fingerprint.differing_rows(source_conn, target, table, differing)
            problem += (f"; first differing rows: {', '.join(rows)}" if rows else
                        "; no row differs now: the source changed since its snapshot")
        check.problems.append(problem)


def noise_margin(recall: float, samples: int, tolerance: float) -> float:
    """How far a rebuilt index's recall may fall below `recall` before it counts as a loss:
    `tolerance`, or three standard deviations of the difference of two recall estimates
    from `samples` neighbours each, whichever is wider (low-recall HNSW graphs on
    high-dimensional data vary from build to build; a collapsed index falls much further)."""
    spread = 3 * math.sqrt(2 * recall * (1 - recall) / samples) if samples else 0.0
    return max(tolerance, round(spread, 4))


# the least a rebuilt index may find, as a share of the source's own figure, however wide
# the noise: a quarter (at 0.07 on 20 queries x 10 the spread of a perfect rebuild is
# 0.026, so a floor at a quarter falsely fails one perfect restore in about fifty; an
# absolute margin let an index that finds nothing pass)
RELATIVE_FLOOR = 0.25


def index_requirement(threshold: float, source_index_recall: float | None, samples: int,
                      tolerance: float) -> tuple[float, str]:
    """What the index path's recall must reach and how that was worked out: `threshold`
    when the source's figure is not known; else min(`threshold`, the source's figure) less
    a noise margin (compare.noise_margin), never below RELATIVE_FLOOR of that figure."""
    if source_index_recall is None:
        return threshold, ""
    base = min(threshold, source_index_recall)
    margin = noise_margin(base, samples, tolerance)
    required = recall_floor(base, margin)
    if required == round(base - margin, 4):
        return required, (f" = min({threshold}, the source's "
                          f"{source_index_recall:.2f}) - {margin:.2f}")
    return required, (f" = {RELATIVE_FLOOR} x min({threshold}, the source's "
                      f"{source_index_recall:.2f}): the noise margin {margin:.2f} "
                      "is wider than the figure")


# what the ANN checks say of a source without a vector index (no pgvector, say): nothing
# was measured, so they neither pass nor fail
NO_VECTOR_INDEX = "not applicable: the source has no vector index to measure"


def recall_floor(base: float, margin: float) -> float:
    """What a rebuilt index's recall must reach against `base` (the lower of the threshold
    and the source's figure): `base` less the noise margin, never below RELATIVE_FLOOR of it."""
    return round(max(base - margin, RELATIVE_FLOOR * base), 4)


def _ann_checks(checks: list[Check], source: Snapshot, src_facts: SchemaFacts,
                target: psycopg.Connection, threshold: float, tolerance: float) -> None:
    with timed("ann_recall", checks) as recall, reading(target):
        if not source.ann:
            recall.unknown = NO_VECTOR_INDEX
        indexes = ann.vector_indexes(target)
        results = {key: ann.measure(target, indexes[key], base.queries)
                   for key, base in sorted(source.ann.items())
                   if key in indexes and base.index.table in src_facts.tables}
        for key, result in results.items():
            base = source.ann[key].result
            src_recall = threshold if base.recall is None else base.recall
            margin = noise_margin(min(threshold, src_recall),
                                  len(source.ann[key].queries) * ann.K, tolerance)
            required = recall_floor(min(threshold, src_recall), margin)
            rule = (f"min({threshold:.2f}, source) - {margin:.2f}"
                    if required == round(min(threshold, src_recall) - margin, 4) else
                    f"{RELATIVE_FLOOR} x min({threshold:.2f}, source): the noise margin "
                    f"{margin:.2f} is wider than the figure")
            figures: dict[str, object] = {
                "target": result.recall, "source": base.recall, "required": required,
                "settings": result.settings, "queries": len(source.ann[key].queries)}
            recall.details[key] = figures
            where = f"index {key} on {indexes[key].table}"
            if result.recall is None and not base.uses_index:
                figures["note"] = "not measured: neither side's planner uses this index"
            elif result.recall is None:
                recall.problems.append(f"{where}: recall@{ann.K} not measured in the target, "
                                       "the planner does not use the index")
            elif result.recall < required:
                recall.problems.append(
                    f"{where}: recall@{ann.K} is {result.recall:.2f} in the target and "
                    f"{_fmt(base.recall)} in the source (required >= {required:.2f} = "
                    f"{rule}; settings "
                    f"{_settings(result.settings)})" + _recall_hint(indexes[key]))
    with timed("planner", checks) as planner:
        if not source.ann:
            planner.unknown = NO_VECTOR_INDEX
        for key, result in results.items():
            base = source.ann[key].result
            planner.details[key] = {"target_plan": result.plan,
                                    "target_default_plan_uses_index":
                                        result.default_plan_uses_index,
                                    "source_uses_index": base.uses_index}
            if not result.uses_index and base.uses_index:
                planner.problems.append(
                    f"index {key} on {indexes[key].table} is not used for "
                    f"{indexes[key].describe()} even with enable_seqscan=off "
                    f"(plan: {result.plan})")


def _recall_hint(index: ann.VectorIndex) -> str:
    """What to do about an index whose recall fell, when the cause is a known one."""
    if index.method != "ivfflat":
        return ""
    return ("; an IVFFlat index built before its data (a schema-only restore, then the "
            f"data) has random centres: REINDEX INDEX {index.key} after loading")


def same_ann_answers(source: psycopg.Connection, target: psycopg.Connection, *,
                     tables: Collection[str] | None = None, queries_per_index: int = 20,
                     k: int = ann.K) -> Check:
    """Every vector index answers the same k-NN queries with the same row ids, in the same
    order, in both databases: what a physical copy (same pages) must do."""
    scope = table_scope(tables)
    checks: list[Check] = []
    with timed("ann_answers", checks) as check, reading(source), reading(target):
        src_indexes = ann.vector_indexes(source)
        tgt_indexes = ann.vector_indexes(target)
        if not any(scope is None or index.table_ident in scope
                   for index in src_indexes.values()):
            check.unknown = NO_VECTOR_INDEX
        for key, index in sorted(src_indexes.items()):
            if scope is not None and index.table_ident not in scope:
                continue
            if key not in tgt_indexes:
                check.problems.append(f"index {key} on {index.table} is missing in the target")
                continue
            queries = ann.sample_queries(source, index, queries_per_index)
            src = ann.measure(source, index, queries, k).answers
            tgt = ann.measure(target, tgt_indexes[key], queries, k).answers
            differing = [i for i in range(len(queries))
                         if i >= len(src) or i >= len(tgt) or src[i] != tgt[i]]
            check.details[key] = {"queries": len(queries), "differing": len(differing)}
            if differing:
                i = differing[0]
                check.problems.append(
                    f"index {key} on {index.table}: {len(differing)} of {len(queries)} k-NN "
                    f"answers differ; first, query {i}: source {_ids(src, i)}, "
                    f"target {_ids(tgt, i)}")
    return checks[0]


def _ids(answers: tuple[tuple[str, ...], ...], i: int) -> str:
    return "[" + ", ".join(answers[i]) + "]" if i < len(answers) else "(index not used)"


def _signed(n: int) -> str:
    return f"{-n} fewer" if n < 0 else f"{n} more"


def _fmt(recall: float | None) -> str:
    return "not measured" if recall is None else f"{recall:.2f}"


def _settings(settings: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items() if v not in ("None", ""))
