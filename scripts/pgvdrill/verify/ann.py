"""Vector (HNSW, IVFFlat) indexes: recall@k against exact search, the planner's use of
the index, and the ids they answer with.

Indexes are found in the catalog (pg_index, pg_am.amname in hnsw/ivfflat); the
opclass gives the ordering operator (`<=>`, `<->`, `<#>`, `<+>`, ...) and the query
type (vector, halfvec, sparsevec, bit). Every measurement uses the server's current
settings (hnsw.ef_search, ivfflat.probes): raising them would hide an index that
is valid but answers badly, such as an IVFFlat index built before its data was loaded.

A query runs twice in one snapshot: through the index (enable_seqscan off, so the
planner takes the index when it can serve the query at all) and exactly (index and
bitmap scans off: a sequential scan and a sort). Recall counts the index's rows whose
distance is within the exact k-th distance, so ties do not count as misses.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql

from pgvdrill.verify.session import set_local

K = 10
SETTINGS = ("hnsw.ef_search", "hnsw.iterative_scan", "ivfflat.probes", "ivfflat.iterative_scan")
INDEX_PATH = {"enable_seqscan": "off", "enable_indexscan": "on", "enable_bitmapscan": "on",
              "enable_indexonlyscan": "on"}
EXACT_PATH = {"enable_seqscan": "on", "enable_indexscan": "off", "enable_bitmapscan": "off",
              "enable_indexonlyscan": "off"}


@dataclass(frozen=True)
class VectorIndex:
    key: str  # schema-qualified index name
    name: str
    table: str
    table_ident: tuple[str, str]
    method: str  # hnsw or ivfflat
    expression: str  # the indexed column or expression, as pg_get_indexdef prints it
    operator: tuple[str, str]  # (schema, name) of the ordering operator
    query_type: str  # e.g. public.vector
    predicate: str | None  # partial index WHERE clause
    row_id: tuple[str, ...]  # primary key columns; ctid when empty

    def describe(self) -> str:
        return f"ORDER BY {self.expression} {self.operator[1]} $q LIMIT {K}"


@dataclass(frozen=True)
class AnnResult:
    """One index measured with one query set on one server."""

    recall: float | None  # None: the index could not be used for the query
    uses_index: bool  # chosen with enable_seqscan=off
    default_plan_uses_index: bool  # chosen with the server's own settings
    plan: str  # plan nodes, outermost first
    answers: tuple[tuple[str, ...], ...]  # row ids per query, in index order
    settings: dict[str, str]


def vector_indexes(conn: psycopg.Connection) -> dict[str, VectorIndex]:
    """Every valid-or-not HNSW/IVFFlat index of user tables (inside `session.reading`)."""
    rows = conn.execute(
        """
        SELECT DISTINCT ON (i.indexrelid)
               format('%I.%I', n.nspname, ic.relname), ic.relname,
               format('%I.%I', tn.nspname, tc.relname), tn.nspname, tc.relname,
               am.amname::text, pg_get_indexdef(i.indexrelid, 1, false),
               opn.nspname, op.oprname, format_type(opc.opcintype, NULL),
               pg_get_expr(i.indpred, i.indrelid),
               (SELECT array_agg(a.attname ORDER BY k.ord)
                FROM pg_constraint c CROSS JOIN unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
                JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
                WHERE c.conrelid = i.indrelid AND c.contype = 'p')
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid AND ic.relkind = 'i'
        JOIN pg_namespace n ON n.oid = ic.relnamespace
        JOIN pg_class tc ON tc.oid = i.indrelid
        JOIN pg_namespace tn ON tn.oid = tc.relnamespace
        JOIN pg_am am ON am.oid = ic.relam AND am.amname IN ('hnsw', 'ivfflat')
        JOIN pg_opclass opc ON opc.oid = i.indclass[0]
        JOIN pg_amop ao ON ao.amopfamily = opc.opcfamily AND ao.amoppurpose = 'o'
        JOIN pg_operator op ON op.oid = ao.amopopr
        JOIN pg_namespace opn ON opn.oid = op.oprnamespace
        WHERE tn.nspname NOT IN ('pg_catalog', 'information_schema')
        ORDER BY i.indexrelid, ao.amopstrategy
        """
    ).fetchall()
    return {r[0]: VectorIndex(r[0], r[1], r[2], (r[3], r[4]), r[5], r[6], (r[7], r[8]), r[9],
                              r[10], tuple(r[11] or ())) for r in rows}


def sample_queries(conn: psycopg.Connection, index: VectorIndex, n: int) -> list[str]:
    """`n` query vectors (text literals): the table's own non-NULL vectors in a
    deterministic order, each perturbed deterministically (sparse: non-zeros only)."""
    expr = sql.SQL(f"({index.expression})")  # deparsed by the server: safe SQL
    query = sql.SQL(
        "SELECT ({expr})::text FROM ONLY {table} WHERE ({expr}) IS NOT NULL {pred}"
        " ORDER BY md5(ctid::text) LIMIT {n}"
    ).format(expr=expr, table=sql.Identifier(*index.table_ident), pred=_and(index.predicate),
             n=sql.Literal(n))
    return [_perturb(text, f"{index.key}#{i}")
            for i, (text,) in enumerate(conn.execute(query))]


def measure(conn: psycopg.Connection, index: VectorIndex, queries: Sequence[str],
            k: int = K) -> AnnResult:
    """Recall@k, plan and answers of `index` for `queries` (inside `session.reading`). The
    enable_* settings it changes are undone (a savepoint rolled back) so that the next
    measurement's default plan is the server's own."""
    with conn.transaction(force_rollback=True):
        return _measure(conn, index, queries, k)


def _measure(conn: psycopg.Connection, index: VectorIndex, queries: Sequence[str], k: int
             ) -> AnnResult:
    settings = {name: str(conn.execute("SELECT current_setting(%s, true)", (name,))
                          .fetchone()[0]) for name in SETTINGS}  # type: ignore[index]
    default_plan = _plan(conn, index, queries[0], k) if queries else []
    set_local(conn, INDEX_PATH)
    plan = _plan(conn, index, queries[0], k) if queries else []
    uses_index = any(node.get("Index Name") == index.name for node in plan)
    default_uses = any(node.get("Index Name") == index.name for node in default_plan)
    plan_text = " > ".join(_node_text(node) for node in plan)
    if not uses_index:
        return AnnResult(None, False, default_uses, plan_text, (), settings)
    approx = [_knn(conn, index, q, k) for q in queries]
    set_local(conn, EXACT_PATH)
    exact = [_knn(conn, index, q, k) for q in queries]
    recalls = [_recall(a, e) for a, e in zip(approx, exact, strict=True) if e]
    recall = round(float(np.mean(recalls)), 4) if recalls else None
    answers = tuple(tuple(row_id for row_id, _ in a) for a in approx)
    return AnnResult(recall, True, default_uses, plan_text, answers, settings)


def _knn(conn: psycopg.Connection, index: VectorIndex, query: str, k: int
         ) -> list[tuple[str, float]]:
    # never prepared: a cached plan would ignore the enable_* settings of the phase
    rows = conn.execute(_knn_sql(index, k), {"q": query}, prepare=False)
    return [(str(r[0]), float(r[1])) for r in rows]


def _knn_sql(index: VectorIndex, k: int) -> sql.Composed:
    distance = sql.SQL("({expr}) OPERATOR({op}) %(q)s::{type}").format(
        expr=sql.SQL(index.expression), op=sql.SQL(".").join([
            sql.Identifier(index.operator[0]), sql.SQL(index.operator[1])]),
        type=sql.SQL(index.query_type))
    row_id = (sql.SQL("ROW({})::text").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in index.row_id))
        if index.row_id else sql.SQL("ctid::text"))
    return sql.SQL(
        "SELECT {row_id}, {distance} FROM ONLY {table} WHERE true {pred}"
        " ORDER BY {distance} LIMIT {k}"
    ).format(row_id=row_id, distance=distance, table=sql.Identifier(*index.table_ident),
             pred=_and(index.predicate), k=sql.Literal(k))


def _plan(conn: psycopg.Connection, index: VectorIndex, query: str, k: int
          ) -> list[dict[str, object]]:
    """The plan's nodes, outermost first, for one k-NN query."""
    explain = sql.SQL("EXPLAIN (FORMAT JSON) ") + _knn_sql(index, k)
    row = conn.execute(explain, {"q": query}, prepare=False).fetchone()
    assert row is not None
    doc = row[0] if isinstance(row[0], list) else json.loads(row[0])
    nodes: list[dict[str, object]] = []
    stack = [doc[0]["Plan"]]
    while stack:
        node = stack.pop(0)
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    return nodes


def _node_text(node: dict[str, object]) -> str:
    name = str(node.get("Node Type"))
    if "Index Name" in node:
        return f"{name} using {node['Index Name']}"
    return f"{name} on {node['Relation Name']}" if "Relation Name" in node else name


def _recall(approx: list[tuple[str, float]], exact: list[tuple[str, float]]) -> float:
    """Share of the exact answer the index found; rows tied with the k-th count."""
    kth = max(d for _, d in exact)
    found = {row_id for row_id, d in approx if d <= kth}
    return min(len(found), len(exact)) / len(exact)


def _and(predicate: str | None) -> sql.Composable:
    return sql.SQL(f"AND ({predicate})") if predicate else sql.SQL("")


def _perturb(text: str, seed: str) -> str:
    """A query near the vector `text` (vector/halfvec `[..]`, sparsevec `{i:v,..}/n`)."""
    rng = np.random.default_rng(zlib.crc32(seed.encode()))
    if text.startswith("["):
        values = np.array(json.loads(text), dtype=np.float64)
        return "[" + ",".join(f"{x:.9g}" for x in _nudge(values, rng)) + "]"
    if text.startswith("{"):
        body, dims = text[1:].split("}/")
        pairs = [p.split(":") for p in body.split(",") if p]
        values = _nudge(np.array([float(v) for _, v in pairs]), rng)
        items = ",".join(f"{i}:{x:.9g}" for (i, _), x in zip(pairs, values, strict=True))
        return f"{{{items}}}/{dims}"
    return text  # bit strings and other types: the sampled value itself


def _nudge(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if not len(values):
        return values
    scale = float(np.linalg.norm(values)) / np.sqrt(len(values)) or 1.0
    return values + rng.normal(0.0, 0.02 * scale, len(values))
