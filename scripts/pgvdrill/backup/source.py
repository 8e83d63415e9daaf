"""The configured source server, what a catalog entry records about it, and the client
tools that back it up (those of [source] pg_bin, else the embedded PostgreSQL 18 ones)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psycopg

from pgvdrill.config import Config
from pgvdrill.errors import ConfigError
from pgvdrill.files.trust import require_trusted_bindir
from pgvdrill.installation import Installation, embedded, from_bindir
from pgvdrill.proc import runner
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


def source_server(config: Config) -> ExternalServer:
    """The configured [source], reached with its client tools (not connected yet)."""
    source = config.require_source()
    return ExternalServer(source.conninfo, client_tools(source.pg_bin))


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


def require_tools_for(facts: dict[str, Any], tools: Installation) -> None:
    """ConfigError when the client tools are older than the server: an older pg_dump or
    pg_basebackup refuses a newer server, or misses what it added."""
    major = int(facts["server_version_num"]) // 10000
    if tools.major < major:
        raise ConfigError(
            f"the client tools in {tools.bindir} are PostgreSQL {tools.version}, older than "
            f"the server {facts['describe']} (PostgreSQL {facts['server_version']})",
            f"set [source] pg_bin to the bin directory of PostgreSQL {major} or newer "
            "client tools (or remove it to use the embedded PostgreSQL 18 tools)")


def tool_versions(tools: Installation, names: Iterable[str]) -> dict[str, str]:
    """Each tool's `--version` line, e.g. {"pg_dump": "pg_dump (PostgreSQL) 18.1"}."""
    return {name: runner.run([tools.tool(name), "--version"]).stdout.strip()
            for name in names}
