"""Which items of an archive belong to which table, read from its schema-only SQL script.

`pg_restore -l` prints an item as "<desc> <schema> <name> <owner>" with names unquoted,
so "CONSTRAINT my schema my table my_pkey" cannot be split into schema, table and
constraint. Two other views of the same archive can: `pg_restore -l --schema S` lists
exactly the items in schema S (so the rest of the line after "S " is the name), and the
script pg_restore writes names each item in a comment as the listing does, with its
table as quoted identifiers in the statement under it. Items are matched by (desc,
schema, name) from those, never by splitting at a space.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

Table = tuple[str, str]  # (schema, table)

_IDENT = r'(?:"(?:[^"]|"")+"|[\w$]+)'
_QUALIFIED = rf"({_IDENT})\.({_IDENT})"
_HEADER = re.compile(r"^-- Name: (.*?); Type: (.*?); Schema: (.*?); Owner:", re.M)
_TARGET = re.compile(rf"(?:\bON|ALTER TABLE|OWNED BY)\s+(?:ONLY\s+)?{_QUALIFIED}")
_ADD_CONSTRAINT = re.compile(rf"ADD CONSTRAINT ({_IDENT}) (?:PRIMARY KEY|UNIQUE|EXCLUDE)")
_ATTACH = re.compile(rf"^ALTER (TABLE|INDEX) (?:ONLY )?{_QUALIFIED} ATTACH PARTITION "
                     rf"{_QUALIFIED}", re.M)


def unquote(ident: str) -> str:
    """An identifier as written by pg_dump, without its quotes."""
    return ident[1:-1].replace('""', '"') if ident.startswith('"') else ident


def clean(name: str) -> str:
    """A name as pg_restore prints it in a listing or a comment (its sanitize_line)."""
    return name.replace("\n", " ").replace("\r", " ")


def listed(schema: str, name: str) -> str:
    """Schema and name as a `pg_restore -l` line prints them."""
    return clean(f"{schema} {name}")


@dataclass
class TableItems:
    """The tables of an archive's items, and the partitions of its partitioned tables."""

    # (desc, schema, name) as printed -> (schema, table)
    owner: dict[tuple[str, str, str], Table] = field(default_factory=dict)
    partitions: dict[Table, set[Table]] = field(default_factory=dict)

    def table_of(self, desc: str, schema: str, name: str) -> Table | None:
        """The table an item belongs to; None for items of no table (schemas, types...)."""
        return self.owner.get((desc, schema, name))

    def schemas_of(self, tables: set[Table]) -> set[str]:
        """The schemas that hold `tables` or any of their items."""
        return {s for s, _ in tables} | {
            schema for (_, schema, _), table in self.owner.items() if table in tables}

    def with_partitions(self, tables: Iterable[Table]) -> set[Table]:
        """`tables` and, for a partitioned one, every partition beneath it."""
        found: set[Table] = set()
        pending = list(tables)
        while pending:
            table = pending.pop()
            if table not in found:
                found.add(table)
                pending += self.partitions.get(table, ())
        return found


def read(script: str) -> TableItems:
    """The table of each item in a schema-only SQL script: indexes, constraints, triggers,
    defaults, owned sequences (with their SEQUENCE SET) and partition attachments, which
    belong to the partitioned table (and index) they attach to."""
    items = TableItems()
    index_table: dict[Table, Table] = {}
    index_attaches: list[tuple[tuple[str, str, str], Table]] = []
    headers = list(_HEADER.finditer(script))
    for header, following in zip(headers, [*headers[1:], None], strict=True):
        name, desc, schema = header.groups()
        body = script[header.end():following.start() if following else len(script)]
        key = (desc, schema, name)
        attach = _ATTACH.search(body) if desc.endswith(" ATTACH") else None
        if attach and attach.group(1) == "INDEX":
            index_attaches.append((key, (clean(unquote(attach.group(2))),
                                         clean(unquote(attach.group(3))))))
        elif attach:
            parent = (unquote(attach.group(2)), unquote(attach.group(3)))
            items.partitions.setdefault(parent, set()).add(
                (unquote(attach.group(4)), unquote(attach.group(5))))
            items.owner[key] = parent
        elif target := _TARGET.search(body):
            table = (unquote(target.group(1)), unquote(target.group(2)))
            items.owner[key] = table
            if desc == "INDEX":
                index_table[(schema, name)] = table
            elif desc == "CONSTRAINT" and (added := _ADD_CONSTRAINT.search(body)):
                index_table[(schema, clean(unquote(added.group(1))))] = table  # its index
            if desc in ("SEQUENCE", "SEQUENCE OWNED BY"):  # identity or serial: its
                for item in ("SEQUENCE", "SEQUENCE SET"):  # sequence and value come along
                    items.owner[(item, schema, name)] = table
    for key, index in index_attaches:
        if index in index_table:
            items.owner[key] = index_table[index]
    return items
