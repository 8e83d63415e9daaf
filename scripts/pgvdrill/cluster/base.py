"""The interface every backend implements (embedded and system now, containers later).

Everything a drill does to a server goes through it: lifecycle, configuration,
connections, client tools and file operations on the data directory, so that a backend
whose data directory lives in a container can implement the same drills.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, Self

import psycopg

from pgvdrill.errors import clean_after, cleanup
from pgvdrill.proc.runner import Result, ToolCall

ConfigValue = str | int | float | bool
# libpq's environment variables (libpq docs, "Environment Variables"): the caller's are
# the operator's settings for the source, never for a scratch server
LIBPQ_VARIABLES = (
    "PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGPASSFILE",
    "PGREQUIREAUTH", "PGCHANNELBINDING", "PGSERVICE", "PGSERVICEFILE", "PGOPTIONS",
    "PGAPPNAME", "PGSSLMODE", "PGREQUIRESSL", "PGSSLCOMPRESSION", "PGSSLCERT", "PGSSLKEY",
    "PGSSLCERTMODE", "PGSSLROOTCERT", "PGSSLCRL", "PGSSLCRLDIR", "PGSSLSNI",
    "PGREQUIREPEER", "PGSSLMINPROTOCOLVERSION", "PGSSLMAXPROTOCOLVERSION", "PGSSLNEGOTIATION",
    "PGGSSENCMODE", "PGKRBSRVNAME", "PGGSSLIB", "PGGSSDELEGATION", "PGCONNECT_TIMEOUT",
    "PGCLIENTENCODING", "PGTARGETSESSIONATTRS", "PGLOADBALANCEHOSTS", "PGMINPROTOCOLVERSION",
    "PGMAXPROTOCOLVERSION", "PGDATESTYLE", "PGTZ", "PGGEQO", "PGSYSCONFDIR", "PGLOCALEDIR",
)
# keywords that shut out what the caller's libpq environment (or the service PGSERVICE
# names) would add to a scratch server's connection: PGPASSWORD (an empty password makes
# libpq read the passfile), PGHOSTADDR (empty: unset), SSL/GSS modes and negotiation,
# PGOPTIONS, PGTARGETSESSIONATTRS, PGREQUIREAUTH (any method pgvdrill's servers use),
# PGREQUIREPEER (empty: none), a
# minimum protocol an older scratch server lacks; only those this libpq knows
SCRATCH_KEYWORDS = {
    name: value for name, value in {
        "password": "", "hostaddr": "", "sslmode": "disable", "sslnegotiation": "postgres",
        "gssencmode": "disable", "options": "", "target_session_attrs": "any",
        "channel_binding": "disable", "require_auth": "password,md5,scram-sha-256,none",
        "requirepeer": "",
        "min_protocol_version": "3.0"}.items()
    if name in {o.keyword.decode() for o in psycopg.pq.Conninfo.get_defaults()}}


class ToolRunner(Protocol):
    """Runs client tools of one PostgreSQL version (a cluster, or an installation alone)."""

    def run_tool(self, call: ToolCall) -> Result: ...


class Server(Protocol):
    """What taking a backup needs of a server: a scratch Cluster or the production source
    (server.ExternalServer)."""

    name: str
    major: int

    def connect(self, dbname: str | None = None, *, autocommit: bool = True
                ) -> psycopg.Connection[tuple[Any, ...]]: ...

    def query(self, sql: str, dbname: str | None = None) -> list[tuple[object, ...]]: ...

    def run_tool(self, call: ToolCall) -> Result: ...


@dataclass(frozen=True)
class ConnInfo:
    """How clients reach a server; the password stays in `passfile`, never in a DSN."""

    host: str
    port: int
    user: str
    dbname: str
    passfile: Path

    def dsn(self, dbname: str | None = None) -> str:
        """A connection string that the caller's libpq environment cannot redirect."""
        return psycopg.conninfo.make_conninfo(
            host=self.host, port=self.port, user=self.user,
            dbname=dbname or self.dbname, passfile=str(self.passfile), **SCRATCH_KEYWORDS,
        )

    def env(self, dbname: str | None = None) -> dict[str, str | None]:
        """libpq environment for client tools (PGPASSFILE, never PGPASSWORD); every other
        libpq variable of the caller's environment is removed (None)."""
        return {
            **dict.fromkeys(LIBPQ_VARIABLES), "PGSSLMODE": "disable", "PGGSSENCMODE": "disable",
            "PGHOST": self.host, "PGPORT": str(self.port), "PGUSER": self.user,
            "PGDATABASE": dbname or self.dbname, "PGPASSFILE": str(self.passfile),
            "PGCONNECT_TIMEOUT": "10",
        }


@dataclass
class ClusterSettings:
    """Server settings written to the included conf file, in order."""

    values: dict[str, ConfigValue] = field(default_factory=dict)

    def render(self) -> str:
        lines = ["# written by pgvdrill; included from postgresql.conf"]
        lines += [f"{k} = {quote(v)}" for k, v in self.values.items()]
        return "\n".join(lines) + "\n"


def quote(value: ConfigValue) -> str:
    """A postgresql.conf literal for `value`."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    escaped = value.replace("\\", "\\\\").replace("'", "''")
    return "'" + escaped.replace("\n", "\\n").replace("\r", "\\r") + "'"  # one line


class Cluster(abc.ABC):
    """One PostgreSQL server and its data directory."""

    name: str
    major: int

    @property
    @abc.abstractmethod
    def conninfo(self) -> ConnInfo: ...

    @abc.abstractmethod
    def start(self, timeout: float = 120) -> None:
        """Start and wait until the server accepts queries."""

    @abc.abstractmethod
    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None: ...

    @abc.abstractmethod
    def crash(self, how: Literal["immediate", "kill"] = "kill") -> None:
        """Stop without a shutdown checkpoint: `immediate` stop or SIGKILL of the server."""

    @abc.abstractmethod
    def is_running(self) -> bool: ...

    @abc.abstractmethod
    def configure(self, **settings: ConfigValue) -> None:
        """Set server settings in the included conf file (effective after restart/reload)."""

    @abc.abstractmethod
    def reload(self) -> None: ...

    @abc.abstractmethod
    def run_tool(self, call: ToolCall) -> Result:
        """Run a client tool of this server's version, connected to this server."""

    @abc.abstractmethod
    def archive_command(self, dest: Path) -> str:
        """An archive_command this server can run, archiving into `dest` (never overwriting
        a segment with different contents)."""

    @abc.abstractmethod
    def restore_command(self, source: Path, *, partial: bool = False) -> str:
        """A restore_command this server can run, fetching from `source` (with `partial`,
        a segment only pg_receivewal's .partial file has)."""

    @abc.abstractmethod
    def server_log(self, lines: int = 40) -> str:
        """The tail of the server log."""

    @abc.abstractmethod
    def log_position(self) -> int:
        """A mark in the server log; `log_since` returns what was written after it."""

    @abc.abstractmethod
    def log_since(self, position: int) -> str: ...

    # file operations on the data directory
    @abc.abstractmethod
    def read_file(self, relpath: str) -> bytes: ...

    @abc.abstractmethod
    def write_file(self, relpath: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def remove_file(self, relpath: str) -> None: ...

    @abc.abstractmethod
    def list_dir(self, relpath: str = ".") -> list[str]: ...

    @abc.abstractmethod
    def destroy(self) -> None:
        """Stop the server (if running) and remove everything it owned."""

    def connect(
        self, dbname: str | None = None, *, autocommit: bool = True
    ) -> psycopg.Connection[tuple[Any, ...]]:
        """A psycopg connection to `dbname` (the default database when None)."""
        return psycopg.connect(self.conninfo.dsn(dbname), autocommit=autocommit)

    def query(self, sql: str, dbname: str | None = None) -> list[tuple[object, ...]]:
        """Run one statement; its rows (none for a statement without a result)."""
        with self.connect(dbname) as conn:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        """Destroy the cluster; when the block failed, a failure to destroy it is a note on
        that error, not a new one."""
        clean_after(exc, self.destroy, f"server {self.name}")


class Backend(abc.ABC):
    """Makes clusters: from a cached initdb template, or over an existing data directory."""

    name: str
    major: int

    @abc.abstractmethod
    def create(self, name: str, *, template: str | None = None) -> Cluster:
        """A new, stopped cluster copied from the initdb template (or a named saved one)."""

    @abc.abstractmethod
    def has_template(self, template: str) -> bool: ...

    @abc.abstractmethod
    def adopt(self, name: str, datadir: Path, *, superuser: str = "postgres") -> Cluster:
        """A stopped cluster over an existing data directory (a restored base backup), which
        it takes over and neutralises (pgvdrill.cluster.restored): clients log in through
        its private socket as `superuser`, the source's bootstrap superuser."""

    @abc.abstractmethod
    def ensure_template(self, template: str, build: Callable[[Cluster], None]) -> None:
        """Build the named template once (a started cluster handed to `build`, then saved)."""

    @abc.abstractmethod
    def tools(self) -> ToolRunner:
        """Client tools of the backend's version, for work that needs no server."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the backend holds (work directories)."""

    @abc.abstractmethod
    def pgvector_version(self) -> str | None:
        """The pgvector version this backend's servers offer, None if they have none."""

    def facts(self) -> dict[str, object]:
        """What a report says about the servers: backend, PostgreSQL major, pgvector."""
        return {"backend": self.name, "major": self.major, "pgvector": self.pgvector_version()}

    @contextmanager
    def cluster(self, name: str, *, template: str | None = None) -> Iterator[Cluster]:
        """A started cluster, destroyed afterwards; cleaned up if start fails."""
        cluster = self.create(name, template=template)
        with cleanup(cluster.destroy, f"server {name}"):
            cluster.start()
            yield cluster
