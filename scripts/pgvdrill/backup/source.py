"""The configured source server, what a catalog entry records about it, and the client
tools that back it up (those of [source] pg_bin, else the embedded PostgreSQL 18 ones)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import psycopg

from pgvdrill.config import Config
from pgvdrill.errors import ConfigError
from pgvdrill.files.trust import require_trusted_bindir
from pgvdrill.installation import Found, Installation, embedded, find_installations, from_bindir
from pgvdrill.proc import runner
from pgvdrill.repository import Entry
from pgvdrill.server import CONNECT_HINT, ExternalServer

_VERSION = re.compile(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?")


def client_tools(pg_bin: Path | None) -> Installation:
    """The tools in `pg_bin` (a client-only package has no `postgres`: its version is read
    from pg_dump --version), or the embedded ones when None."""
    if pg_bin is None:
        return embedded(None)
    if (pg_bin / "postgres").is_file():
        return from_bindir(pg_bin)
    require_trusted_bindir(pg_bin, "PostgreSQL bin directory")
    line = runner.run([runner.which("pg_dump", pg_bin), "--version"]).stdout
    match = _VERSION.search(line)
    if match is None:
        raise ConfigError(f"cannot read a version from {pg_bin}/pg_dump --version: {line!r}",
                          "point [source] pg_bin at a PostgreSQL bin directory")
    return Installation(pg_bin.resolve(), f"{match.group(1)}.{match.group(2) or 0}")


def config_tools(config: Config) -> Installation:
    """The client tools the configuration names ([source] pg_bin), else the embedded ones."""
    return client_tools(config.source.pg_bin if config.source else None)


def source_server(config: Config, tools: Installation | None = None) -> ExternalServer:
    """The configured [source], reached with `tools` (None: its configured client tools;
    not connected yet)."""
    source = config.require_source()
    return ExternalServer(source.conninfo, tools or client_tools(source.pg_bin))


def named_installations(config: Config, more: Sequence[Path] = ()
                        ) -> list[tuple[str, Path | None]]:
    """The installations the configuration names (the embedded one first, as None), then
    `more` (--installation), by origin."""
    drill = config.drill
    return [("embedded", None), *(("[drill] pg_bin", p) for p in [drill.pg_bin] if p),
            *(("[drill] installations", p) for p in drill.installations),
            *(("--installation", p) for p in more)]


def tools_for(config: Config, facts: dict[str, Any], kind: str,
              found: Sequence[Found] | None = None) -> Installation:
    """The client tools that back up the source `facts` describe (`kind` logical or
    physical; physical also stands for reading its WAL): [source] pg_bin when set, else the
    first installation of the source's major version in `found` (None: the embedded one,
    [drill] pg_bin and [drill] installations), else the embedded ones; checked by
    `require_tools_for`."""
    if config.source is not None and config.source.pg_bin is not None:
        tools = client_tools(config.source.pg_bin)
    else:
        if found is None:
            found, _ = find_installations(named_installations(config), None)
        major = int(facts["server_version_num"]) // 10000
        tools = next((f.installation for f in found if f.installation.major == major),
                     None) or embedded(None)
    require_tools_for(facts, tools, kind)
    return tools


def server_facts(server: ExternalServer) -> dict[str, Any]:
    """What a catalog entry says about the server: where it is, its version, identity
    (system identifier, None when this user may not read it; the database's OID) and
    pgvector. ConfigError with what to check when it cannot be reached."""
    try:
        with server.connect() as conn:
            row = conn.execute(
                "SELECT current_setting('server_version'), "
                "current_setting('server_version_num')::int, current_database(), "
                "(SELECT extversion FROM pg_extension WHERE extname = 'vector'), "
                "pg_is_in_recovery(), "
                "(SELECT oid::bigint FROM pg_database WHERE datname = current_database())"
                ).fetchone()
            assert row is not None
            try:
                ident = conn.execute(
                    "SELECT system_identifier::text FROM pg_control_system()").fetchone()
            except psycopg.errors.InsufficientPrivilege:
                ident = None
    except psycopg.OperationalError as exc:
        raise ConfigError(f"cannot connect to {server.name} {server.describe()}: "
                          f"{str(exc).strip()}",
                          CONNECT_HINT) from exc
    return {"describe": server.describe(), "dbname": row[2], "server_version": row[0],
            "server_version_num": row[1], "system_identifier": ident[0] if ident else None,
            "pgvector": row[3], "in_recovery": row[4], "database_oid": row[5]}


def require_tools_for(facts: dict[str, Any], tools: Installation, kind: str) -> None:
    """ConfigError when the client tools cannot back up the server `facts` describe: for a
    logical backup tools older than the server (an older pg_dump refuses a newer server, or
    misses what it added); for a physical one (and its WAL) tools of another major version
    (pg_basebackup refuses a newer server and writes a backup another major's
    pg_verifybackup and pg_waldump cannot read)."""
    major = int(facts["server_version_num"]) // 10000
    server = f"the server {facts['describe']} (PostgreSQL {facts['server_version']})"
    if kind == "logical" and tools.major < major:
        raise ConfigError(
            f"the client tools in {tools.bindir} are PostgreSQL {tools.version}, older than "
            f"{server}",
            f"set [source] pg_bin to the bin directory of PostgreSQL {major} or newer "
            "client tools (or remove it to use the embedded PostgreSQL 18 tools)")
    if kind != "logical" and tools.major != major:
        raise ConfigError(
            f"a physical backup of {server} needs PostgreSQL {major}'s pg_basebackup, "
            f"pg_verifybackup and pg_waldump; the client tools in {tools.bindir} are "
            f"PostgreSQL {tools.version}",
            f"set [source] pg_bin to PostgreSQL {major}'s bin directory (or name it in "
            f"[drill] installations and leave [source] pg_bin out)")


def source_major(entry: Entry) -> int:
    """The PostgreSQL major version of the server `entry` was taken from (its catalog
    facts); a ConfigError when the entry does not say."""
    number = entry.source.get("server_version_num")
    if not isinstance(number, int) or number <= 0:
        raise ConfigError(f"catalog entry {entry.id} does not record its source's PostgreSQL "
                          "version (source.server_version_num)",
                          "drill a backup taken by pgvdrill backup, which records it")
    return number // 10000


def tool_versions(tools: Installation, names: Iterable[str]) -> dict[str, str]:
    """Each tool's `--version` line, e.g. {"pg_dump": "pg_dump (PostgreSQL) 18.1"}."""
    return {name: runner.run([tools.tool(name), "--version"]).stdout.strip()
            for name in names}
