"""Property-based drills: restore(backup(db)) equals db, bit for bit, for generated databases.

Hypothesis generates small databases at pgvector's edges (vector, halfvec and sparsevec
columns of 1 to 16000 dimensions, sparsevec up to 10^9 dimensions, NULLs, -0.0, subnormal
float32 and float16 values, the largest finite magnitudes, rows TOASTed out of line, quoted
and non-ASCII schema/table/column names, several schemas, hash-partitioned tables). Each
example is a database of one long-lived source cluster, backed up with the library's own
steps (pg_dump custom/directory/plain and pg_restore/psql; pg_basebackup plain and tar into
a new cluster) and compared with the original: every vector's `*_send` bytes, the
generated values themselves, and pgvdrill's `verify`.

A state machine writes vectors into an archiving primary between named restore points and
recovers a few of those points (PITR) from one base backup, comparing with its model.

`--drill-hypothesis quick` (the default run) or `thorough` sets how many examples; shrunk
failures stay in .hypothesis/examples/property-<mode> and replay first on the next run.
"""

from __future__ import annotations

import itertools
import shutil
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)
from psycopg import sql

from fixtures.options import drill_options
from pgvdrill import osuser
from pgvdrill.cluster import Backend, Cluster
from pgvdrill.drill.logical import drop_database, restore_dump_and_verify
from pgvdrill.logical.dump import DUMP_SETTINGS, dump
from pgvdrill.logical.pairing import user_tables
from pgvdrill.logical.restore import (
    RESTORE_SETTINGS,
    RestoreSetting,
    create_database,
    restore,
)
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS
from pgvdrill.physical.backup import base_backup
from pgvdrill.physical.restore import restore_base_backup
from pgvdrill.verify import snapshot, verify
from pgvdrill.wal.archiving import enable_archiving, make_archive_dir, switch_and_wait
from pgvdrill.wal.pitr import BackupPoint, Target, recover

# --- how many examples: the hypothesis profiles ------------------------------------------


@dataclass(frozen=True)
class Budget:
    """Examples per mode: logical dumps, physical base backups, state machine runs x steps,
    restore points recovered per run."""

    logical: int
    physical: int
    runs: int
    steps: int
    pitr_points: int


BUDGETS = {"quick": Budget(logical=5, physical=2, runs=2, steps=8, pitr_points=2),
           "thorough": Budget(logical=100, physical=20, runs=20, steps=30, pitr_points=3)}
for _name, _budget in BUDGETS.items():
    settings.register_profile(  # quick (every CI run) draws the same examples each time
        _name, max_examples=_budget.logical, stateful_step_count=_budget.steps, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=True, derandomize=_name == "quick")


@dataclass(frozen=True)
class Profile:
    name: str
    budget: Budget
    examples_dir: Path

    def settings(self, mode: str, examples: int) -> settings:
        """The profile's settings with `examples` examples; each mode keeps its own example
        database, so that a failure shrunk in one mode replays in that mode."""
        return settings(settings.get_profile(self.name), max_examples=examples,
                        database=DirectoryBasedExampleDatabase(
                            self.examples_dir / f"property-{mode}"))


@pytest.fixture(scope="module")
def profile(pytestconfig: pytest.Config) -> Profile:
    name = drill_options(pytestconfig).hypothesis
    if name not in BUDGETS:
        raise pytest.UsageError(f"--drill-hypothesis takes {' or '.join(BUDGETS)}, not {name!r}")
    return Profile(name, BUDGETS[name], pytestconfig.rootpath / ".hypothesis" / "examples")


# --- generated values --------------------------------------------------------------------

Kind = Literal["vector", "halfvec", "sparsevec"]
F32 = np.finfo(np.float32)
F16 = np.finfo(np.float16)
F32_EDGES = [0.0, -0.0, float(F32.max), -float(F32.max), float(F32.tiny), -float(F32.tiny),
             2.0**-149, -(2.0**-149), float(F32.tiny) - 2.0**-149, 1.0, -1.0]
F16_EDGES = [0.0, -0.0, float(F16.max), -float(F16.max), float(F16.tiny), -float(F16.tiny),
             2.0**-24, -(2.0**-24), float(F16.tiny) - 2.0**-24, 1.0]
# tail scales: ordinary, subnormal, near the largest finite value
SCALES = {"vector": (1.0, 1e-40, 3e38), "halfvec": (1.0, 3e-5, 6e4)}
DENSE_DIMS = [1, 2, 3, 5, 16, 700, 2100, 4000, 16000]  # 700+: TOASTed (vector(2100) > 8 kB)
SPARSE_DIMS = [1, 2, 1000, 16000, 10**9]
MAX_DIM = 16000
MAX_NNZ = 16000


def f32(width: Literal[16, 32]) -> st.SearchStrategy[float]:
    edges = F16_EDGES if width == 16 else F32_EDGES
    return st.one_of(st.sampled_from(edges),
                     st.floats(width=width, allow_nan=False, allow_infinity=False))


@dataclass(frozen=True)
class Dense:
    """A vector or halfvec value: `head` as given, the rest from a seeded generator."""

    dim: int
    head: tuple[float, ...]
    seed: int
    scale: float

    def array(self, kind: Kind) -> np.ndarray:
        dtype = np.float16 if kind == "halfvec" else np.float32
        rest = np.random.default_rng(self.seed).uniform(-1, 1, self.dim - len(self.head))
        return np.concatenate([np.array(self.head, dtype), (rest * self.scale).astype(dtype)])


@dataclass(frozen=True)
class Sparse:
    """A sparsevec value: `entries` (0-based index, value) as given, plus `extra` seeded
    non-zero entries (up to pgvector's 16000)."""

    dim: int
    entries: tuple[tuple[int, float], ...]
    extra: int = 0
    seed: int = 0

    def items(self) -> list[tuple[int, float]]:
        given_at = {i for i, _ in self.entries}
        rng = np.random.default_rng(self.seed)
        free = [i for i in range(min(self.dim, MAX_NNZ + len(given_at))) if i not in given_at]
        picked = rng.choice(free, size=min(self.extra, len(free)), replace=False)
        values = rng.uniform(0.5, 2, len(picked)).astype(np.float32)
        return sorted([*self.entries, *zip((int(i) for i in picked), map(float, values),
                                           strict=True)])


Value = Dense | Sparse | None


def text(kind: Kind, value: Dense | Sparse) -> str:
    """The value's text input form; float() of a float32/float16 round-trips exactly."""
    if isinstance(value, Sparse):
        body = ",".join(f"{i + 1}:{v!r}" for i, v in value.items())
        return f"{{{body}}}/{value.dim}"
    return "[" + ",".join(repr(float(x)) for x in value.array(kind)) + "]"


def send(kind: Kind, value: Dense | Sparse) -> bytes:
    """What `<kind>_send` must return for the value: pgvector's binary form."""
    if isinstance(value, Sparse):
        entries = [(i, v) for i, v in value.items() if v != 0]  # pgvector drops zeros
        return (struct.pack(">iii", value.dim, len(entries), 0)
                + np.array([i for i, _ in entries], ">i4").tobytes()
                + np.array([v for _, v in entries], ">f4").tobytes())
    array = value.array(kind)
    return struct.pack(">hh", value.dim, 0) + array.astype(">f2" if kind == "halfvec"
                                                            else ">f4").tobytes()


@st.composite
def dense(draw: st.DrawFn, kind: Kind, dim: int) -> Dense:
    """`dim` values of a vector or halfvec: all given when there are few, else a given head
    and a seeded tail at one of the scales."""
    values = f32(16 if kind == "halfvec" else 32)
    head = draw(st.lists(values, min_size=dim, max_size=dim) if dim <= 6
                else st.lists(values, max_size=6))
    return Dense(dim, tuple(head), draw(st.integers(0, 2**32 - 1)),
                 draw(st.sampled_from(SCALES[kind])))


@st.composite
def sparse(draw: st.DrawFn, dim: int) -> Sparse:
    indices = draw(st.lists(st.one_of(st.integers(0, dim - 1), st.just(dim - 1)),
                            max_size=min(dim, 6), unique=True))
    values = [draw(f32(32)) for _ in indices]
    extra = draw(st.sampled_from([0, 0, 0, 100, MAX_NNZ - len(indices)]))
    return Sparse(dim, tuple(zip(indices, values, strict=True)), extra,
                  draw(st.integers(0, 2**32 - 1)))


# --- generated databases -----------------------------------------------------------------

NAMES = ['Émbeddings "x"', "with space", "MixedCase", "UPPER", "ünïcödé", "日本語の表",
         "a.b", "x'y", "select", "trailing ", "emoji 🧭", "tab\there", "new\nline"]
identifiers = st.one_of(
    st.sampled_from(NAMES),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12),
).filter(lambda s: len(s.encode()) <= 40 and not s.lower().startswith("pg_")
         and s not in ("public", "information_schema", "id"))


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    dim: int
    typmod: bool  # declared as vector(dim), or as plain vector

    @property
    def type(self) -> sql.Composable:
        return sql.SQL(f"{self.kind}({self.dim})" if self.typmod else self.kind)


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    partitions: int  # 0: a plain table; else hash-partitioned on id into this many
    rows: tuple[tuple[Value, ...], ...]  # id = position + 1

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def partition_names(self) -> list[str]:
        return [f"{self.name} part {i}" for i in range(self.partitions)]


@dataclass(frozen=True)
class Database:
    tables: tuple[Table, ...]


@st.composite
def columns(draw: st.DrawFn) -> tuple[Column, ...]:
    names = draw(st.lists(identifiers, min_size=1, max_size=3, unique=True))
    made = []
    for name in names:
        kind: Kind = draw(st.sampled_from(["vector", "halfvec", "sparsevec"]))
        dims = SPARSE_DIMS if kind == "sparsevec" else DENSE_DIMS
        upper = 10**9 if kind == "sparsevec" else MAX_DIM
        dim = draw(st.one_of(st.sampled_from(dims), st.integers(1, 8), st.integers(1, upper)))
        made.append(Column(name, kind, dim, draw(st.booleans())))
    return tuple(made)


def cell(column: Column) -> st.SearchStrategy[Value]:
    values = sparse(column.dim) if column.kind == "sparsevec" else dense(column.kind, column.dim)
    return st.one_of(st.none(), values)


@st.composite
def tables(draw: st.DrawFn, schema: str, name: str) -> Table:
    cols = draw(columns())
    big = sum(c.dim for c in cols if c.kind != "sparsevec") > 1000
    rows = draw(st.lists(st.tuples(*(cell(c) for c in cols)), max_size=2 if big else 6))
    return Table(schema, name, cols, draw(st.sampled_from([0, 0, 2, 3])), tuple(rows))


@st.composite
def databases(draw: st.DrawFn) -> Database:
    schemas = draw(st.lists(st.one_of(st.just("public"), identifiers), min_size=1, max_size=3,
                            unique=True))
    made = []
    for schema in schemas:
        for name in draw(st.lists(identifiers, min_size=1, max_size=2, unique=True)):
            made.append(draw(tables(schema, name)))
    relations = [(t.schema, n) for t in made for n in (t.name, *t.partition_names)]
    assume(len(set(relations)) == len(relations))
    return Database(tuple(made))


def create(conn: psycopg.Connection[Any], db: Database) -> None:
    """Create `db`'s schemas, tables (and partitions) and rows, by COPY in text form."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    for schema in sorted({t.schema for t in db.tables} - {"public"}):
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    for table in db.tables:
        cols = sql.SQL("").join(sql.SQL(", {} {}").format(sql.Identifier(c.name), c.type)
                                for c in table.columns)
        partitioned = sql.SQL(" PARTITION BY HASH (id)") if table.partitions else sql.SQL("")
        conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY{}){}").format(
            table.ident, cols, partitioned))
        for i, partition in enumerate(table.partition_names):
            conn.execute(sql.SQL(
                "CREATE TABLE {} PARTITION OF {} FOR VALUES WITH (MODULUS {}, REMAINDER {})"
            ).format(sql.Identifier(table.schema, partition), table.ident,
                     sql.Literal(table.partitions), sql.Literal(i)))
        names = sql.SQL(", ").join(sql.Identifier(c) for c in ["id", *(c.name for c in
                                                                        table.columns)])
        with conn.cursor() as cur, cur.copy(
                sql.SQL("COPY {} ({}) FROM STDIN").format(table.ident, names)) as copy:
            for number, row in enumerate(table.rows, 1):
                copy.write_row([number, *(None if v is None else text(c.kind, v)
                                          for c, v in zip(table.columns, row, strict=True))])


def sent(conn: psycopg.Connection[Any], table: Table) -> list[tuple[object, ...]]:
    """Every row of `table` (partitions included): id and each vector's `*_send` bytes."""
    cols = sql.SQL("").join(sql.SQL(", {}({})").format(sql.Identifier(f"{c.kind}_send"),
                                                      sql.Identifier(c.name))
                            for c in table.columns)
    rows = conn.execute(sql.SQL("SELECT id{} FROM {} ORDER BY id").format(cols, table.ident))
    return [tuple(bytes(v) if isinstance(v, bytes | memoryview) else v for v in row)
            for row in rows]


def expected(table: Table) -> list[tuple[object, ...]]:
    return [(number, *(None if v is None else send(c.kind, v)
                       for c, v in zip(table.columns, row, strict=True)))
            for number, row in enumerate(table.rows, 1)]


def assert_bit_exact(db: Database, source: psycopg.Connection[Any],
                     restored: psycopg.Connection[Any], **verify_args: Any) -> None:
    """The source holds exactly the generated values; the restored copy exactly the
    source's rows (send bytes), and pgvdrill's verification finds no difference."""
    for table in db.tables:
        held = sent(source, table)
        assert held == expected(table), f"the source's {table.schema}.{table.name} differs " \
            "from the generated values (pgvector's input, not the backup)"
        assert sent(restored, table) == held, \
            f"restored {table.schema}.{table.name} differs from the source"
    verify(source, restored, **verify_args).raise_for_problems()


def features(db: Database) -> set[str]:
    """Which of the generator's edges `db` reaches (recorded per test: what was covered)."""
    found: set[str] = set()
    for table in db.tables:
        names = [table.schema, table.name, *(c.name for c in table.columns)]
        found |= {"non-ASCII name"} if any(not n.isascii() for n in names) else set()
        found |= {"partitioned"} if table.partitions and table.rows else set()
        for row in table.rows:
            for column, value in zip(table.columns, row, strict=True):
                if value is None:
                    found.add("NULL")
                    continue
                found.add(column.kind)
                if isinstance(value, Sparse):
                    found |= {"sparsevec 10^6+ dims"} if value.dim >= 10**6 else set()
                    found |= {"sparsevec 1000+ nnz"} if value.extra >= 1000 else set()
                    continue
                array = value.array(column.kind).astype(np.float32)
                info = np.finfo(np.float16 if column.kind == "halfvec" else np.float32)
                magnitude = np.abs(array)
                found |= {"TOASTed"} if value.dim >= 700 else set()
                found |= {"-0.0"} if np.any(np.signbit(array) & (array == 0)) else set()
                found |= {"subnormal"} if np.any((magnitude > 0) & (magnitude < info.tiny)) \
                    else set()
                found |= {"near max"} if np.any(magnitude >= info.max / 2) else set()
    return found


def record_features(record_property: Any, ran: list[Database]) -> None:
    record_property("hypothesis_examples", len(ran))
    counts = {f: sum(f in features(db) for db in ran)
              for f in sorted(set().union(*map(features, ran)))}
    record_property("hypothesis_features", counts)


# --- clusters ----------------------------------------------------------------------------

COUNTER = itertools.count(1)


@pytest.fixture(scope="module")
def property_source(backend: Backend) -> Iterator[Cluster]:
    with backend.cluster("property-source") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def property_target(backend: Backend) -> Iterator[Cluster]:
    with backend.cluster("property-target") as cluster:
        yield cluster


@contextmanager
def scratch(target: Cluster, dbname: str, outdir: Path) -> Iterator[Path]:
    """`outdir` for an example's backup; it and the target's copy are removed after."""
    try:
        yield outdir
    finally:
        drop_database(target, dbname)
        shutil.rmtree(outdir, ignore_errors=True)


@pytest.fixture(scope="module")
def source_database(property_source: Cluster) -> Iterator[Any]:
    """example(db) -> context manager: a new database of the source holding `db`."""
    @contextmanager
    def made(db: Database) -> Iterator[str]:
        dbname = f"ex_{next(COUNTER)}"
        create_database(property_source, dbname)
        try:
            with property_source.connect(dbname) as conn:
                create(conn, db)
            yield dbname
        finally:
            drop_database(property_source, dbname)

    return made


# --- the properties ----------------------------------------------------------------------

LOGICAL = {"custom": ("custom-z1", "fresh"), "directory": ("directory-j2", "parallel-j2"),
           "plain": ("plain", "fresh")}


@pytest.mark.parametrize("mode", LOGICAL)
def test_property_logical_restore_is_bit_exact(
        mode: str, profile: Profile, property_source: Cluster, property_target: Cluster,
        source_database: Any, tmp_path: Path, record_property: Any) -> None:
    """pg_dump (custom, directory -j 2, plain) then pg_restore/psql into a new database of
    another cluster: the copy equals the source bit for bit."""
    dump_setting, restore_setting = (DUMP_SETTINGS[LOGICAL[mode][0]],
                                     RESTORE_SETTINGS[LOGICAL[mode][1]])

    @profile.settings(f"logical-{mode}", profile.budget.logical)
    @given(db=databases())
    def example(db: Database) -> None:
        ran.append(db)
        with source_database(db) as dbname, \
                scratch(property_target, dbname, tmp_path / dbname) as outdir:
            dumped = dump(property_source, dbname, dump_setting, outdir)
            assert dumped.toc_problems == ()
            create_database(property_target, dbname)
            restore(property_target, dumped.archive, dbname, restore_setting)
            with property_source.connect(dbname) as src, \
                    property_target.connect(dbname) as tgt:
                assert_bit_exact(db, src, tgt)

    ran: list[Database] = []
    example()
    record_features(record_property, ran)


def quoted(schema: str, name: str) -> str:
    return '"{}"."{}"'.format(schema.replace('"', '""'), name.replace('"', '""'))


# pg_restore -l prints "CONSTRAINT vec space it.ems it.ems_pkey": always drilled
SPACED = Database((
    Table("vec space", "it.ems", (Column("e m", "vector", 3, True),), 2,
          tuple((Dense(3, (float(i), 1.0, -0.0), 0, 1.0),) for i in range(5))),
    Table("vec", "space it.ems", (Column("v", "halfvec", 2, False),), 0,
          ((Dense(2, (1.0, 2.0), 0, 1.0),),)),
))


def test_property_table_restore_brings_exactly_that_table(
        profile: Profile, property_source: Cluster, property_target: Cluster,
        source_database: Any, tmp_path: Path, record_property: Any) -> None:
    """pg_dump custom, then one drawn table restored with its indexes, constraints and
    partitions (a -L list) into a new database: exactly that table and its partitions
    arrive, bit for bit, and the drill's own verification passes."""

    @profile.settings("table", profile.budget.logical)
    @given(db=databases(), pick=st.integers(0, 5))
    @example(db=SPACED, pick=0)
    @example(db=SPACED, pick=1)
    def example_(db: Database, pick: int) -> None:
        ran.append(db)
        table = db.tables[pick % len(db.tables)]
        setting = RestoreSetting("table", tables=(quoted(table.schema, table.name),))
        with source_database(db) as dbname, \
                scratch(property_target, dbname, tmp_path / dbname) as outdir:
            dumped = dump(property_source, dbname, DUMP_SETTINGS["custom-z1"], outdir)
            with property_source.connect(dbname) as src:
                source = snapshot(src)
            drilled = restore_dump_and_verify(dumped, property_target, dbname, setting, source)
            with property_source.connect(dbname) as src, \
                    property_target.connect(dbname) as tgt:
                assert user_tables(tgt) == sorted(
                    (table.schema, n) for n in (table.name, *table.partition_names))
                assert sent(tgt, table) == sent(src, table) == expected(table)
                assert not tgt.execute("SELECT FROM pg_index WHERE NOT indisvalid"
                                       " OR NOT indisready").fetchall()
            drilled.verification.raise_for_problems()

    ran: list[Database] = []
    example_()
    record_features(record_property, ran)


@pytest.mark.parametrize("setting", ["plain", "tar-stream"])
def test_property_physical_restore_is_bit_exact(
        setting: str, profile: Profile, backend: Backend, property_source: Cluster,
        source_database: Any, tmp_path: Path, record_property: Any) -> None:
    """pg_basebackup (-Fp or -Ft, WAL streamed) restored into a new cluster and started:
    the example database equals the source bit for bit."""

    @profile.settings(f"physical-{setting}", profile.budget.physical)
    @given(db=databases())
    def example(db: Database) -> None:
        ran.append(db)
        with source_database(db) as dbname:
            dest = tmp_path / f"{dbname}-base"
            try:
                backup = base_backup(property_source, BASE_BACKUP_SETTINGS[setting], dest,
                                     fast_checkpoint=True)
                with restore_base_backup(backend, backup, f"property-{dbname}") as restored:
                    restored.start()
                    with property_source.connect(dbname) as src, \
                            restored.connect(dbname) as tgt:
                        assert_bit_exact(db, src, tgt, sequence_slack=32)
            finally:
                shutil.rmtree(dest, ignore_errors=True)

    ran: list[Database] = []
    example()
    record_features(record_property, ran)


# --- PITR to named restore points, against a model ----------------------------------------

PITR_DIM = 3


def pitr_machine(backend: Backend, workdir: Path, points_checked: int,
                 runs: list[dict[str, int]]) -> type[RuleBasedStateMachine]:
    """The machine class; each run appends its changes, restore points and recoveries to
    `runs`."""

    class PitrMachine(RuleBasedStateMachine):
        """Inserts, updates and deletes of vectors between named restore points on an
        archiving primary; at the end, recovery to some of those points from the base
        backup taken at the start holds exactly the model's rows of that point."""

        ids = Bundle("ids")

        def __init__(self) -> None:
            super().__init__()
            self.run = workdir / f"run-{len(runs) + 1}"
            self.stats = {"changes": 0, "restore_points": 0, "recovered": 0}
            runs.append(self.stats)
            self.primary = backend.create(f"pitr-prop-{self.run.name}")
            self.model: dict[int, Dense] = {}
            self.points: list[tuple[str, dict[int, Dense], bool]] = []
            self.next_id = 1
            self.changed = False  # since the last restore point
            try:
                self.primary.start()
                self.archive = make_archive_dir(self.run / "archive", osuser.server_user())
                enable_archiving(self.primary, self.archive)
                self.conn = self.primary.connect()
                self.conn.execute("CREATE EXTENSION vector")
                self.conn.execute(
                    f"CREATE TABLE items (id int PRIMARY KEY, v vector({PITR_DIM}))")
                self.backup = base_backup(self.primary, BASE_BACKUP_SETTINGS["plain"],
                                          self.run / "base", fast_checkpoint=True)
            except BaseException:  # no teardown for a machine that never started
                self.primary.destroy()
                raise

        def change(self) -> None:
            self.changed = True
            self.stats["changes"] += 1

        @initialize(target=ids, value=dense("vector", PITR_DIM))
        def first(self, value: Dense) -> int:
            """Every run changes something (hypothesis's simplest run would have no steps)."""
            assert self.primary.query("SELECT count(*) FROM items") == [(0,)]
            return self.insert(value)

        @rule(target=ids, value=dense("vector", PITR_DIM))
        def insert(self, value: Dense) -> int:
            key, self.next_id = self.next_id, self.next_id + 1
            self.conn.execute("INSERT INTO items VALUES (%s, %s::text::vector)",
                              (key, text("vector", value)))
            self.change()
            self.model[key] = value
            return key

        @rule(key=ids, value=dense("vector", PITR_DIM))
        def update(self, key: int, value: Dense) -> None:
            self.conn.execute("UPDATE items SET v = %s::text::vector WHERE id = %s",
                              (text("vector", value), key))
            self.change()
            self.model[key] = value

        @rule(key=consumes(ids))
        def delete(self, key: int) -> None:
            self.conn.execute("DELETE FROM items WHERE id = %s", (key,))
            del self.model[key]
            self.change()

        @precondition(lambda self: self.changed)
        @rule(check=st.booleans())
        def restore_point(self, check: bool) -> None:
            """A named restore point; `check`: recover to it at the end (while the budget of
            recoveries per run lasts)."""
            self.changed = False
            self.stats["restore_points"] += 1
            name = f"point {len(self.points) + 1}"
            self.conn.execute("SELECT pg_create_restore_point(%s)", (name,))
            self.points.append((name, dict(self.model), check))

        def teardown(self) -> None:
            try:
                self.restore_point(check=True)  # every run has one, after its last change
                self.conn.close()
                switch_and_wait(self.primary, self.archive)
                self.primary.stop()
                for name, model in self.checked():
                    self.recover_and_compare(name, model)
                    self.stats["recovered"] += 1
            finally:
                self.primary.destroy()
                shutil.rmtree(self.run, ignore_errors=True)

        def checked(self) -> list[tuple[str, dict[int, Dense]]]:
            """The points marked for checking, up to the budget, and always the last one."""
            *earlier, (last, model, _) = self.points
            marked = [(name, model) for name, model, check in earlier if check]
            return [*marked[:points_checked - 1], (last, model)]

        def recover_and_compare(self, name: str, model: dict[int, Dense]) -> None:
            with restore_base_backup(backend, self.backup, "pitr-prop-restored") as restored:
                point = BackupPoint.of(restored.read_file("backup_manifest"), self.archive)
                recovery = recover(restored, Target("name", name),
                                   restored.restore_command(self.archive), point)
                assert recovery.state == "promoted", recovery
                with restored.connect() as conn:
                    rows = conn.execute("SELECT id, vector_send(v) FROM items ORDER BY id")
                    held = [(key, bytes(value)) for key, value in rows]
                assert held == [(key, send("vector", v)) for key, v in sorted(model.items())], \
                    f"recovered to restore point {name!r}: rows differ from the model"

    return PitrMachine


def test_property_pitr_to_restore_points_matches_the_model(
        profile: Profile, backend: Backend, wal_workdir: Path, record_property: Any) -> None:
    """Vectors inserted, updated and deleted between named restore points; recovery of the
    start's base backup to some of those points (PITR) holds exactly the model's rows."""
    runs: list[dict[str, int]] = []
    machine = pitr_machine(backend, wal_workdir, profile.budget.pitr_points, runs)
    run_state_machine_as_test(machine, settings=profile.settings(
        "pitr", profile.budget.runs))
    record_property("hypothesis_examples", len(runs))
    record_property("hypothesis_runs", runs)
