"""A server pgvdrill does not manage (the production source), reached through libpq.

Connection settings come from a libpq connection string without a password; the password
comes from libpq's own mechanisms (PGPASSFILE / ~/.pgpass, a service file, PGPASSWORD in
the caller's environment), so it never appears in argv, config files or logs. Client
tools get the same settings as PG* environment variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from pgvdrill.errors import ConfigError
from pgvdrill.installation import Installation
from pgvdrill.proc import runner
from pgvdrill.proc.runner import ToolCall

# libpq connection keywords and the environment variable each has (libpq docs, 34.15)
LIBPQ_ENV = {
    "host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "dbname": "PGDATABASE",
    "user": "PGUSER", "passfile": "PGPASSFILE", "service": "PGSERVICE",
    "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY", "sslcrl": "PGSSLCRL", "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME", "options": "PGOPTIONS",
    "target_session_attrs": "PGTARGETSESSIONATTRS", "channel_binding": "PGCHANNELBINDING",
    "gssencmode": "PGGSSENCMODE", "krbsrvname": "PGKRBSRVNAME",
}

# what pg_dump turns off in its own sessions (transaction_timeout too, from PostgreSQL 17)
UNLIMITED = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")

CONNECT_HINT = ("check the conninfo, that the server runs and accepts this user (pg_hba.conf), "
                "and the password in ~/.pgpass, PGPASSFILE or a service file")


def parse_conninfo(text: str, where: str) -> dict[str, str]:
    """The keywords of a libpq connection string; ConfigError if it is malformed, holds a
    password or a keyword client tools cannot take from the environment."""
    try:
        found = psycopg.conninfo.conninfo_to_dict(text)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"{where}: not a libpq connection string: {exc}",
                          'write it as "host=db1 port=5432 dbname=vector_db user=backup"'
                          ) from None
    if "password" in found:
        raise ConfigError(f"{where}: the connection string holds a password",
                          "remove it: put it in a ~/.pgpass file (PGPASSFILE) or a service "
                          "file, never in the configuration")
    unknown = sorted(k for k in found if k not in LIBPQ_ENV)
    if unknown:
        raise ConfigError(f"{where}: unsupported connection keyword(s) {', '.join(unknown)}",
                          f"supported: {', '.join(LIBPQ_ENV)}")
    return {k: str(v) for k, v in found.items() if v is not None}


class ExternalServer:
    """The subset of a Cluster that backups need: connections and client tools."""

    def __init__(self, conninfo: Mapping[str, str], tools: Installation,
                 name: str = "source") -> None:
        self.settings = dict(conninfo)
        self.tools = tools
        self.name = name
        self.major = tools.major
        self._dbname = self.settings.get("dbname")

    @property
    def dbname(self) -> str:
        """The conninfo's database, else the one libpq picks (a service file's dbname,
        PGDATABASE, else the user's name), asked of the server once."""
        if self._dbname is None:
            with self._open(psycopg.conninfo.make_conninfo(**self.settings)) as conn:
                row = conn.execute("SELECT current_database()").fetchone()
                self._dbname = str(row[0]) if row else ""
        return self._dbname

    def dsn(self, dbname: str | None = None) -> str:
        return psycopg.conninfo.make_conninfo(**{**self.settings,
                                                 "dbname": dbname or self.dbname})

    def env(self, dbname: str | None = None) -> dict[str, str]:
        """PG* variables for client tools (the caller's PGPASSWORD, if any, passes through)."""
        return {LIBPQ_ENV[k]: v for k, v in {**self.settings,
                                              "dbname": dbname or self.dbname}.items()}

    def connect(self, dbname: str | None = None, *, autocommit: bool = True
                ) -> psycopg.Connection[tuple[Any, ...]]:
        """A session set up as pg_dump sets up its own: the source's timeouts (the role's
        or database's settings) do not cut its reads short (a drill holds a snapshot open
        while pg_dump runs), and row_security is off, so a table whose policies would hide
        rows from this role is an error, never a silently smaller table."""
        conn = self._open(self.dsn(dbname))
        names = UNLIMITED + (("transaction_timeout",) if conn.info.server_version >= 170000
                             else ())
        conn.execute("; ".join([*(f"SET {name} = 0" for name in names),
                                "SET row_security = off"]))
        conn.autocommit = autocommit
        return conn

    def _open(self, dsn: str) -> psycopg.Connection[tuple[Any, ...]]:
        """psycopg.connect; ConfigError naming the server and what to check when it
        cannot be reached or refuses this user."""
        try:
            return psycopg.connect(dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            raise ConfigError(f"cannot connect to {self.name} {self.describe()}: "
                              f"{str(exc).strip()}", CONNECT_HINT) from exc

    def query(self, sql: str, dbname: str | None = None) -> list[tuple[object, ...]]:
        with self.connect(dbname) as conn:
            cur = conn.execute(sql.encode())
            return cur.fetchall() if cur.description else []

    def run_tool(self, call: ToolCall) -> runner.Result:
        return call.run([self.tools.tool(call.tool)], self.env(call.dbname))

    def describe(self) -> str:
        return describe_conninfo({**self.settings, "dbname": self._dbname or ""})


def describe_conninfo(settings: Mapping[str, str]) -> str:
    """service or host:port, and the database: where a conninfo leads, without connecting."""
    where = settings.get("service") or (
        f"{settings.get('host', 'localhost')}:{settings.get('port', '5432')}")
    return f"{where}/{settings.get('dbname') or '(its default database)'}"
