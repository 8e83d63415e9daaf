"""Objects beside tables that a restore must bring back as they were: functions and
procedures, view definitions, user-defined types (enums, domains, composites) and
triggers, each compared by the definition the server prints for it. A domain's NOT NULL
is its typnotnull (a constraint row only from PostgreSQL 17: the same text on every major)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from pgvdrill.verify.session import USER_SCHEMA, not_extension_member

QUERIES = {
    "function": f"""
        SELECT format('%I.%I(%s)', n.nspname, p.proname,
                      pg_get_function_identity_arguments(p.oid)),
               NULL::text, pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prokind IN ('f', 'p') AND {USER_SCHEMA}
          AND {not_extension_member("pg_proc", "p.oid")}""",
    "view": f"""
        SELECT format('%I.%I', n.nspname, c.relname), format('%I.%I', n.nspname, c.relname),
               pg_get_viewdef(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND {USER_SCHEMA}
          AND {not_extension_member("pg_class", "c.oid")}""",
    "type": f"""
        SELECT format('%I.%I', n.nspname, t.typname), NULL::text,
               CASE t.typtype
                 WHEN 'e' THEN 'enum (' || (SELECT string_agg(quote_literal(e.enumlabel), ', '
                                             ORDER BY e.enumsortorder)
                                     FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
                 WHEN 'd' THEN 'domain over ' || format_type(t.typbasetype, t.typtypmod)
                      || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
                      || coalesce((SELECT ' ' || string_agg(pg_get_constraintdef(k.oid), ' '
                                                            ORDER BY k.conname)
                                   FROM pg_constraint k WHERE k.contypid = t.oid
                                     AND k.contype <> 'n'), '')
                 ELSE 'composite (' || (SELECT string_agg(format('%I %s', a.attname,
                                               format_type(a.atttypid, a.atttypmod)), ', '
                                               ORDER BY a.attnum)
                                        FROM pg_attribute a WHERE a.attrelid = t.typrelid
                                          AND a.attnum > 0 AND NOT a.attisdropped) || ')'
               END
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND
               (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
          AND {USER_SCHEMA}
          AND {not_extension_member("pg_type", "t.oid")}""",
    "trigger": f"""
        SELECT format('%I on %I.%I', g.tgname, n.nspname, c.relname),
               format('%I.%I', n.nspname, c.relname), pg_get_triggerdef(g.oid)
        FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT g.tgisinternal AND {USER_SCHEMA}""",
}


@dataclass(frozen=True)
class Definition:
    """One object as the server prints it: `table` is the table (or view) it belongs to,
    None for those of no table (functions, types)."""

    kind: str
    key: str
    table: str | None
    text: str

    @property
    def label(self) -> str:
        return f"{self.kind} {self.key}"


def read_objects(conn: psycopg.Connection) -> dict[str, Definition]:
    """Functions, procedures, views, types and triggers, by label ("view public.v")."""
    found = {}
    for kind, query in QUERIES.items():
        for key, table, text in conn.execute(query):
            definition = Definition(kind, key, table, text)
            found[definition.label] = definition
    return found


def restricted(objects: dict[str, Definition], tables: set[str]) -> dict[str, Definition]:
    """The objects of `tables` (a partial restore brings no function or type)."""
    return {k: o for k, o in objects.items() if o.table in tables}


def compare_objects(source: dict[str, Definition], target: dict[str, Definition], *,
                    partial: bool) -> list[str]:
    """Objects missing, extra (unless `partial`) or defined otherwise in the target."""
    problems = [f"{o.label} is missing in the target"
                for k, o in sorted(source.items()) if k not in target]
    if not partial:
        problems += [f"{o.label} exists only in the target"
                     for k, o in sorted(target.items()) if k not in source]
    problems += [f"{o.label} differs: source {o.text.strip()!r}, target "
                 f"{target[k].text.strip()!r}"
                 for k, o in sorted(source.items()) if k in target and target[k].text != o.text]
    return problems
