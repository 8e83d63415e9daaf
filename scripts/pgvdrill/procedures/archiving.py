"""Archiving as a procedure's drill observes it, through PostgreSQL's own bookkeeping
(pg_stat_archiver), whatever the archive_command does with the segment; and a recovery
target placed between two sets of rows, so a point-in-time recovery is checked exactly."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pgvdrill.cluster import Cluster
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.proc.wait import poll_until
from pgvdrill.procedures.steps import first_lines
from pgvdrill.verify import Snapshot, snapshot

MARKER_TABLE = "procedure_marker"
ARCHIVER_RETRIES = 3  # PostgreSQL retries a failed archive_command this often, then waits


@dataclass(frozen=True)
class Archiver:
    """pg_stat_archiver at one moment."""

    last_archived: str  # segment name (24 hex digits), "" when none yet
    last_failed: str
    failed: int

    @classmethod
    def of(cls, cluster: Cluster) -> Archiver:
        last, failed_wal, failed = cluster.query(
            "SELECT coalesce(last_archived_wal, ''), coalesce(last_failed_wal, ''), "
            "failed_count FROM pg_stat_archiver")[0]
        return cls(str(last)[:24], str(failed_wal)[:24], int(str(failed)))


def archive_with(cluster: Cluster, command: str) -> None:
    """Make `command` the archive_command (archive_mode on) and restart, so that the
    archiver certainly runs the new command from the next segment on."""
    cluster.configure(archive_mode="on", archive_command=command)
    cluster.stop()
    cluster.start()


def switch_wal(cluster: Cluster) -> str:
    """Write a WAL record and close the segment holding it; the segment's name."""
    cluster.query("SELECT pg_logical_emit_message(false, 'pgvdrill', 'switch')")
    return str(cluster.query("SELECT pg_walfile_name(pg_switch_wal())")[0][0])


def archive_next(cluster: Cluster, *, timeout: float = 60,
                 failures: int = ARCHIVER_RETRIES) -> tuple[str, str]:
    """Close the current segment (`switch_wal`) and wait until PostgreSQL has recorded it
    as archived: (segment, "") then, else (segment, why not): `failures` failed attempts
    (with the archive_command's error from the server log) or the timeout."""
    before = Archiver.of(cluster)
    mark = cluster.log_position()
    segment = switch_wal(cluster)
    seen = [before]

    def settled() -> bool:
        now = seen[0] = Archiver.of(cluster)
        return now.last_archived >= segment or now.failed - before.failed >= failures

    poll_until(settled, timeout=timeout, interval=0.1)
    now = seen[0]
    if now.last_archived >= segment:
        return segment, ""
    said = [line for line in cluster.log_since(mark).splitlines()
            if "DETAIL" not in line and "HINT" not in line]
    return segment, (
        f"segment {segment} not archived: archive_command failed "
        f"{now.failed - before.failed} time(s) (last failed {now.last_failed or 'none'})"
        + (f": {first_lines(chr(10).join(said[-2:]))}" if said else ""))


@dataclass(frozen=True)
class RecoveryTarget:
    """A target time with rows committed before it (in `source`, the snapshot) and rows
    committed after it (which a recovery to the target must not bring back)."""

    source: Snapshot
    time: str  # e.g. "2025-11-01 10:00:01+00", whole seconds as the runbook writes it
    archived: str  # "" when the WAL after the target was archived, else why not


def place_target(cluster: Cluster, rows: int = 100) -> RecoveryTarget:
    """On a source that archives: commit `rows` rows, snapshot, set the target a moment
    later (the next whole second), commit `rows` more and archive them."""
    with cluster.connect(SOURCE_DB) as conn:
        conn.execute(f"CREATE TABLE {MARKER_TABLE} (id int PRIMARY KEY, side text NOT NULL)")
        conn.execute(f"INSERT INTO {MARKER_TABLE} SELECT i, 'before' "
                     f"FROM generate_series(1, {rows}) i")
        snap = snapshot(conn)
    target = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
    time.sleep(max(0.0, (target - datetime.now(UTC)).total_seconds()) + 0.05)
    with cluster.connect(SOURCE_DB) as conn:
        conn.execute(f"INSERT INTO {MARKER_TABLE} SELECT i, 'after' "
                     f"FROM generate_series({rows + 1}, {2 * rows}) i")
    return RecoveryTarget(snap, target.strftime("%Y-%m-%d %H:%M:%S+00"),
                          archive_next(cluster)[1])
