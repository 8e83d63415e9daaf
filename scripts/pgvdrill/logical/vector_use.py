"""What of pgvector a dump uses, and what of it a target server lacks.

A restore into a target whose pgvector is older (or newer) than the source's succeeds when
the target's pgvector has everything the dump names: its types (halfvec, sparsevec), index
methods (hnsw, ivfflat), operator classes, distance operators and functions. The dump's
DDL says what it uses (pg_dump qualifies every object outside pg_catalog with its schema);
the target says what it offers, probed in a transaction that is rolled back (CREATE
EXTENSION vector where the database does not have it yet).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from pgvdrill.cluster.base import ToolRunner
from pgvdrill.logical.archive import Archive
from pgvdrill.proc.runner import ToolCall

PROBE_SCHEMA = "pgvdrill_vector_probe"  # created and rolled back with the probe
# pgvector's vocabulary (every type, operator, function and aggregate its 0.8 scripts
# create; a name of pgvector's own pattern counts too, for what later versions add): what a
# dump can use of it. Other names in the same schema (other extensions') are not
# pgvector's business.
TYPES = ("vector", "halfvec", "sparsevec")
METHODS = ("hnsw", "ivfflat")
OPERATORS = ("<->", "<#>", "<=>", "<+>", "<~>", "<%>", "||", "+", "-", "*",
             "<", "<=", "=", "<>", ">=", ">")
FUNCTIONS = (
    "array_to_halfvec", "array_to_sparsevec", "array_to_vector", "avg", "binary_quantize",
    "cosine_distance", "hamming_distance", "hnsw_bit_support", "hnswhandler",
    "inner_product", "ivfflat_bit_support", "ivfflathandler", "jaccard_distance",
    "l1_distance", "l2_distance", "l2_norm", "l2_normalize", "subvector", "sum")
_OWN_NAME = re.compile(r"^(?:vector|halfvec|sparsevec)_\w+$|^(?:hnsw|ivfflat)_\w+_support$")
_OPCLASS = re.compile(r"^(?:vector|halfvec|sparsevec|bit)_\w+_ops$")
_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)'
_EXTENSION = re.compile(rf"CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA ({_IDENT})")
_INDEX = re.compile(r"^CREATE (?:UNIQUE )?INDEX .* USING (\w+) \((.*)$", re.MULTILINE)
_MEMBERS = """
SELECT k, name FROM (
  SELECT 'type' AS k, t.typname::text AS name, t.oid AS objid, 'pg_type'::regclass AS cls
  FROM pg_catalog.pg_type t
  UNION ALL SELECT 'function', p.proname::text, p.oid, 'pg_proc'::regclass
  FROM pg_catalog.pg_proc p
  UNION ALL SELECT 'operator', o.oprname::text, o.oid, 'pg_operator'::regclass
  FROM pg_catalog.pg_operator o
  UNION ALL SELECT 'operator class', c.opcname || ' for ' || a.amname, c.oid,
         'pg_opclass'::regclass
  FROM pg_catalog.pg_opclass c JOIN pg_catalog.pg_am a ON a.oid = c.opcmethod
  UNION ALL SELECT 'index method', a.amname::text, a.oid, 'pg_am'::regclass
  FROM pg_catalog.pg_am a) m
WHERE EXISTS (SELECT FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e
              ON e.oid = d.refobjid AND e.extname = 'vector'
              WHERE d.classid = m.cls AND d.objid = m.objid AND d.deptype = 'e')
"""

# (kind, name): ("type", "halfvec"), ("operator class", "halfvec_cosine_ops for hnsw"), ...
Used = frozenset[tuple[str, str]]


def ddl(tools: ToolRunner, archive: Archive) -> str:
    """The archive's schema as SQL (a plain dump: its text less the table data)."""
    if archive.format == "plain":
        return "".join(_without_data(archive.path))
    return tools.run_tool(ToolCall(
        "pg_restore", ["--schema-only", "--file", "-", str(archive.path)])).stdout


def _without_data(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        copying = False
        for line in fh:
            if copying:
                copying = line.rstrip("\n") != "\\."
            elif line.startswith("COPY ") and line.rstrip().endswith("FROM stdin;"):
                copying = True
            else:
                yield line


def uses(script: str, archive: Archive, schema: str = "public") -> Used:
    """What of pgvector `script` (the archive's DDL) names; `schema`: where the target's
    pgvector lives, when the dump does not create the extension."""
    created = _EXTENSION.search(script)
    schema = _unquoted(created.group(1)) if created else schema
    own = {e.name.split("(")[0] for e in archive.toc if e.schema == schema}
    prefix = re.escape(_quoted(schema))
    found: set[tuple[str, str]] = set()
    for match in re.finditer(rf"{prefix}\.({_IDENT})", script):
        name = _unquoted(match.group(1))
        kind = ("type" if name in TYPES else "function"
                if name in FUNCTIONS or (_OWN_NAME.match(name) and not _OPCLASS.match(name))
                else None)
        if kind is not None and name not in own:
            found.add((kind, name))
    found |= {("operator", m.group(1)) for m in re.finditer(
        rf"OPERATOR\({prefix}\.([^\s)]+)\)", script) if m.group(1) in OPERATORS}
    for index in _INDEX.finditer(script):  # an operator class exists per index method
        method = index.group(1)
        found |= {("index method", method)} if method in METHODS else set()
        found |= {("operator class", f"{name} for {method}") for m in re.finditer(
            rf"{prefix}\.({_IDENT})", index.group(2))
            if _OPCLASS.match(name := _unquoted(m.group(1)))}
    return frozenset(found)


def offered(conn: psycopg.Connection[Any], installed: bool) -> Used:
    """What the target database's pgvector has: the installed one's, or (not installed)
    what CREATE EXTENSION vector would create, probed and rolled back."""
    with conn.transaction(force_rollback=True):
        if not installed:
            conn.execute(f"CREATE SCHEMA {PROBE_SCHEMA}; "
                         f"CREATE EXTENSION vector SCHEMA {PROBE_SCHEMA}")
        return frozenset((str(k), str(n)) for k, n in conn.execute(_MEMBERS))


def describe(used: Used) -> str:
    """'type halfvec, operator class halfvec_cosine_ops' (sorted by kind, then name)."""
    return ", ".join(f"{kind} {name}" for kind, name in sorted(used))


def _quoted(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else \
        '"' + name.replace('"', '""') + '"'


def _unquoted(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name
