"""What a provider drill reads from the source before restoring (read-only queries, each
on its own: one the source will not answer is None, said as unknown): its system
identifier (whose backup the copy is), where its WAL is (how far the archive must reach),
the last WAL file its archiver archived, its clock and archive_timeout (the RPO:
drill/provider_rpo.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from pgvdrill.errors import BackupError
from pgvdrill.server import ExternalServer
from pgvdrill.wal.names import format_lsn, parse_lsn

# where the source's WAL is: a primary's insert position, a standby's replay position
WAL_LSN = ("SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
           "ELSE pg_current_wal_lsn() END::text")
_IDENTIFIER = re.compile(r"^Database system identifier:\s+([0-9]{1,20})$", re.M)


@dataclass(frozen=True)
class SourceWal:
    """The source's facts a provider drill compares its backup with (None: unknown)."""

    system_identifier: str | None
    wal_lsn: int | None
    last_archived: str | None
    at: datetime | None = None  # the source's clock when read
    archive_timeout: int | None = None  # seconds; 0: off

    def same_server(self, controldata: str, backup_id: str) -> dict[str, object]:
        """The restored copy's system identifier (from its pg_controldata output) against
        the source's: BackupError when they differ (a backup of another server); the
        comparison for the report, its status unknown when either cannot be read."""
        found = _IDENTIFIER.search(controldata)
        copy = found.group(1) if found else None
        if copy and self.system_identifier and copy != self.system_identifier:
            raise BackupError(
                f"backup {backup_id} is of the server with system identifier {copy}, the "
                f"source is {self.system_identifier}: not a backup of this source",
                "check which server the tool backs up (another server, or this one before "
                "an initdb or pg_upgrade); drill the backup against its own server")
        status = "pass" if copy and self.system_identifier else "unknown"
        return {"copy": copy, "source": self.system_identifier, "status": status,
                **({} if status == "pass" else {"why": "not readable on the " + (
                    "restored copy" if copy is None else "source (pg_control_system())")})}

    def as_dict(self) -> dict[str, object]:
        return {"system_identifier": self.system_identifier,
                "wal_lsn": None if self.wal_lsn is None else format_lsn(self.wal_lsn),
                "last_archived": self.last_archived}


def read_source(source: ExternalServer) -> SourceWal:
    """The source's facts (see SourceWal), each None when the source will not say."""
    ident = _one(source, "SELECT system_identifier::text FROM pg_control_system()")
    lsn = _one(source, WAL_LSN)
    try:
        wal_lsn = None if lsn is None else parse_lsn(lsn)
    except ValueError:
        wal_lsn = None
    epoch = _one(source, "SELECT extract(epoch FROM now())::text")
    timeout = _one(source, "SELECT setting FROM pg_catalog.pg_settings "
                           "WHERE name = 'archive_timeout'")
    return SourceWal(ident if ident and ident.isdigit() else None, wal_lsn,
                     _one(source, "SELECT last_archived_wal FROM pg_stat_archiver"),
                     _clock(epoch), int(timeout) if timeout and timeout.isdigit() else None)


def _clock(epoch: str | None) -> datetime | None:
    """The source's now(), from its epoch seconds."""
    try:
        return None if epoch is None else datetime.fromtimestamp(float(epoch), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _one(source: ExternalServer, query: str) -> str | None:
    try:
        rows = source.query(query)
    except psycopg.Error:
        return None
    return None if not rows or rows[0][0] is None else str(rows[0][0])
