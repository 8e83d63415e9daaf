"""pg_restore settings and the restore step: whole, by table, by section, data or schema only.

A restore setting says how pg_restore runs and what the target database must hold first
(`prepare`); the drill prepares it, this module runs the timed restore.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from psycopg import sql

from pgvdrill import statement_log
from pgvdrill.cluster import Cluster
from pgvdrill.errors import ConfigError, ToolError
from pgvdrill.logical import diagnose
from pgvdrill.logical.archive import Archive, entry_of, listing_lines
from pgvdrill.logical.selection import Section
from pgvdrill.logical.table_items import clean
from pgvdrill.proc.runner import ToolCall
from pgvdrill.timing import Item, Phase

# What the target database holds before the timed restore:
#   empty         a new database
#   extension     a new database with CREATE EXTENSION vector (what -t/-n dumps need)
#   diverged      the archive restored earlier, then changed (rows deleted, an index dropped)
#   schema        the whole schema, tables empty (the runbook's schema-only-then-data flow)
#   pre-data      tables without indexes; post-data follows the data as a timed phase
#   other-tables  every table of the archive except the ones this setting restores
Prepare = Literal["empty", "extension", "diverged", "schema", "pre-data", "other-tables"]
SECTIONS = ("pre-data", "data", "post-data")
TABLE_OBJECTS = ("TABLE", "TABLE DATA", "TABLE ATTACH", "INDEX", "INDEX ATTACH",
                 "CONSTRAINT", "FK CONSTRAINT", "SEQUENCE", "SEQUENCE SET",
                 "SEQUENCE OWNED BY", "DEFAULT", "TRIGGER", "COMMENT", "ACL")


@dataclass(frozen=True)
class RestoreSetting:
    """One way to run pg_restore."""

    name: str
    clean: bool = False  # --clean --if-exists (the runbook's overwrite)
    jobs: int = 1
    tables: tuple[str, ...] = ()  # only these tables ...
    table_objects: bool = True  # ... with their indexes and constraints (False: plain -t)
    section: Section = "all"  # --data-only / --schema-only
    sectioned: bool = False  # pre-data, data, post-data as three timed runs
    prepare: Prepare = "empty"
    description: str = ""
    # settings for each pg_restore connection (PGOPTIONS), e.g. maintenance_work_mem
    session: tuple[tuple[str, str], ...] = ()

    def base_argv(self, dbname: str) -> list[str]:
        args = ["--dbname", dbname, "--exit-on-error", "--no-password"]
        if self.clean:
            args += ["--clean", "--if-exists"]
        if self.jobs > 1:
            args += ["--jobs", str(self.jobs)]
        args += {"all": [], "data": ["--data-only"], "schema": ["--schema-only"]}[self.section]
        if self.tables and not self.table_objects:
            args += [f"--table={t}" for t in self.tables]
        return args


def restore_argv(archive: Path, *options: str, setting: RestoreSetting | None = None,
                 dbname: str = "") -> list[str]:
    """pg_restore's arguments, put together here only: `setting`'s for `dbname` (when
    given), then `options` (a -L list, --section, ownership, --list, ...), then `archive`."""
    return [*(setting.base_argv(dbname) if setting is not None else []), *options, str(archive)]


def _settings(*settings: RestoreSetting) -> dict[str, RestoreSetting]:
    return {s.name: s for s in settings}


RESTORE_SETTINGS = _settings(
    RestoreSetting("fresh", description="into a new, empty database, one job"),
    RestoreSetting("clean", clean=True, prepare="diverged",
                   description="--clean --if-exists over an existing, diverged database"),
    RestoreSetting("parallel-j2", jobs=2, description="into a new database with -j 2"),
)
PARTIAL_RESTORE_SETTINGS = _settings(
    RestoreSetting("table-runbook", tables=("documents",), table_objects=False,
                   prepare="extension",
                   description="the runbook's pg_restore -t documents: table and data only, "
                               "its indexes and constraints are left behind"),
    RestoreSetting("table", tables=("documents",),
                   description="documents with its indexes and constraints (a -L list), "
                               "into an empty database"),
    RestoreSetting("table-into-existing", tables=("product_embeddings",),
                   prepare="other-tables",
                   description="product_embeddings into a database that holds the other "
                               "tables"),
    RestoreSetting("tables-j2", tables=("documents", "account_behaviors"), jobs=2,
                   description="two tables with their indexes, -j 2"),
    RestoreSetting("schema-only", section="schema", description="--schema-only"),
    RestoreSetting("sectioned", sectioned=True,
                   description="--section pre-data, data, post-data, each timed"),
    RestoreSetting("data-into-schema", section="data", prepare="pre-data",
                   description="--data-only into tables without indexes, then post-data"),
    RestoreSetting("data-runbook", section="data", prepare="schema",
                   description="the runbook's --schema-only restore, then --data-only: "
                               "indexes exist before their data"),
    RestoreSetting("scoped", prepare="extension",
                   description="a -t/-n dump into a database with CREATE EXTENSION vector"),
)
ALL_RESTORE_SETTINGS = {**RESTORE_SETTINGS, **PARTIAL_RESTORE_SETTINGS}


@dataclass(frozen=True)
class RestoreResult:
    setting: RestoreSetting
    dbname: str
    seconds: float
    phases: tuple[Phase, ...]  # consecutive, adding up to `seconds`
    items: tuple[Item, ...] = ()  # per table and index, from the server's statement log

    def as_dict(self) -> dict[str, object]:
        return {"setting": self.setting.name, "description": self.setting.description,
                "database": self.dbname, "seconds": round(self.seconds, 3),
                **({"session": dict(self.setting.session)} if self.setting.session else {})}

    def phase(self, name: str) -> float:
        """Seconds spent in phase `name` (0 when the restore had no such phase)."""
        return sum(p.seconds for p in self.phases if p.phase == name)


def create_database(cluster: Cluster, dbname: str, *, extension: bool = False) -> None:
    """An empty database from template0 (with pgvector created in it when `extension`);
    created from template1, so that `dbname` may be `postgres` (see `make_room`)."""
    with cluster.connect("template1") as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
            sql.Identifier(dbname)))
    if extension:
        with cluster.connect(dbname) as conn:
            conn.execute("CREATE EXTENSION vector")


def make_room(cluster: Cluster, dbname: str) -> None:
    """Drop the fresh scratch server's own empty `dbname` (`postgres`, `template1`'s
    copy), so that a source database of that name restores under its own name."""
    with cluster.connect("template1") as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(dbname)))


def table_list(cluster: Cluster, archive: Archive, tables: tuple[str, ...], *,
               exclude: bool = False) -> list[str]:
    """A pg_restore -L list of `tables` with their dependent objects (or, with `exclude`,
    of everything else), taken from the archive's own listing."""
    listing = cluster.run_tool(ToolCall("pg_restore", restore_argv(archive.path, "--list"))).stdout
    owned = archive.items_of_tables(cluster, tables)
    schemas = {clean(schema) for _, (schema, _) in owned.values()}  # as the listing prints
    keep = []
    for line in listing_lines(listing):
        entry = entry_of(line)
        if entry is None:
            continue
        shared = entry.desc not in TABLE_OBJECTS  # extensions, schemas, types
        needed = (entry.dump_id in owned or entry.desc == "EXTENSION"
                  or (entry.desc == "SCHEMA" and entry.name in schemas))
        if (entry.dump_id not in owned or shared) if exclude else needed:
            keep.append(line)
    return keep


def _without_schemas(cluster: Cluster, archive: Archive, dbname: str) -> list[str]:
    """The archive's listing less the CREATE SCHEMA items of schemas the target already
    has: a -n public dump re-creates public, which every database holds (and which the
    extension pgvector lives in must keep)."""
    with cluster.connect(dbname) as conn:
        existing = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace")}
    listing = cluster.run_tool(ToolCall("pg_restore", restore_argv(archive.path, "--list"))).stdout
    return [line for line in listing_lines(listing)
            if (e := entry_of(line)) is None or e.desc != "SCHEMA" or e.name not in existing]


@contextmanager
def use_list(lines: list[str]) -> Iterator[list[str]]:
    """pg_restore arguments for a -L list of `lines`, in a file removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="pgvdrill-list-") as tmp:
        path = Path(tmp) / "restore.list"
        path.write_text("\n".join(lines) + "\n")
        yield ["--use-list", str(path)]


def restore(cluster: Cluster, archive: Archive, dbname: str, setting: RestoreSetting,
            *, sections: tuple[str, ...] | None = None) -> RestoreResult:
    """Restore `archive` into `dbname` (which must exist) with `setting`; `sections`
    overrides which sections run (each timed as its own phase)."""
    with cluster.connect(dbname) as conn:
        diagnose.preflight(conn, archive, cluster)
    if archive.format == "plain":
        if setting != RESTORE_SETTINGS["fresh"]:
            raise ConfigError(f"a plain SQL dump restores only with psql ('fresh'), "
                              f"not {setting.name!r}")
        args = ["--dbname", dbname, "--no-psqlrc", "--set", "ON_ERROR_STOP=1", "--quiet",
                "--file", str(archive.path)]
        return _timed(cluster, "psql", {"restore": args}, setting, dbname, archive)
    listing = (table_list(cluster, archive, setting.tables)
               if setting.tables and setting.table_objects else
               _without_schemas(cluster, archive, dbname) if setting.prepare == "extension"
               else None)
    lister: AbstractContextManager[list[str]] = (
        use_list(listing) if listing is not None else nullcontext([]))
    with lister as list_args:
        runs = sections or (SECTIONS if setting.sectioned else ())

        def argv(*section: str) -> list[str]:
            return restore_argv(archive.path, *list_args, *section, setting=setting,
                                dbname=dbname)

        commands = {s: argv(f"--section={s}") for s in runs} if runs else {"restore": argv()}
        return _timed(cluster, "pg_restore", commands, setting, dbname, archive)


def _timed(cluster: Cluster, tool: str, commands: dict[str, list[str]],
           setting: RestoreSetting, dbname: str, archive: Archive) -> RestoreResult:
    """Run each command, timed; a whole restore is split into phases by the server's
    statement log (data loads, then builds), section runs are one phase each."""
    tag = statement_log.new_tag("restore")
    env = statement_log.tagged_env(tag, setting.session)
    mark = cluster.log_position()
    runs: list[Phase] = []
    started = time.time()
    for phase, args in commands.items():
        begun = time.monotonic()
        try:
            cluster.run_tool(ToolCall(tool, args, stdout="/dev/null", env=env,
                                      hint=f"restoring {archive.path} into {dbname} failed"))
        except ToolError as exc:
            raise diagnose.explain(exc) or exc from exc
        runs.append(Phase(phase, time.monotonic() - begun))
    seconds = sum(p.seconds for p in runs)
    logged = statement_log.statements(cluster.log_since(mark), tag)
    phases = (statement_log.phases(logged, started, started + seconds)
              if list(commands) == ["restore"] else runs)
    return RestoreResult(setting, dbname, seconds, tuple(phases),
                         tuple(statement_log.items(logged)))
