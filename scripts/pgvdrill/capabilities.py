"""What an installation and a server can do, found by looking rather than by version.

A check that needs a capability that is missing reports `unknown` with the capability's
reason: never a pass, never a traceback. Versions appear only where a behaviour has no
other observable sign (which tar formats pg_verifybackup reads).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from pgvdrill.cluster.base import Cluster
from pgvdrill.errors import ConfigError
from pgvdrill.installation import Installation
from pgvdrill.proc.runner import ToolCall
from pgvdrill.proc.wait import poll_until

if TYPE_CHECKING:
    from pgvdrill.cluster.base import ToolRunner

# pg_verifybackup reads tar-format backups from PostgreSQL 18 on (before: plain only)
VERIFYBACKUP_TAR_MAJOR = 18
# pgvector's types a schema may use; vector since 0.1, halfvec and sparsevec since 0.7
VECTOR_TYPES = ("vector", "halfvec", "sparsevec")
# contrib extensions whose checks have no other source
CHECK_EXTENSIONS = ("amcheck", "pg_walinspect")
CRASH_LOG_WAIT = 5.0  # seconds the postmaster has to log the death of a backend it reaps
# a server log's line when a backend died of SIGILL (an instruction the CPU lacks)
_SIGILL = re.compile(r"([a-z][a-z ]*\(PID \d+\) was terminated by signal 4\b[^\n]*)"
                     r"(?:\n[^\n]*Failed process was running: ([^\n]*))?")
# XLOG_PAGE_MAGIC (src/include/access/xlog_internal.h): the first two bytes of every WAL
# page, little-endian; every major that changes the WAL format changes it
WAL_PAGE_MAGIC = {0xD113: 16, 0xD116: 17, 0xD118: 18}
_TOOL_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")


@dataclass(frozen=True)
class Capability:
    """One thing an installation or server can do; `reason` says why not (or what it is)."""

    name: str
    available: bool
    reason: str


def installation_capabilities(inst: Installation) -> dict[str, Capability]:
    """Capabilities read from an installation's files, without starting a server."""
    extension_dir = inst.sharedir() / "extension"
    where = f"PostgreSQL {inst.version} in {inst.bindir}"
    found = {name: _extension(extension_dir, inst.pkglibdir(), name, where)
             for name in ("vector", *CHECK_EXTENSIONS)}
    found["pg_verifybackup_tar"] = _tool_feature(
        "pg_verifybackup_tar", inst, "pg_verifybackup", inst.major >= VERIFYBACKUP_TAR_MAJOR,
        f"pg_verifybackup {inst.version} reads plain-format backups only (tar from "
        f"PostgreSQL {VERIFYBACKUP_TAR_MAJOR})")
    found["incremental_backup"] = _tool_feature(
        "incremental_backup", inst, "pg_combinebackup", True, "")
    for tool in ("pg_upgrade", "pg_waldump"):
        found[tool] = _tool_feature(tool, inst, tool, True, "")
    return found


def _extension(extension_dir: Path, libdir: Path, name: str, where: str) -> Capability:
    """Installable: a control file, a script reaching its default version (a base script
    or an update path's last step) and the module it loads."""
    control = extension_dir / f"{name}.control"
    if not control.is_file():
        return Capability(name, False, f"{where} has no {name} extension ({control} is missing)")
    text = control.read_text(errors="replace")
    version = re.search(r"^\s*default_version\s*=\s*'([^']+)'", text, re.MULTILINE)
    if version is None:
        return Capability(name, False, f"{control} names no default_version")
    scripts = [*extension_dir.glob(f"{name}--{version[1]}.sql"),
               *extension_dir.glob(f"{name}--*--{version[1]}.sql")]
    if not scripts:
        return Capability(name, False, f"{control} names version {version[1]}, but "
                                       f"{extension_dir} has neither {name}--{version[1]}.sql"
                                       " nor an update script to it")
    module = re.search(r"^\s*module_pathname\s*=\s*'\$libdir/([^']+)'", text, re.MULTILINE)
    if module and not (libdir / f"{module[1]}.so").is_file():
        return Capability(name, False, f"{name} {version[1]} loads {libdir / module[1]}.so, "
                                       "which is missing")
    return Capability(name, True, f"{name} {version[1]} ({control})")


def _tool_feature(name: str, inst: Installation, tool: str, supported: bool, why_not: str
                  ) -> Capability:
    path = inst.bindir / tool
    if not path.is_file():
        return Capability(name, False, f"{inst.bindir} has no {tool}")
    return Capability(name, supported, why_not if not supported else str(path))


@dataclass(frozen=True)
class ServerCapabilities:
    """What one database of a running server offers, as the server itself reports it."""

    version: str  # server_version, e.g. "16.2"
    version_num: int  # server_version_num, e.g. 160002
    pgvector: str | None  # the vector extension installed in this database
    pgvector_offered: str | None  # the version CREATE EXTENSION vector would install
    vector_types: frozenset[str]  # pgvector's types present in this database
    extensions: frozenset[str]  # every extension the server offers (pg_available_extensions)
    settings: frozenset[str]  # every setting name the server knows (pg_settings)

    @property
    def major(self) -> int:
        return self.version_num // 10000

    def extension(self, name: str) -> Capability:
        """Whether CREATE EXTENSION `name` can succeed on this server."""
        if name in self.extensions:
            return Capability(name, True, "offered by the server")
        return Capability(name, False, f"PostgreSQL {self.version} does not offer the {name} "
                                       "extension (not in pg_available_extensions)")

    def setting(self, name: str) -> Capability:
        """Whether the server knows the configuration parameter `name`."""
        if name in self.settings:
            return Capability(name, True, "a server setting")
        return Capability(name, False, f"PostgreSQL {self.version} has no {name} setting")

    def vector_type(self, name: str) -> Capability:
        """Whether pgvector's type `name` exists in this database (after CREATE EXTENSION)."""
        if name in self.vector_types:
            return Capability(name, True, f"pgvector {self.pgvector}")
        if self.pgvector is None:
            return Capability(name, False, "the vector extension is not installed here")
        return Capability(name, False, f"pgvector {self.pgvector} has no {name} type")

    def as_dict(self) -> dict[str, Any]:
        """What a report says about the server a drill ran on."""
        return {"postgresql": self.version, "pgvector": self.pgvector,
                "vector_types": sorted(self.vector_types)}


def server_capabilities(conn: psycopg.Connection[Any]) -> ServerCapabilities:
    """Probe the server and database `conn` is connected to (read-only queries)."""
    version, version_num = _row(conn, "SELECT current_setting('server_version'),"
                                      " current_setting('server_version_num')::int")
    installed, offered = _row(
        conn, "SELECT (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'vector'),"
              " (SELECT default_version FROM pg_catalog.pg_available_extensions"
              "  WHERE name = 'vector')")
    return ServerCapabilities(
        version=str(version).split()[0], version_num=int(version_num),
        pgvector=None if installed is None else str(installed),
        pgvector_offered=None if offered is None else str(offered),
        vector_types=vector_types(conn),
        extensions=frozenset(str(r[0]) for r in conn.execute(
            "SELECT name FROM pg_catalog.pg_available_extensions").fetchall()),
        settings=frozenset(str(r[0]) for r in conn.execute(
            "SELECT name FROM pg_catalog.pg_settings").fetchall()))


def vector_types(conn: psycopg.Connection[Any]) -> frozenset[str]:
    """pgvector's types that exist in the database (those the vector extension created)."""
    rows = conn.execute(
        "SELECT t.typname FROM pg_catalog.pg_type t JOIN pg_catalog.pg_depend d"
        " ON d.classid = 'pg_catalog.pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'"
        " JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'vector'"
        " WHERE t.typname = ANY(%s)", (list(VECTOR_TYPES),)).fetchall()
    return frozenset(str(r[0]) for r in rows)


def version_key(text: str) -> tuple[int, ...]:
    """An extension version as numbers to compare ("0.8.6" -> (0, 8, 6), "1.10" -> (1, 10));
    suffixes after "-" are ignored."""
    return tuple(int(part) for part in re.findall(r"\d+", text.split("-")[0]))


def _row(conn: psycopg.Connection[Any], query: str) -> tuple[Any, ...]:
    row = conn.execute(query).fetchone()
    assert row is not None, query
    return tuple(row)


def illegal_instruction(server_log: str, where: str, version: str) -> str | None:
    """Why pgvector cannot run on this machine when `server_log` (of a PostgreSQL `version`
    server whose programs are `where`, e.g. a bin directory) shows a backend killed by
    SIGILL, as pgvector built for newer CPUs (AVX-512) dies on its first distance; None
    when it shows none."""
    match = _SIGILL.search(server_log)
    if match is None:
        return None
    running = f" running {match.group(2)[:120]!r}" if match.group(2) else ""
    return (f"pgvector in {where} uses CPU instructions this machine lacks (the server "
            f"process died of SIGILL{running}; PostgreSQL {version}'s log: "
            f"{match.group(1).strip()!r})")


def died_of_sigill(cluster: Cluster, where: str, version: str) -> str | None:
    """`illegal_instruction` of `cluster`'s log, once its postmaster logged the death of
    the backend a connection was just lost to (or CRASH_LOG_WAIT passed)."""
    def crash_logged() -> str | None:
        log = cluster.server_log(200)
        return log if "terminated by signal" in log else None

    logged = poll_until(crash_logged, timeout=CRASH_LOG_WAIT)
    return illegal_instruction(logged or cluster.server_log(200), where, version)


def tool_major(tools: ToolRunner, tool: str) -> int:
    """The PostgreSQL major of `tool` as `tools` runs it (`tool --version`)."""
    out = tools.run_tool(ToolCall(tool, ["--version"])).stdout
    match = _TOOL_VERSION.search(out)
    if match is None:
        raise ConfigError(f"cannot read a PostgreSQL version from {tool} --version: {out!r}",
                          f"check that {tool} is PostgreSQL's")
    return int(match.group(1))


def require_tool_major(tools: ToolRunner, tool: str, major: int | None, what: str) -> int:
    """`tool`'s major if it is `major` (None: unknown, any will do), else a `ConfigError`:
    pg_waldump, pg_verifybackup and pg_basebackup read only their own major's WAL and
    backups (18's pg_waldump calls 16's WAL damaged), so another major's never judges one."""
    found = tool_major(tools, tool)
    if major is not None and found != major:
        raise ConfigError(
            f"{tool} is PostgreSQL {found}'s, {what} is PostgreSQL {major}'s: {tool} reads "
            "only its own major's WAL and backups, so it cannot check this one (not judged)",
            f"run pgvdrill with the client tools of PostgreSQL {major} (--pg-bin DIR of a "
            f"PostgreSQL {major} installation, or install postgresql-client-{major})")
    return found


def wal_major(segment: Path) -> int | None:
    """The major that wrote the WAL segment file `segment` (its first page's magic); None
    for a magic of no major known here or a file too short to have one."""
    with segment.open("rb") as f:
        head = f.read(2)
    return WAL_PAGE_MAGIC.get(int.from_bytes(head, "little")) if len(head) == 2 else None
