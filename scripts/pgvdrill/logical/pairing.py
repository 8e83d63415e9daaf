"""Which restore settings a dump can feed, what the target must hold first, and what the
restore must leave there."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from pgvdrill.cluster import Cluster
from pgvdrill.errors import ConfigError
from pgvdrill.logical.archive import Archive, qualified
from pgvdrill.logical.dump import DumpSetting
from pgvdrill.logical.restore import (
    RESTORE_SETTINGS,
    RestoreResult,
    RestoreSetting,
    create_database,
    restore,
    restore_argv,
    table_list,
    use_list,
)
from pgvdrill.proc.runner import ToolCall
from pgvdrill.timing import Phase

Table = tuple[str, str]


def refusal(dump: DumpSetting, setting: RestoreSetting) -> str | None:
    """Why `setting` cannot restore what `dump` wrote, or None when it can."""
    section = dump.selection.section
    if dump.format == "plain" and setting.name != "fresh":
        return "a plain SQL dump restores only with psql into a fresh database"
    if section == "data" and setting.section != "data":
        return "a data-only dump needs a restore into an existing schema"
    if section != "data" and setting.section == "data" and dump.format == "plain":
        return "psql cannot restore a section"
    if section == "schema" and (setting.section == "data" or setting.prepare != "empty"
                                or setting.tables):
        return "a schema-only dump holds no data to restore into or over a database"
    uncovered = [t for t in setting.tables if not dump.selection.covers(*qualified(t))]
    if uncovered:
        return f"the dump does not hold {', '.join(uncovered)}"
    # pg_dump -t/-n and pg_restore -t both leave CREATE EXTENSION vector behind
    needs_extension = dump.selection.scoped or bool(setting.tables and not setting.table_objects)
    if needs_extension != (setting.prepare == "extension"):
        return ("the restore lacks CREATE EXTENSION vector: it needs a database that has "
                "the extension ('scoped', 'table-runbook')" if needs_extension
                else "the restore creates the extension itself")
    return None


def expected_tables(tools: Cluster, archive: Archive, setting: RestoreSetting
                    ) -> list[Table]:
    """The tables the timed restore itself brings into the target (a table restored with
    its objects brings its partitions)."""
    if setting.tables and setting.table_objects:
        items = archive.items_of_tables(tools, setting.tables).values()
        return sorted({table for desc, table in items if desc in ("TABLE", "TABLE DATA")})
    tables = archive.tables()
    if setting.tables:
        wanted = {qualified(t) for t in setting.tables}
        tables = [t for t in tables if t in wanted]
    return tables


def prepare(target: Cluster, dbname: str, archive: Archive, setting: RestoreSetting,
            schema_source: Archive | None) -> None:
    """Bring `dbname` into the state `setting.prepare` names (untimed)."""
    create_database(target, dbname, extension=setting.prepare == "extension")
    seed = RESTORE_SETTINGS["fresh"]
    if setting.prepare == "diverged":
        restore(target, archive, dbname, seed)
        with target.connect(dbname) as conn:
            diverge(conn)
    elif setting.prepare in ("schema", "pre-data"):
        schema = _schema_source(archive, schema_source)
        sections = ("pre-data", "post-data") if setting.prepare == "schema" else ("pre-data",)
        restore(target, schema, dbname, seed, sections=sections)
    elif setting.prepare == "other-tables":
        others = table_list(target, archive, setting.tables, exclude=True)
        with use_list(others) as list_args:
            target.run_tool(ToolCall("pg_restore", restore_argv(
                archive.path, "--dbname", dbname, "--exit-on-error", *list_args),
                stdout="/dev/null"))


def finish(target: Cluster, dbname: str, archive: Archive, setting: RestoreSetting,
           schema_source: Archive | None, restored: RestoreResult) -> RestoreResult:
    """After a data restore into bare tables: post-data (indexes, constraints), timed."""
    if setting.prepare != "pre-data":
        return restored
    post = restore(target, _schema_source(archive, schema_source), dbname,
                   RESTORE_SETTINGS["fresh"], sections=("post-data",))
    return RestoreResult(setting, dbname, restored.seconds + post.seconds,
                         (Phase("data", restored.seconds), *post.phases),
                         restored.items + post.items)


def _schema_source(archive: Archive, schema_source: Archive | None) -> Archive:
    if any(e.desc == "TABLE" for e in archive.toc):
        return archive
    if schema_source is None:
        raise ConfigError(f"{archive.path} holds data only: a restore needs the schema from "
                          "another dump", "pass a schema-only dump of the same database")
    return schema_source


def user_tables(conn: psycopg.Connection[Any]) -> list[Table]:
    return [(s, t) for s, t in conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2")]


def diverge(conn: psycopg.Connection[Any]) -> None:
    """Make a restored database differ from its dump: delete rows, drop an index."""
    for schema, table in user_tables(conn):
        conn.execute(sql.SQL("DELETE FROM {} WHERE random() < 0.1").format(
            sql.Identifier(schema, table)))
    index = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE NOT i.indisprimary AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " ORDER BY 2 LIMIT 1").fetchone()
    if index is not None:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(*index)))
