"""Is a `restore logical` target the source? Asked before anything is restored, in order:

1. The same place: the target's connection (the address libpq connected to, or its socket
   directory, and port) against every place the [source] conninfo resolves to (its host
   names looked up, its service and libpq's defaults resolved by libpq itself). Two
   addresses of this host (loopback, an interface's, a socket directory) with one port are
   one server. The same place and the same database (or any database, for what changes
   the whole server: --with-globals' roles) is the source, whatever else is known.
2. The same server: the live source's system identifier and postmaster start time equal
   the target's.
3. The same identity: the target's system identifier and database OID equal the source's,
   as the live source shows them or as the backup's catalog entry records them. A primary,
   its standbys and a physical copy restored from a backup all share it, so this is
   refused unless the operator says the target is such a copy (--into-copy-of-source), and
   even then when the target streams WAL to standbys (a production primary).
4. Unverifiable: the target hides its system identifier, or the live source cannot answer
   and the catalog cannot vouch (it records no identity, or its entry could have been
   written by someone else: owned by another user than the caller or root, writable by
   others, or a symlink, in the repository's root or catalog directory too).
--force skips all of it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import socket
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from pgvdrill.backup.source import server_facts, source_server
from pgvdrill.config import Config
from pgvdrill.errors import ConfigError, RestoreError
from pgvdrill.repository import Entry
from pgvdrill.server import ExternalServer

COPY_OPTION = "--into-copy-of-source"


@dataclass(frozen=True)
class Identity:
    """Which database a server holds: its system identifier, the database's OID (None in
    catalog entries written before pgvdrill recorded it) and name; for a running server
    also when its postmaster started, which tells the server itself from the other servers
    sharing its identity (standbys, copies)."""

    system_identifier: str
    database_oid: int | None
    dbname: str
    started: str | None = None

    @classmethod
    def of(cls, facts: Mapping[str, Any]) -> Identity | None:
        """From server_facts() or a catalog entry's `source`; None without a system
        identifier (the user may not run pg_control_system())."""
        ident, oid = facts.get("system_identifier"), facts.get("database_oid")
        if not ident:
            return None
        return cls(str(ident), int(oid) if oid is not None else None, str(facts.get("dbname")),
                   facts.get("postmaster_started"))

    def same_database(self, other: Identity) -> bool:
        if self.system_identifier != other.system_identifier:
            return False
        if self.database_oid is not None and other.database_oid is not None:
            return self.database_oid == other.database_oid
        return self.dbname == other.dbname

    def describe(self) -> str:
        oid = f", OID {self.database_oid}" if self.database_oid is not None else ""
        return f"system identifier {self.system_identifier}, database {self.dbname}{oid}"


def running_identity(server: ExternalServer) -> Identity | None:
    """The identity of a running server's database (server_facts, plus its postmaster's
    start time); None when it hides its system identifier. ConfigError when unreachable."""
    facts = server_facts(server)
    facts["postmaster_started"] = str(server.query("SELECT pg_postmaster_start_time()")[0][0])
    return Identity.of(facts)


# -- places --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Place:
    """Where a connection goes: an IP address or a socket directory, and a port."""

    address: str
    port: str

    def is_local(self) -> bool:
        """A socket directory, a loopback address or one of this host's own."""
        if self.address.startswith(("/", "@")):
            return True
        try:
            ip = ipaddress.ip_address(self.address.split("%")[0])
        except ValueError:
            return False
        if ip.is_loopback:
            return True
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((self.address, 0))  # only an address this host has binds
            except OSError:
                return False
        return True

    def same_server(self, other: Place) -> bool:
        return self.port == other.port and (
            self.address == other.address or (self.is_local() and other.is_local()))

    def describe(self) -> str:
        where = f"socket directory {self.address}" if self.address.startswith("/") \
            else self.address
        return f"{where} port {self.port}"


def connected_place(server: ExternalServer) -> tuple[Place, str]:
    """Where a connection to `server` actually went, and the database it opened."""
    with server.connect() as conn:
        info = conn.info
        address = info.hostaddr or info.host
        if address.startswith("/"):
            address = os.path.realpath(address)
        return Place(address, str(info.port)), info.dbname


def conninfo_places(conninfo: Mapping[str, str]) -> tuple[set[Place], str | None]:
    """Every place `conninfo` can lead to, and its database (None: libpq could not say):
    its hosts (comma-separated lists too) looked up, plus where libpq itself goes (its
    service file, environment and defaults applied), asked without logging in."""
    places: set[Place] = set()
    hosts = (conninfo.get("hostaddr") or conninfo.get("host") or "").split(",")
    ports = (conninfo.get("port") or "").split(",")
    for i, host in enumerate(h for h in hosts if h):
        port = (ports[i] if len(ports) == len(hosts) else ports[0]) or "5432"
        places |= _looked_up(host, port)
    dbname: str | None = conninfo.get("dbname") or None
    attempt = psycopg.pq.PGconn.connect(psycopg.conninfo.make_conninfo(
        **{"connect_timeout": "10", **conninfo}).encode())
    try:
        host = (attempt.hostaddr or attempt.host or b"").decode()
        port = (attempt.port or b"5432").decode()
        if host:
            places |= _looked_up(host, port)
        dbname = dbname or (attempt.db or b"").decode() or None
    finally:
        attempt.finish()
    return places, dbname


def _looked_up(host: str, port: str) -> set[Place]:
    if host.startswith(("/", "@")):
        return {Place(os.path.realpath(host) if host.startswith("/") else host, port)}
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return {Place(host, port)}
    return {Place(str(info[4][0]), port) for info in found}


# -- the catalog as a witness --------------------------------------------------------------

def catalog_distrust(entry_file: Path) -> str | None:
    """Why the catalog entry `entry_file` cannot vouch for the source's identity (someone
    other than the caller or root could have written it), or None."""
    me = os.geteuid()
    catalog = entry_file.parent
    for path in (catalog.parent.resolve(), catalog.parent.resolve() / catalog.name,
                 catalog.parent.resolve() / catalog.name / entry_file.name):
        try:
            st = path.lstat()
        except OSError as exc:
            return f"{path}: {exc.strerror}"
        if stat.S_ISLNK(st.st_mode):
            return f"{path} is a symlink"
        if st.st_uid not in (0, me):
            return (f"{path} is owned by {_user(st.st_uid)}, not by "
                    + ("root" if me == 0 else f"{_user(me)} or root"))
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return f"{path} is writable by others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _user(uid: int) -> str:
    with contextlib.suppress(KeyError):
        return pwd.getpwuid(uid).pw_name
    return f"uid {uid}"


# -- the check -----------------------------------------------------------------------------

def refuse_the_source(config: Config, entry: Entry, entry_file: Path, target: ExternalServer,
                      *, server_wide: bool = False, copy_of_source: bool = False) -> None:
    """RestoreError when `target` is, or may be, the source's database (`server_wide`: the
    source's server, for what changes a whole server: roles); see the module's docstring.
    `copy_of_source`: the operator says the target is a physical copy of the source."""
    target_id = running_identity(target)
    if target_id is None:
        user = str(target.query("SELECT current_user")[0][0]).replace('"', '""')
        raise RestoreError(f"cannot verify that restore target {target.describe()} is not the "
                           "source: it does not show its system identifier to this user "
                           "(pg_control_system() not allowed); nothing was restored",
                           "connect as a superuser, or let this user see it (as a superuser, in "
                           f'the target database: GRANT EXECUTE ON FUNCTION pg_control_system() TO '
                           f'"{user}"), or, only when you are sure the target is not the '
                           "source, add --force")
    what = "server" if server_wide else "database"
    roles = ": --with-globals would create roles on the source's server" if server_wide else ""
    live, live_problem = None, "no [source] configured"
    if config.source is not None:
        _refuse_same_place(config.source.conninfo, target, server_wide, roles)
        live_problem = "the source does not show its system identifier to its user"
        try:
            live = running_identity(source_server(config))
        except ConfigError as exc:  # the source is down (the usual reason to restore)
            live_problem = exc.message.splitlines()[0]
    if live is not None and live.system_identifier == target_id.system_identifier and \
            live.started == target_id.started and (server_wide or live.same_database(target_id)):
        raise RestoreError(f"restore target {target.describe()} is the configured source: it "
                           f"is the same server ({target_id.describe()}, started "
                           f"{target_id.started}){roles}", _FORCE_HINT)
    distrust = catalog_distrust(entry_file)
    recorded = Identity.of(entry.source) if distrust is None else None
    for known, whence in ((live, "as the configured source shows it now"),
                          (recorded, f"as backup {entry.id}'s catalog entry records it")):
        if known is not None and known.system_identifier == target_id.system_identifier \
                and (server_wide or known.same_database(target_id)):
            _refuse_shared_identity(target, target_id, what, whence, roles, copy_of_source)
    if live is None and recorded is None:
        catalog = (f"backup {entry.id}'s catalog entry cannot vouch for it ({distrust})"
                   if distrust else
                   f"backup {entry.id}'s catalog entry records no system identifier")
        raise RestoreError(
            f"cannot verify that restore target {target.describe()} is not the source: "
            f"{catalog}, and the configured source cannot tell ({live_problem}); nothing "
            "was restored",
            "make the source reachable for pgvdrill (its [source] conninfo)"
            + (f", or make {entry_file} and the directories above it in the repository "
               "root's own and writable by nobody else (chown root, chmod go-w)"
               if distrust else "")
            + ", or, only when you are sure the target is not the source, add --force")


def _refuse_same_place(conninfo: Mapping[str, str], target: ExternalServer, server_wide: bool,
                       roles: str) -> None:
    places, source_db = conninfo_places(conninfo)
    target_place, target_db = connected_place(target)
    same = next((p for p in places if p.same_server(target_place)), None)
    if same is None or not (server_wide or source_db is None or source_db == target_db):
        return
    raise RestoreError(
        f"restore target {target.describe()} is the configured source: it is reached at "
        f"{target_place.describe()}, the same server as the [source] conninfo's "
        f"{same.describe()}" + ("" if server_wide else f", and the same database {target_db}")
        + roles, _FORCE_HINT)


def _refuse_shared_identity(target: ExternalServer, target_id: Identity, what: str,
                            whence: str, roles: str, copy_of_source: bool) -> None:
    if copy_of_source:
        standbys = int(str(target.query("SELECT count(*) FROM pg_stat_replication")[0][0]))
        if not standbys:
            return
        raise RestoreError(
            f"restore target {target.describe()} has the source's identity and streams WAL "
            f"to {standbys} standby(s): a primary of the source's replication cluster, not a "
            f"copy ({COPY_OPTION} was given)", _FORCE_HINT)
    raise RestoreError(
        f"restore target {target.describe()} has the source's {what} identity "
        f"({target_id.describe()}, {whence}): it is the source itself, a primary or standby "
        f"of it (they share it) or a physical copy restored from its backup{roles}",
        f"restore into another database or server; if the target is a physical copy of the "
        f"source (restored from a backup, not replicating to or from it), add {COPY_OPTION}; "
        "to restore over the source itself, --force")


_FORCE_HINT = ("restore into another database or server; if you really mean to restore over "
               "the source, add --force")
