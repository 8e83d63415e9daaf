"""Owners and access privileges of tables, sequences and schemas, and their comparison:
a restore without the source's roles, or with --no-owner/--no-acl, changes who owns and
who may read the data.

Privileges are the grants `aclexplode` lists; an object with no ACL of its own has its
owner's default grants. Grants are compared relative to the owner (the owner's own
grants, and grants it made, match across a change of owner, which is reported once).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import psycopg

_GRANTS = """
    ARRAY(SELECT ARRAY[CASE x.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
                       x.privilege_type, pg_get_userbyid(x.grantor), x.is_grantable::text]
          FROM aclexplode(coalesce({acl}, acldefault({kind}, {owner}))) x ORDER BY 1)
"""
_RELKIND = "(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::\"char\""
_READ = f"""
    SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END,
           format('%I.%I', n.nspname, c.relname), n.nspname, pg_get_userbyid(c.relowner),
           {_GRANTS.format(acl="c.relacl", owner="c.relowner", kind=_RELKIND)}
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'm', 'v', 'f', 'S')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
    UNION ALL
    SELECT 'schema', format('%I', n.nspname), n.nspname, pg_get_userbyid(n.nspowner),
           {_GRANTS.format(acl="n.nspacl", owner="n.nspowner", kind="'n'")}
    FROM pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
      AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                      AND d.objid = n.oid AND d.deptype = 'e')
"""

_TYPES = """
    SELECT CASE k WHEN 'r' THEN 'table' WHEN 's' THEN 'sequence' ELSE 'schema' END,
           array_agg(DISTINCT x.privilege_type)
    FROM unnest(ARRAY['r', 's', 'n']::"char"[]) k,
         aclexplode(acldefault(k, 10::oid)) x GROUP BY k
"""


class Grant(NamedTuple):
    grantee: str  # a role name or PUBLIC
    privilege: str  # SELECT, INSERT, USAGE, ...
    grantor: str
    grantable: bool

    def describe(self, owner: str) -> str:
        text = f"{self.privilege} to {self.grantee}"
        if self.grantable:
            text += " with grant option"
        return text if self.grantor == owner else f"{text} (granted by {self.grantor})"


@dataclass(frozen=True)
class Privileges:
    kind: str  # table (any relation but a sequence), sequence or schema
    name: str  # schema-qualified as format('%I.%I') prints it; a schema's own name
    schema: str  # the schema, unquoted
    owner: str
    grants: tuple[Grant, ...]

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"

    def relative(self, known: Collection[str] | None = None
                 ) -> dict[tuple[str, str, str, bool], Grant]:
        """Grants keyed with the owner's name replaced, so that owners compare equal; only
        those of privileges in `known` (None: all)."""
        def role(name: str) -> str:
            return "(owner)" if name == self.owner else name
        return {(role(g.grantee), g.privilege, role(g.grantor), g.grantable): g
                for g in self.grants if known is None or g.privilege in known}


def read_privileges(conn: psycopg.Connection) -> dict[str, Privileges]:
    """Owner and grants of every user table, sequence and schema, keyed by `label`."""
    found = [Privileges(kind, name, schema, owner,
                        tuple(Grant(e, p, g, b == "true") for e, p, g, b in grants))
             for kind, name, schema, owner, grants in conn.execute(_READ)]
    return {p.label: p for p in found}


def restricted(privileges: Mapping[str, Privileges], tables: Collection[str],
               sequences: Collection[str], schemas: Collection[str]) -> dict[str, Privileges]:
    """Only the privileges of these tables, sequences and (unquoted) schemas."""
    keep = {"table": tables, "sequence": sequences, "schema": schemas}
    return {k: p for k, p in privileges.items()
            if (p.schema if p.kind == "schema" else p.name) in keep[p.kind]}


def privilege_types(conn: psycopg.Connection) -> dict[str, frozenset[str]]:
    """The privileges the server knows, per kind of object (MAINTAIN on tables from
    PostgreSQL 17): those an owner holds by default."""
    return {kind: frozenset(str(p) for p in found) for kind, found in conn.execute(_TYPES)}


def compare_privileges(source: Mapping[str, Privileges], target: Mapping[str, Privileges],
                       known: Mapping[str, Collection[str]] | None = None) -> list[str]:
    """Owners and grants that differ, for objects both sides have (presence is the schema
    comparison's business); `known`: per kind, the privileges both servers know (a
    privilege only one server's version has is not compared: `versions` states it)."""
    problems = []
    for label in sorted(source.keys() & target.keys()):
        src, tgt = source[label], target[label]
        if src.owner != tgt.owner:
            problems.append(f"{label} is owned by {tgt.owner} in the target, {src.owner} in "
                            "the source")
        kinds = None if known is None else known.get(src.kind)
        s_grants, t_grants = src.relative(kinds), tgt.relative(kinds)
        only = [f"granted only in the {side}: "
                + ", ".join(sorted(grants[k].describe(p.owner) for k in keys))
                for side, grants, p, keys in (
                    ("source", s_grants, src, s_grants.keys() - t_grants.keys()),
                    ("target", t_grants, tgt, t_grants.keys() - s_grants.keys())) if keys]
        if only:
            problems.append(f"{label} privileges differ: {'; '.join(only)}")
    return problems


def versions(source: Mapping[str, frozenset[str]], target: Mapping[str, frozenset[str]],
             servers: tuple[str, str]) -> list[str]:
    """What differs in the privileges the two servers know (not compared), said."""
    stated = []
    for kind in sorted(source.keys() & target.keys()):
        for side, only, other in (("source", source[kind] - target[kind], 1),
                                  ("target", target[kind] - source[kind], 0)):
            if only:
                stated.append(
                    f"privilege {', '.join(sorted(only))} on {kind}s exists only in the "
                    f"{side}'s PostgreSQL {servers[1 - other]}, not in "
                    f"{servers[other]}: not compared")
    return stated
