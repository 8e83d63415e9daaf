"""The comparison point of the base backup `drill --take` takes of a source that keeps
changing: a snapshot of the source and a WAL position at which a restored copy shows
exactly what that snapshot shows.

A restored base backup is consistent only from its end LSN on, so the source cannot be
read "as of the backup". The drill reads the source after the backup instead and brings
the copy forward to that moment:

1. Before pg_basebackup starts, pg_receivewal streams the source's WAL into a scratch
   directory (no replication slot: nothing is left on the source). The backup's own WAL
   ends at its end LSN; this stream carries recovery on from there without a gap.
2. After the backup, one READ ONLY repeatable-read transaction's first statement reads
   `pg_current_snapshot()` (the transaction's snapshot, taken when that statement starts)
   and `pg_current_wal_insert_lsn()` (read while it runs, so later): L. The source is
   then snapshotted in that same transaction. Any transaction the snapshot sees had
   written its commit record before the snapshot was taken (a commit is recorded in WAL
   before it becomes visible), so before L.
3. pg_receivewal --endpos L completes the stream up to L (a server sends only WAL it has
   flushed; a primary flushes the last partial page at the latest after the background
   writer's next running-transactions record, 15 s after any activity); pg_waldump lists
   the records from the backup's end to L. The reverse does not hold: a transaction may have written
   its commit record before L (even before the snapshot, while waiting for its flush)
   yet not be seen by the snapshot. The target is therefore the last record before the
   first commit the snapshot does not see (or before L, when there is none); every commit
   the snapshot sees must lie before it, else no WAL position matches the snapshot and
   the point is taken again (the commits crossed).
4. The restored copy recovers to that record (inclusive) and pauses, which gives its next
   transaction id; promoted, no transaction the snapshot does not see may be committed in
   it (pg_xact_status): a final proof, which makes any commit the WAL listing missed (one
   before the backup's end, say) an inconclusive drill that says so, never a pass and
   never a reported difference (physical.drill).

Sequences are not transactional: they are read before the backup begins (the target
lies after its end, yet may lie before any later read) and again by the snapshot, and a
restored one must lie between the two, plus the values WAL logs ahead
(verify.schema.SequenceWindow). The source is only read: the backup role's
LOGIN REPLICATION and pg_read_all_data are enough, and a standby cannot give the point
(pg_current_wal_insert_lsn() fails in recovery): drill a replica without --take.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Self

import psycopg

from pgvdrill import osuser
from pgvdrill.capabilities import require_tool_major, wal_major
from pgvdrill.drill.physical import ComparisonPoint
from pgvdrill.errors import DrillError, clean_after
from pgvdrill.proc import runner
from pgvdrill.proc.background import Process
from pgvdrill.server import ExternalServer
from pgvdrill.verify import Snapshot, snapshot
from pgvdrill.verify.schema import Sequence, SequenceWindow, read_sequences
from pgvdrill.verify.session import reading
from pgvdrill.wal.names import SEGMENT_RE, format_lsn, parse_lsn

ATTEMPTS = 3
POINT_SQL = "SELECT pg_current_snapshot()::text, pg_current_wal_insert_lsn()::text"
_RECORD = re.compile(r"^rmgr: (\S+) +len \(rec/tot\): +\d+/ *\d+, tx: +(\d+), "
                     r"lsn: ([0-9A-F]+/[0-9A-F]+), prev \S+, desc: (\S+)(?: (\d+):)?", re.M)


class WalStream:
    """pg_receivewal of the source's WAL into `directory`, from before the backup on
    (`with`), completed up to a given LSN by `until`."""

    def __init__(self, source: ExternalServer, directory: Path) -> None:
        self.source = source
        self.directory = directory
        self.process: Process | None = None

    def _argv(self, *extra: str) -> list[str]:
        return [str(self.source.tools.tool("pg_receivewal")), "-D", str(self.directory),
                "--no-loop", *extra]

    def __enter__(self) -> Self:
        self.directory.mkdir(mode=0o700, exist_ok=True)
        self.process = Process(self._argv("--verbose"),
                               self.directory.with_suffix(".receivewal.log"),
                               env=self.source.env()).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        def stop() -> None:
            if self.process is not None:
                self.process.stop()
            shutil.rmtree(self.directory.with_suffix(".segments"), ignore_errors=True)

        clean_after(exc, stop, "the WAL stream (pg_receivewal)")

    def until(self, lsn: int, timeout: float = 300) -> None:
        """Stop the background stream (the first time) and stream again from the newest
        segment, which pg_receivewal keeps as .partial and streams anew, to `lsn`."""
        if self.process is not None:
            self.process.check_running()
            self.process.stop()
            self.process = None
        runner.run(self._argv("--endpos", format_lsn(lsn)), env=self.source.env(),
                   timeout=timeout,
                   hint=f"the source did not send its WAL up to {format_lsn(lsn)} in "
                        f"{timeout:.0f}s (it sends only WAL it has flushed); run the drill "
                        "again")
        osuser.chown_tree(self.directory, osuser.server_user())

    def complete_names(self) -> Path:
        """A directory naming every streamed segment as a complete one (the newest is a
        .partial file), for pg_waldump."""
        view = self.directory.with_suffix(".segments")
        shutil.rmtree(view, ignore_errors=True)
        view.mkdir()
        for path in self.directory.iterdir():
            (view / path.name.removesuffix(".partial")).symlink_to(path)
        return view


def sequences_now(source: ExternalServer) -> dict[str, Sequence]:
    """The source's sequences as they are now (no snapshot holds them)."""
    with source.connect() as conn, reading(conn):
        return read_sequences(conn)


def comparison_point(source: ExternalServer, stream: WalStream, backup_end: int,
                     timeline: int, before: dict[str, Sequence], say: Callable[[str], None]
                     ) -> tuple[Snapshot, ComparisonPoint]:
    """The source's snapshot and the point a restored copy of the backup ending at
    `backup_end` recovers to so that it shows the same (module docstring); `before`: the
    source's sequences read before the backup began."""
    for attempt in range(1, ATTEMPTS + 1):
        with source.connect() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            try:
                row = conn.execute(POINT_SQL).fetchone()
            except psycopg.errors.ObjectNotInPrerequisiteState as exc:
                raise DrillError(
                    f"the source {source.describe()} is in recovery: a standby has no WAL "
                    f"insert position to compare a fresh base backup with ({exc})",
                    "drill a standby without --take, with its replay paused") from exc
            assert row is not None
            xids, insert = str(row[0]), parse_lsn(str(row[1]))
            snap = snapshot(conn)
        stream.until(insert)
        target, crossed = _target(source, stream.complete_names(), backup_end, insert,
                                  timeline, xids)
        if target is not None:
            say(f"source {source.describe()}: comparison point {format_lsn(target)} (snapshot "
                f"{xids}, WAL insert position {format_lsn(insert)})")
            window = SequenceWindow(before, snap.schema.sequences)
            return (replace(snap, sequence_window=window),
                    ComparisonPoint(stream.directory, target, xids))
        say(f"  comparison point {attempt}: {crossed}; taking it again")
    raise DrillError(f"inconclusive: no WAL position of the source matched its snapshot in "
                     f"{ATTEMPTS} attempts ({crossed}); the base backup is not judged",
                     "run the drill again, at a quieter time")


def _target(source: ExternalServer, wal: Path, start: int, end: int, timeline: int,
            xids: str) -> tuple[int | None, str]:
    """The last WAL record from `start` to `end` before the first commit that the snapshot
    `xids` does not see, or None and why when a commit it sees comes after that one. A
    `ConfigError` when the source's pg_waldump is not of the WAL's major (it cannot read it:
    not the backup's fault)."""
    segments = sorted(p for p in wal.iterdir() if SEGMENT_RE.fullmatch(p.name))
    require_tool_major(source.tools, "pg_waldump",
                       wal_major(segments[0]) if segments else None,
                       f"the source's WAL streamed into {wal}")
    done = runner.run([source.tools.tool("pg_waldump"), "--path", wal, "--timeline",
                       str(timeline), "--start", format_lsn(start), "--end", format_lsn(end)],
                      check=False)
    if done.returncode != 0 and not stopped_at_end(done.stderr, end):
        raise DrillError(f"pg_waldump could not read the source's WAL from the backup's end "
                         f"{format_lsn(start)} to {format_lsn(end)} in {wal}: "
                         f"{done.stderr.strip()[-500:]}", "run the drill again")
    xmin, xmax, running = xids.split(":")
    visible = snapshot_sees(int(xmin), int(xmax), {int(x) for x in running.split(",") if x})
    records = [(parse_lsn(lsn), rmgr, int(prepared or tx), desc)
               for rmgr, tx, lsn, desc, prepared in _RECORD.findall(done.stdout)]
    commits = [(lsn, xid) for lsn, rmgr, xid, desc in records
               if rmgr == "Transaction" and desc in ("COMMIT", "COMMIT_PREPARED")]
    unseen = [(lsn, xid) for lsn, xid in commits if not visible(xid)]
    if not unseen:
        return (records[-1][0] if records else None,
                f"no WAL record from {format_lsn(start)} to {format_lsn(end)}")
    first, xid = unseen[0]
    later = [seen for lsn, seen in commits if lsn > first and visible(seen)]
    before = [lsn for lsn, *_ in records if lsn < first]
    if later or not before:
        return None, (f"transaction {xid} committed at {format_lsn(first)}, unseen by the "
                      f"snapshot, before {later[0]}, which it sees" if later else
                      f"transaction {xid}, unseen by the snapshot, committed right at the "
                      "backup's end")
    return before[-1], ""


def stopped_at_end(stderr: str, end: int) -> bool:
    """pg_waldump failed on the record starting at `end` or later (no record is there yet:
    stale bytes of a recycled segment, or zeros): every record before it was read."""
    where = re.findall(r" at ([0-9A-F]+/[0-9A-F]+)", stderr.strip().splitlines()[-1]
                       if stderr.strip() else "")
    return bool(where) and parse_lsn(where[-1]) >= end


def snapshot_sees(xmin: int, xmax: int, running: set[int]) -> Callable[[int], bool]:
    """Whether the snapshot (xid8 bounds) sees the commit of a 32-bit transaction id as
    pg_waldump prints it (widened to the 64-bit id nearest below xmax)."""

    def sees(xid: int) -> bool:
        full = (xmax & ~0xFFFFFFFF) | xid
        if full >= xmax + 2**31:
            full -= 2**32
        elif full < xmax - 2**31:
            full += 2**32
        return full < xmin or (full < xmax and full not in running)

    return sees
