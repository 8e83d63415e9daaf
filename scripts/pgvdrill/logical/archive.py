"""What a pg_dump archive holds, checked before anything is restored from it.

An archive passes when it exists, is not empty, its table of contents parses
(`pg_restore -l`) and every data block can be read back (`pg_restore -f /dev/null`),
which catches truncation and gzip corruption without a server.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from pgvdrill.cluster.base import ToolRunner
from pgvdrill.errors import BackupError, ConfigError, ToolError, classified
from pgvdrill.identifiers import parse_table_name
from pgvdrill.logical import table_items
from pgvdrill.proc.runner import ToolCall

# pg_dump's object descriptions, longest first so that "TABLE DATA" wins over "TABLE".
_DESCS = sorted(
    """ACCESS METHOD|ACL|AGGREGATE|BLOB|BLOB METADATA|BLOBS|CAST|CHECK CONSTRAINT|COLLATION|
    COMMENT|CONSTRAINT|CONVERSION|DATABASE|DATABASE PROPERTIES|DEFAULT|DEFAULT ACL|DOMAIN|
    ENCODING|EVENT TRIGGER|EXTENSION|FK CONSTRAINT|FOREIGN DATA WRAPPER|FOREIGN SERVER|
    FOREIGN TABLE|FUNCTION|INDEX|INDEX ATTACH|LARGE OBJECT|MATERIALIZED VIEW|
    MATERIALIZED VIEW DATA|OPERATOR|OPERATOR CLASS|OPERATOR FAMILY|POLICY|PROCEDURE|
    PROCEDURAL LANGUAGE|PUBLICATION|PUBLICATION TABLE|PUBLICATION TABLES IN SCHEMA|
    ROW SECURITY|RULE|SCHEMA|SEARCHPATH|SECURITY LABEL|SEQUENCE|SEQUENCE OWNED BY|
    SEQUENCE SET|SERVER|STATISTICS|STATISTICS DATA|STDSTRINGS|SUBSCRIPTION|
    SUBSCRIPTION TABLE|TABLE|TABLE ATTACH|TABLE DATA|TEXT SEARCH CONFIGURATION|
    TEXT SEARCH DICTIONARY|TEXT SEARCH PARSER|TEXT SEARCH TEMPLATE|TRANSFORM|TRIGGER|TYPE|
    USER MAPPING|VIEW""".replace("\n", "").split("|"),
    key=len, reverse=True,
)
_DESCS = [d.strip() for d in _DESCS]
_LINE = re.compile(r"^(\d+); (\d+) (\d+) (.*)$")


@dataclass(frozen=True)
class TocEntry:
    """One item of an archive's table of contents, identified as pg_restore lists it."""

    dump_id: int
    desc: str
    schema: str  # "-" when the object has none
    name: str
    owner: str

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.desc, self.schema, self.name)


@dataclass(frozen=True)
class Archive:
    """A checked pg_dump artifact."""

    path: Path
    format: str
    size_bytes: int
    sha256: str
    toc: tuple[TocEntry, ...]

    def entries(self, desc: str) -> list[TocEntry]:
        return [e for e in self.toc if e.desc == desc]

    def tables(self) -> list[tuple[str, str]]:
        """(schema, table) of every table the archive defines or holds data of."""
        return sorted({(e.schema, e.name) for e in self.toc
                       if e.desc in ("TABLE", "TABLE DATA")})

    def items_of_tables(self, tools: ToolRunner, tables: Iterable[str]
                        ) -> dict[int, tuple[str, tuple[str, str]]]:
        """Dump id -> (desc, (schema, table)) of the tables' own items: definition, data,
        indexes, constraints, sequences, defaults, triggers and, for a partitioned table,
        its partitions with theirs (found from the archive alone, no server needed)."""
        items = table_items.read(tools.run_tool(ToolCall(
            "pg_restore", ["--schema-only", "--file", "-", str(self.path)])).stdout)
        wanted = items.with_partitions(qualified(t) for t in tables)
        by_name = {(table_items.clean(s), table_items.clean(t)): (s, t) for s, t in wanted}
        found: dict[int, tuple[str, tuple[str, str]]] = {}
        for schema in sorted(items.schemas_of(wanted)):
            for e in in_schema(tools, self.path, schema):
                table = (by_name.get((e.schema, e.name)) if e.desc in ("TABLE", "TABLE DATA")
                         else items.table_of(e.desc, e.schema, e.name))
                if table in wanted:
                    found[e.dump_id] = (e.desc, table)
        return found

    def as_dict(self) -> dict[str, object]:
        return {"path": str(self.path), "format": self.format, "size_bytes": self.size_bytes,
                "sha256": self.sha256, "toc_items": len(self.toc)}


def qualified(name: str) -> tuple[str, str]:
    """(schema, table) of a table named as SQL reads it: `items`, `app.items`,
    `"my schema"."a.b"` (public when unqualified); `ConfigError` if it is no table name."""
    try:
        return parse_table_name(name)
    except ValueError as exc:
        raise ConfigError(str(exc), 'quote names as SQL does: "my schema"."My Table"') from exc


def parse_toc(listing: str) -> tuple[TocEntry, ...]:
    """Parse `pg_restore -l` output into entries (comment lines are skipped)."""
    return tuple(e for e in map(entry_of, listing_lines(listing)) if e is not None)


def in_schema(tools: ToolRunner, path: Path, schema: str) -> list[TocEntry]:
    """The archive's items in `schema` (`pg_restore -l --schema`), split after its name:
    a plain listing cannot tell where a schema name holding a space ends."""
    prefix = table_items.clean(schema) + " "
    listing = tools.run_tool(
        ToolCall("pg_restore", ["--list", "--schema", schema, str(path)])).stdout
    return [replace(e, schema=prefix[:-1], name=joined[len(prefix):])
            for e in map(entry_of, listing_lines(listing))
            if e is not None and (joined := table_items.listed(e.schema, e.name))
            .startswith(prefix)]


def _exact_schemas(tools: ToolRunner, path: Path, toc: tuple[TocEntry, ...]
                   ) -> tuple[TocEntry, ...]:
    """`toc` with the items of schemas whose names hold a space split exactly (from the
    archive's SCHEMA items: a -t dump has none, its items keep the first-space split)."""
    exact = {e.dump_id: e for schema in sorted({e.name for e in toc
                                                if e.desc == "SCHEMA" and " " in e.name})
             for e in in_schema(tools, path, schema)}
    return tuple(exact.get(e.dump_id, e) for e in toc)


def listing_lines(listing: str) -> list[str]:
    """The lines of `pg_restore -l` output: split at newlines only, which pg_restore keeps
    out of names (str.splitlines would also split names at \x1c-\x1e, \x85, \u2028...)."""
    return listing.split("\n")


def entry_of(line: str) -> TocEntry | None:
    """The entry a `pg_restore -l` line lists; None for comments and blank lines."""
    match = _LINE.match(line)
    if match is None:
        return None
    rest = match.group(4)
    desc = next((d for d in _DESCS if rest == d or rest.startswith(d + " ")), None)
    if desc is None:
        raise BackupError(f"unknown item in archive listing: {line!r}")
    # "<desc> <schema> <name> <owner>": names may hold spaces, an empty owner leaves a
    # trailing space (pg_restore prints the four fields separated by single spaces)
    schema, _, remainder = rest[len(desc) + 1:].partition(" ")
    name, _, owner = remainder.rpartition(" ") if " " in remainder else (remainder, "", "")
    return TocEntry(int(match.group(1)), desc, schema or "-", name, owner)


def inspect(tools: ToolRunner, path: Path) -> Archive:
    """Check the archive at `path` and return what it holds; `BackupError` if it is broken."""
    if not path.exists():
        raise BackupError(f"backup {path} does not exist", "check the path and the backup job")
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    size = sum(f.stat().st_size for f in files)
    if size == 0:
        raise BackupError(f"backup {path} is empty", "the dump did not complete: take it again")
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    if path.is_file() and not _starts_with(path, b"PGDMP"):
        _check_plain(path)
        return Archive(path, "plain", size, digest.hexdigest(), _plain_toc(path))
    fmt = "directory" if path.is_dir() else "custom"
    hint = f"{path} is damaged (truncated or corrupted): restore from another backup"
    try:
        listing = tools.run_tool(ToolCall("pg_restore", ["--list", path], hint=hint)).stdout
        tools.run_tool(ToolCall("pg_restore", ["--file", "/dev/null", path], hint=hint))
    except ToolError as exc:  # pg_restore's own "could not open ...: Permission denied"
        failure = classified(exc, f"pg_restore cannot read backup {path}")
        raise failure or BackupError(f"backup {path} cannot be read:\n{exc.message}",
                                     hint) from exc
    toc = _exact_schemas(tools, path, parse_toc(listing))
    if not toc:
        raise BackupError(f"backup {path} lists no objects", hint)
    return Archive(path, fmt, size, digest.hexdigest(), toc)


def _starts_with(path: Path, magic: bytes) -> bool:
    with path.open("rb") as fh:
        return fh.read(len(magic)) == magic


_PLAIN_ITEM = re.compile(
    r"^-- (?:Data for )?Name: (.*?); Type: (.*?); Schema: (.*?); Owner: ?(.*?)\s*$")


def _plain_toc(path: Path) -> tuple[TocEntry, ...]:
    """The items of a plain SQL dump, from the comment pg_dump writes above each one."""
    entries: list[TocEntry] = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            match = _PLAIN_ITEM.match(line) if line.startswith("-- ") else None
            if match:
                name, desc, schema, owner = match.groups()
                entries.append(TocEntry(len(entries) + 1, desc, schema, name, owner))
    return tuple(entries)


def _check_plain(path: Path) -> None:
    """A plain SQL dump is complete only if it ends with pg_dump's closing comment."""
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - 4096))
        tail = fh.read()
    if b"-- PostgreSQL database dump complete" not in tail:
        raise BackupError(
            f"backup {path} is neither a pg_dump archive nor a complete plain SQL dump "
            "(no PGDMP header, no closing 'dump complete' comment)",
            "the file is truncated or corrupted: restore from another backup",
        )
