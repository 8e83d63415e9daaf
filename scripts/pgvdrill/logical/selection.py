"""What a pg_dump covers (-t/-T/-n/-N, --data-only/--schema-only) and what its archive
must therefore hold, worked out from the source's catalog.

Patterns follow pg_dump's: `*` and `?` wildcards, unquoted names fold to lower case,
`schema.table` qualifies; an unqualified table pattern matches tables in `public`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import psycopg

from pgvdrill.logical.archive import TocEntry
from pgvdrill.logical.table_items import listed

Section = Literal["all", "data", "schema"]
Identity = tuple[str, str, str]
# The object kinds whose presence a drill asserts exactly; others (COMMENT, ACL) are noted.
CHECKED_DESCS = frozenset({"TABLE", "TABLE DATA", "INDEX", "CONSTRAINT", "FK CONSTRAINT",
                           "EXTENSION", "SCHEMA", "SEQUENCE", "SEQUENCE SET"})


@dataclass(frozen=True)
class Selection:
    """The objects a dump covers."""

    tables: tuple[str, ...] = ()  # -t
    exclude_tables: tuple[str, ...] = ()  # -T
    schemas: tuple[str, ...] = ()  # -n
    exclude_schemas: tuple[str, ...] = ()  # -N
    section: Section = "all"  # --data-only / --schema-only

    def argv(self) -> list[str]:
        args = [f"--table={t}" for t in self.tables]
        args += [f"--exclude-table={t}" for t in self.exclude_tables]
        args += [f"--schema={s}" for s in self.schemas]
        args += [f"--exclude-schema={s}" for s in self.exclude_schemas]
        args += {"all": [], "data": ["--data-only"], "schema": ["--schema-only"]}[self.section]
        return args

    @property
    def scoped(self) -> bool:
        """A -t/-n dump: pg_dump leaves extensions (CREATE EXTENSION vector) out of it."""
        return bool(self.tables or self.schemas)

    def covers(self, schema: str, table: str) -> bool:
        """Whether the dump holds this table, judged from the patterns alone."""
        return ((not self.tables or _matches(self.tables, schema, table))
                and (not self.schemas or any(_regex(p).match(schema) for p in self.schemas))
                and not any(_regex(p).match(schema) for p in self.exclude_schemas)
                and not _matches(self.exclude_tables, schema, table))

    def describe(self) -> str:
        return " ".join(self.argv()) or "whole database"


def _regex(pattern: str) -> re.Pattern[str]:
    if pattern.startswith('"') and pattern.endswith('"'):
        return re.compile(re.escape(pattern[1:-1].replace('""', '"')) + r"\Z")
    text = re.escape(pattern.lower()).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(text + r"\Z")


def _split(pattern: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    schema, dot, table = pattern.rpartition(".") if '"' not in pattern else ("", "", pattern)
    return _regex(schema if dot else "public"), _regex(table)


def _matches(patterns: tuple[str, ...], schema: str, table: str) -> bool:
    return any(s.match(schema) and t.match(table) for s, t in map(_split, patterns))


def selected_tables(conn: psycopg.Connection, selection: Selection) -> list[tuple[str, str]]:
    """(schema, table) of every ordinary table the dump covers, sorted."""
    rows = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2").fetchall()
    return [(schema, table) for schema, table in rows if selection.covers(schema, table)]


def expected_toc(conn: psycopg.Connection, selection: Selection) -> set[Identity]:
    """The identities of `CHECKED_DESCS` items the archive of `selection` must hold."""
    tables = selected_tables(conn, selection)
    partitioned = set(conn.execute(  # no rows of their own: pg_dump writes no TABLE DATA
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n"
        " ON n.oid = c.relnamespace WHERE c.relkind = 'p'").fetchall())
    expected: set[Identity] = set()
    schema_part = selection.section in ("all", "schema")
    for schema, table in tables:
        if schema_part:
            expected.add(("TABLE", schema, table))
        if selection.section in ("all", "data") and (schema, table) not in partitioned:
            expected.add(("TABLE DATA", schema, table))
    names = [f"{s}.{t}" for s, t in tables]
    owned = conn.execute(  # sequences owned by the tables (serial, identity)
        "SELECT n.nspname, s.relname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid"
        " JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace n ON n.oid = s.relnamespace"
        " JOIN pg_namespace tn ON tn.oid = t.relnamespace WHERE s.relkind = 'S'"
        " AND d.deptype IN ('a', 'i') AND tn.nspname || '.' || t.relname = ANY(%s)",
        [names]).fetchall()
    own = conn.execute(  # sequences of their own (CREATE SEQUENCE): selected like tables
        "SELECT n.nspname, s.relname FROM pg_class s JOIN pg_namespace n"
        " ON n.oid = s.relnamespace WHERE s.relkind = 'S' AND NOT EXISTS (SELECT FROM"
        " pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = s.oid"
        " AND d.deptype IN ('a', 'i', 'e'))"
        " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg\\_%'").fetchall()
    for schema, name in owned + [(s, n) for s, n in own if selection.covers(s, n)]:
        if schema_part:
            expected.add(("SEQUENCE", schema, name))
        if selection.section in ("all", "data"):
            expected.add(("SEQUENCE SET", schema, name))
    if not schema_part:
        return expected
    for schema, name, table, kind in conn.execute(
        "SELECT n.nspname, c.conname, t.relname, c.contype FROM pg_constraint c"
        " JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace"
        " WHERE c.contype IN ('p', 'u', 'f', 'x')"
        " AND n.nspname || '.' || t.relname = ANY(%s)", [names]):
        expected.add(("FK CONSTRAINT" if kind == "f" else "CONSTRAINT", schema,
                      f"{table} {name}"))
    for schema, name in conn.execute(
        "SELECT n.nspname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname || '.' || t.relname = ANY(%s)"
        " AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
            [names]):
        expected.add(("INDEX", schema, name))
    if selection.scoped:  # -n dumps create their schemas, public included; -t dumps none
        return expected | {("SCHEMA", "-", s) for s, _ in tables if selection.schemas}
    for (ext,) in conn.execute("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'"):
        expected.add(("EXTENSION", "-", ext))
    for (schema,) in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog',"
            " 'information_schema', 'public', 'pg_toast') AND nspname NOT LIKE 'pg\\_%'"):
        if not any(_regex(p).match(schema) for p in selection.exclude_schemas):
            expected.add(("SCHEMA", "-", schema))
    return expected


def toc_problems(expected: set[Identity], toc: tuple[TocEntry, ...]) -> list[str]:
    """What the archive lacks or holds beyond `expected`, among `CHECKED_DESCS` items.

    Compared as pg_restore -l prints them: schema and name joined by a space, line breaks
    as spaces, so that names with spaces or line breaks match however a line was split."""
    present = {e.identity for e in toc if e.desc in CHECKED_DESCS}
    listed = {_listed(i) for i in present}
    lacking = [i for i in expected if _listed(i) not in listed]
    printed = {_listed(i) for i in expected}
    unexpected = [i for i in present if _listed(i) not in printed]
    problems = [f"the archive lacks {d} {s}.{n}" if s != "-" else f"the archive lacks {d} {n}"
                for d, s, n in sorted(lacking)]
    problems += [f"the archive holds unexpected {d} {s}.{n}" if s != "-" else
                 f"the archive holds unexpected {d} {n}" for d, s, n in sorted(unexpected)]
    return problems


def _listed(identity: Identity) -> tuple[str, str]:
    """An identity as a pg_restore -l line shows it."""
    desc, schema, name = identity
    return desc, listed(schema, name)
