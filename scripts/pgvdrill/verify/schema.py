"""Schema facts of one database (tables, columns, indexes, constraints, sequences,
extensions, owners and privileges) read from the catalog, and their comparison.

Facts are keyed by schema-qualified names as `format('%I.%I')` prints them
(`public.items`, `"My Schema"."T"`). Objects belonging to extensions and system
schemas are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import psycopg

from pgvdrill.capabilities import version_key
from pgvdrill.verify import privileges as privs
from pgvdrill.verify.objects import Definition, compare_objects, read_objects, restricted
from pgvdrill.verify.session import USER_SCHEMA, ident, not_extension_member

K = TypeVar("K")
T = TypeVar("T")

# Column types whose values are hashed in their binary form (bit-exact, -0.0 != 0.0).
BINARY_TYPES = ("vector", "halfvec", "sparsevec")

NOT_EXTENSION_MEMBER = not_extension_member("pg_class", "c.oid")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool
    default: str | None
    identity: str
    generated: str
    send: tuple[str, str] | None  # binary send function (schema, name) for BINARY_TYPES

    def describe(self) -> str:
        text = self.type + (" NOT NULL" if self.not_null else "")
        if self.default is not None:
            text += f" DEFAULT {self.default}"
        if self.identity:
            text += f" IDENTITY({self.identity})"
        if self.generated:
            text += f" GENERATED({self.generated})"
        return text


@dataclass(frozen=True)
class Table:
    key: str  # e.g. public.items
    schema: str
    name: str
    kind: str  # pg_class.relkind
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]

    @property
    def ident(self) -> psycopg.sql.Identifier:
        return ident(self.schema, self.name)


@dataclass(frozen=True)
class Index:
    key: str
    table: str
    method: str
    definition: str  # pg_get_indexdef with the table's schema qualifier removed
    valid: bool
    ready: bool


@dataclass(frozen=True)
class Constraint:
    table: str
    name: str
    definition: str
    not_null: bool = False  # a NOT NULL constraint (catalogued as one from PostgreSQL 18)


@dataclass(frozen=True)
class Sequence:
    key: str
    owner: str | None  # owning table key (serial/identity), if any
    definition: str
    last_value: int
    is_called: bool
    increment: int = 1
    cycles: bool = False

    def position(self) -> int:
        """How far the sequence has advanced, in its own direction (a sequence not yet
        called stands one step before its last_value)."""
        value = self.last_value - (0 if self.is_called else self.increment)
        return value if self.increment > 0 else -value


@dataclass(frozen=True)
class SequenceWindow:
    """Sequence states read from the source before and after the moment at which a backup
    fixed its own copy of them. Sequences are not transactional: pg_dump reads them when it
    dumps them, later than its snapshot, and WAL carries a value logged ahead; so a
    restored value is exact when it lies between these two reads (both ends included),
    and anything outside is a real difference."""

    before: Mapping[str, Sequence]
    after: Mapping[str, Sequence]


@dataclass(frozen=True)
class SchemaFacts:
    tables: dict[str, Table]
    indexes: dict[str, Index]
    constraints: dict[tuple[str, str], Constraint]
    sequences: dict[str, Sequence]
    extensions: dict[str, str]  # name -> version
    privileges: dict[str, privs.Privileges] = field(default_factory=dict)  # by label
    objects: dict[str, Definition] = field(default_factory=dict)  # functions, views, ...
    server: str = "?"  # server_version of the database's server
    privilege_types: dict[str, frozenset[str]] = field(default_factory=dict)  # by kind

    def restricted(self, scope: Collection[tuple[str, str]] | None) -> SchemaFacts:
        """Only the tables in `scope` ((schema, name) pairs) and what belongs to them."""
        if scope is None:
            return self
        tables = {k: t for k, t in self.tables.items() if (t.schema, t.name) in scope}
        sequences = {k: s for k, s in self.sequences.items() if s.owner in tables}
        return replace(
            self,
            tables=tables,
            indexes={k: i for k, i in self.indexes.items() if i.table in tables},
            constraints={k: c for k, c in self.constraints.items() if c.table in tables},
            sequences=sequences,
            privileges=privs.restricted(self.privileges, tables, sequences,
                                        {t.schema for t in tables.values()}),
            objects=restricted(self.objects, set(tables)),
        )


def read_schema(conn: psycopg.Connection) -> SchemaFacts:
    """The schema facts of the connected database (run inside `session.reading`)."""
    columns: dict[int, list[Column]] = {}
    for row in conn.execute(
        """
        SELECT a.attrelid::int8, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid), a.attidentity::text,
               a.attgenerated::text, bt.typname::text, sn.nspname, sp.proname
        FROM pg_attribute a
        JOIN pg_type t ON t.oid = a.atttypid
        JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
        JOIN pg_proc sp ON sp.oid = bt.typsend
        JOIN pg_namespace sn ON sn.oid = sp.pronamespace
        LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
        WHERE a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attrelid, a.attnum
        """
    ):
        oid, name, typ, notnull, default, identity, generated, base, snsp, sname = row
        send = (snsp, sname) if base in BINARY_TYPES else None
        columns.setdefault(oid, []).append(
            Column(name, typ, notnull, default, identity, generated, send))
    primary: dict[int, tuple[str, ...]] = {}
    for oid, names in conn.execute(
        """
        SELECT c.conrelid::int8, array_agg(a.attname ORDER BY k.ord)
        FROM pg_constraint c CROSS JOIN unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
        WHERE c.contype = 'p' GROUP BY c.conrelid
        """
    ):
        primary[oid] = tuple(names)

    tables: dict[str, Table] = {}
    by_oid: dict[int, str] = {}
    for oid, schema, name, key, kind in conn.execute(
        f"""
        SELECT c.oid::int8, n.nspname, c.relname, format('%I.%I', n.nspname, c.relname),
               c.relkind::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'm', 'v', 'f') AND {USER_SCHEMA}
          AND {NOT_EXTENSION_MEMBER}
        """
    ):
        by_oid[oid] = key
        tables[key] = Table(key, schema, name, kind, tuple(columns.get(oid, ())),
                            primary.get(oid, ()))

    indexes: dict[str, Index] = {}
    for table_oid, key, method, definition, valid, ready in conn.execute(
        """
        SELECT i.indrelid::int8, format('%I.%I', n.nspname, ic.relname), am.amname::text,
               replace(pg_get_indexdef(i.indexrelid),
                       format(' %I.%I USING ', tn.nspname, tc.relname),
                       format(' %I USING ', tc.relname)),
               i.indisvalid, i.indisready
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = ic.relnamespace
        JOIN pg_class tc ON tc.oid = i.indrelid
        JOIN pg_namespace tn ON tn.oid = tc.relnamespace
        JOIN pg_am am ON am.oid = ic.relam
        """
    ):
        if table_oid in by_oid:
            indexes[key] = Index(key, by_oid[table_oid], method, definition, valid, ready)

    constraints: dict[tuple[str, str], Constraint] = {}
    for table_oid, name, definition, not_null in conn.execute(
        "SELECT conrelid::int8, conname, pg_get_constraintdef(oid), contype = 'n'"
        " FROM pg_constraint WHERE conrelid <> 0"
    ):
        if table_oid in by_oid:
            table = by_oid[table_oid]
            constraints[(table, name)] = Constraint(table, name, definition, not_null)

    return SchemaFacts(tables, indexes, constraints, _read_sequences(conn, by_oid),
                       dict(conn.execute("SELECT extname::text, extversion FROM pg_extension")),
                       privs.read_privileges(conn), read_objects(conn),
                       str(conn.execute("SHOW server_version").fetchone()[0]).split()[0],  # type: ignore[index]
                       privs.privilege_types(conn))


def read_sequences(conn: psycopg.Connection) -> dict[str, Sequence]:
    """The user sequences of the connected database and their states now (inside
    `session.reading`; their values are not held by its snapshot)."""
    return _read_sequences(conn, {})


def _read_sequences(conn: psycopg.Connection, tables: dict[int, str]) -> dict[str, Sequence]:
    rows = conn.execute(
        f"""
        SELECT n.nspname, c.relname, format('%I.%I', n.nspname, c.relname),
               (SELECT d.refobjid::int8 FROM pg_depend d
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                LIMIT 1),
               format('%s START %s INCREMENT %s MIN %s MAX %s CACHE %s%s',
                      format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin,
                      s.seqmax, s.seqcache, CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END),
               s.seqincrement, s.seqcycle
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_sequence s ON s.seqrelid = c.oid
        WHERE c.relkind = 'S' AND {USER_SCHEMA} AND {NOT_EXTENSION_MEMBER}
        """
    ).fetchall()
    sequences = {}
    for schema, name, key, owner, definition, increment, cycles in rows:
        state = conn.execute(
            psycopg.sql.SQL("SELECT last_value, is_called FROM {}").format(ident(schema, name))
        ).fetchone()
        assert state is not None
        sequences[key] = Sequence(key, tables.get(owner), definition, state[0], state[1],
                                  increment, cycles)
    return sequences


def compare_schema(
    source: SchemaFacts, target: SchemaFacts, *, partial: bool = False,
    sequence_slack: int | None = 0, sequence_window: SequenceWindow | None = None
) -> list[str]:
    """Differences in tables, columns, indexes, constraints, sequences, functions, views,
    types, triggers, owners and grants.

    `partial`: the target may hold more than the (restricted) source; only what the
    source has is required. `sequence_slack`: how far a target sequence may run ahead
    of the source (a physical copy replays the value WAL-logged up to 32 calls ahead);
    None compares no sequence values (a schema-only restore leaves them at their start).
    `sequence_window`: a target sequence lies between the source's reads before and after
    the backup took it (plus `sequence_slack` steps) instead of equalling `source`'s.
    """
    problems: list[str] = []
    problems += _presence(source.tables, target.tables, partial, lambda k, _: f"table {k}")
    for key in sorted(source.tables.keys() & target.tables.keys()):
        problems += _columns(source.tables[key], target.tables[key])
    problems += _presence(source.indexes, target.indexes, partial,
                          lambda k, i: f"index {k} on {i.table}")
    problems += _definitions(source.indexes, target.indexes,
                             lambda k, i: f"index {k} on {i.table}")
    constraints = _comparable_constraints(source, target)
    problems += _presence(*constraints, partial,
                          lambda _, c: f"constraint {c.name} on {c.table}")
    problems += _definitions(*constraints,
                             lambda _, c: f"constraint {c.name} on {c.table}")
    problems += _presence(source.sequences, target.sequences, partial,
                          lambda k, _: f"sequence {k}")
    for name in sorted(source.sequences.keys() & target.sequences.keys()):
        problems += _sequence(source.sequences[name], target.sequences[name], sequence_slack,
                              sequence_window)
    problems += compare_objects(source.objects, target.objects, partial=partial)
    known = {kind: source.privilege_types[kind] & target.privilege_types[kind]
             for kind in source.privilege_types.keys() & target.privilege_types.keys()}
    return problems + privs.compare_privileges(source.privileges, target.privileges, known)


def versions(source: SchemaFacts, target: SchemaFacts) -> list[str]:
    """What differs between the two servers' versions and so was not compared: said, never
    silently dropped (a restore into another major or pgvector is a choice to state)."""
    stated = []
    if source.server != target.server:
        stated.append(f"the source ran PostgreSQL {source.server}, the target "
                      f"{target.server}")
    stated += privs.versions(source.privilege_types, target.privilege_types,
                             (source.server, target.server))
    if _catalogues_not_null(source) != _catalogues_not_null(target):
        stated.append("NOT NULL constraints compared as column nullability (PostgreSQL "
                      f"before 18 records them in no catalog of constraints): source "
                      f"{source.server}, target {target.server}")
    return stated


def _catalogues_not_null(facts: SchemaFacts) -> bool:
    """Whether the facts' server records NOT NULL as constraints (PostgreSQL 18 and later;
    an unknown server is taken to, so nothing is dropped from the comparison)."""
    major = facts.server.split(".")[0]
    return not major.isdigit() or int(major) >= 18


def _comparable_constraints(source: SchemaFacts, target: SchemaFacts
                            ) -> tuple[dict[tuple[str, str], Constraint],
                                       dict[tuple[str, str], Constraint]]:
    """The two sides' constraints, without NOT NULL ones when only one side's server records
    them (compared by each column's nullability instead: `_columns`)."""
    if _catalogues_not_null(source) == _catalogues_not_null(target):
        return source.constraints, target.constraints
    return ({k: c for k, c in source.constraints.items() if not c.not_null},
            {k: c for k, c in target.constraints.items() if not c.not_null})


def extension_versions(source: SchemaFacts, target: SchemaFacts) -> list[str]:
    """Extensions at another version in the target, said (not a failure: a target's
    pgvector is the one its server offers; the restore checks what the dump needs)."""
    stated = []
    for name, version in sorted(source.extensions.items()):
        there = target.extensions.get(name)
        if there is not None and there != version:
            older = "older" if version_key(there) < version_key(version) else "newer"
            stated.append(f"extension {name} is {there} in the target ({older}), {version} "
                          "in the source")
    return stated


def compare_extensions(source: SchemaFacts, target: SchemaFacts, *, partial: bool = False
                       ) -> list[str]:
    """Extensions missing or extra (unless `partial`) in the target (another version is
    stated: `extension_versions`)."""
    problems = [f"extension {name} {version} is missing in the target"
                for name, version in sorted(source.extensions.items())
                if name not in target.extensions]
    if not partial:
        problems += [f"extension {name} {version} exists only in the target"
                     for name, version in sorted(target.extensions.items())
                     if name not in source.extensions]
    return problems


def _presence(source: Mapping[K, T], target: Mapping[K, T], partial: bool,
                    label: Callable[[K, T], str]) -> list[str]:
    problems = [f"{label(k, o)} is missing in the target"
                for k, o in sorted(source.items(), key=_by_key) if k not in target]
    if not partial:
        problems += [f"{label(k, o)} exists only in the target"
                     for k, o in sorted(target.items(), key=_by_key) if k not in source]
    return problems


def _by_key(item: tuple[object, object]) -> str:
    return str(item[0])


def _columns(source: Table, target: Table) -> list[str]:
    if source.kind != target.kind:
        return [f"table {source.key} is of kind {source.kind!r} in the source, "
                f"{target.kind!r} in the target"]
    problems = []
    src = {c.name: c for c in source.columns}
    tgt = {c.name: c for c in target.columns}
    for name in src.keys() - tgt.keys():
        problems.append(f"column {name} of table {source.key} is missing in the target")
    for name in tgt.keys() - src.keys():
        problems.append(f"column {name} of table {source.key} exists only in the target")
    for name in src.keys() & tgt.keys():
        if src[name].describe() != tgt[name].describe():
            problems.append(f"column {name} of table {source.key} differs: source "
                            f"{src[name].describe()}, target {tgt[name].describe()}")
    if not problems and [c.name for c in source.columns] != [c.name for c in target.columns]:
        problems.append(f"columns of table {source.key} are in another order in the target")
    return sorted(problems)


Defined = TypeVar("Defined", Index, Constraint)


def _definitions(source: Mapping[Any, Defined], target: Mapping[Any, Defined],
                 label: Callable[[Any, Defined], str]) -> list[str]:
    """Objects on both sides whose `definition` differs, each named by `label`."""
    return [f'{label(key, source[key])} differs: source "{source[key].definition}", '
            f'target "{target[key].definition}"'
            for key in sorted(source.keys() & target.keys())
            if source[key].definition != target[key].definition]


def _sequence(source: Sequence, target: Sequence, slack: int | None,
              window: SequenceWindow | None = None) -> list[str]:
    if source.definition != target.definition:
        return [f"sequence {source.key} differs: source {source.definition}, "
                f"target {target.definition}"]
    if slack is None:
        return []
    if window is not None and source.key in window.before and source.key in window.after:
        return _in_window(window.before[source.key], window.after[source.key], target, slack)
    s = (source.last_value, source.is_called)
    t = (target.last_value, target.is_called)
    ahead = 0 <= target.last_value - source.last_value <= slack and target.is_called
    if s != t and not ahead:
        return [f"sequence {source.key} last value differs: source {_state(source)}, "
                f"target {_state(target)}"]
    return []


def _in_window(before: Sequence, after: Sequence, target: Sequence, slack: int) -> list[str]:
    """`target` lies from `before` to `slack` steps past `after` (a cycling sequence that
    wrapped in between: outside the part it skipped)."""
    low, high, at = before.position(), after.position() + slack * abs(target.increment), \
        target.position()
    inside = low <= at <= high if low <= high or not target.cycles else \
        at >= low or at <= high
    if inside:
        return []
    ahead = f" (+{slack} steps logged ahead)" if slack else ""
    return [f"sequence {target.key} last value is {_state(target)} in the target, outside "
            f"what the source held while the backup took it: from {_state(before)} (read "
            f"before) to {_state(after)}{ahead} (read after)"]


def _state(seq: Sequence) -> str:
    return f"{seq.last_value}" + ("" if seq.is_called else " (not yet called)")
