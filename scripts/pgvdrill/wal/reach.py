"""Targets the archived WAL cannot reach, refused before anything is restored.

A restore point or transaction id recovery is to stop at must be in the archive after the
backup's start (pg_waldump lists them; up to MAX_SCAN segments are read).

Recovery to a time stops before the first transaction that ended after that time (at or
after it, with --exclusive), and to an LSN at that position; when the archive holds
neither, PostgreSQL replays all of it and then stops with "recovery ended before
configured recovery target was reached". The archive's extent (continuity) and its last
commit or abort time (pg_waldump on its newest segments) show that in advance.
Restore points also stop a time target, but pg_waldump does not print their time: one
after the last transaction leaves the question to PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pgvdrill.cluster.base import ToolRunner
from pgvdrill.errors import RestoreError
from pgvdrill.proc.runner import Result, ToolCall
from pgvdrill.wal.continuity import Continuity
from pgvdrill.wal.names import format_lsn, parse_lsn
from pgvdrill.wal.pitr import Target

# "desc: COMMIT 2026-11-24 19:45:41.466854 UTC; ..." (prepared ones: "COMMIT_PREPARED 5: ...")
_ENDED = re.compile(r"desc: (?:COMMIT|ABORT)(?:_PREPARED \d+:)? "
                    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC|desc: RESTORE_POINT ")
_POINT = re.compile(r"desc: RESTORE_POINT (.*)$", re.M)
_ENDED_XID = re.compile(r"tx:\s+(\d+), lsn: [0-9A-F/]+, prev [0-9A-F/]+, desc: (?:COMMIT|ABORT) ")
MAX_SCAN = 1024  # segments (16 GiB) read for a name or xid; beyond that PostgreSQL decides
HINT = ("choose an earlier target, or recover as far as the archive goes with no target "
        "option{command}; if the WAL was not archived yet, run SELECT pg_switch_wal() on the "
        "source, check that archiving works (pgvdrill verify --all), and try again")


def last_transaction_end(tools: ToolRunner, archive: Path, segments: Sequence[str]
                         ) -> tuple[datetime | None, bool]:
    """When the last transaction in `segments` (recovery's order) committed or aborted,
    from the newest segment that records one (None when none does), and whether recovery
    to a later time certainly fails: not when pg_waldump failed on a newer segment
    without reading anything (a .partial file, damage) or a restore point follows."""
    for segment in reversed(segments):
        done = _waldump(tools, archive, segment)
        ended = _ENDED.findall(done.stdout)
        if ended:
            return ((datetime.fromisoformat(ended[-1]).replace(tzinfo=UTC), True)
                    if ended[-1] else (None, False))
        if done.returncode != 0:
            return None, False
    return None, True


def stopping_points(tools: ToolRunner, archive: Path, segments: Sequence[str]
                    ) -> tuple[list[str], set[int]] | None:
    """The restore points named in `segments` and the ids of the transactions that ended
    there (committed or aborted); None when that cannot be told for sure: too many
    segments to read, one pg_waldump failed on without reading a record, or a prepared
    transaction ended (its listing shows another id)."""
    if len(segments) > MAX_SCAN:
        return None
    names: list[str] = []
    xids: set[int] = set()
    for segment in segments:
        done = _waldump(tools, archive, segment)
        if (done.returncode != 0 and "rmgr: " not in done.stdout) or "_PREPARED" in done.stdout:
            return None
        names += _POINT.findall(done.stdout)
        xids |= {int(xid) for xid in _ENDED_XID.findall(done.stdout)}
    return names, xids


def _waldump(tools: ToolRunner, archive: Path, segment: str) -> Result:
    """pg_waldump's transaction and XLOG records of one archived segment (times in UTC)."""
    return tools.run_tool(ToolCall(
        "pg_waldump", ["--path", archive, "--rmgr", "Transaction", "--rmgr", "XLOG", segment],
        check=False, env={"TZ": "UTC"}))  # an unfinished last record ends it non-zero


def refuse_beyond_archive(tools: ToolRunner, archive: Path, reach: Continuity,
                          target: Target, end_command: str = "") -> None:
    """`RestoreError` for an LSN past the archive's last contiguous segment, a time not
    before its last transaction end, a restore point or transaction it does not hold:
    recovery could not stop there. `end_command`: the command line that recovers to the
    end of the archive instead, for the hint."""
    hint = HINT.format(command=f" ({end_command})" if end_command else "")
    extent = (f"{len(reach.segments)} segment(s) from {format_lsn(reach.start)} in {archive}"
              + (f"; {reach.gap}" if reach.gap else ""))
    if target.kind == "lsn" and parse_lsn(target.value) > reach.reachable:
        raise RestoreError(
            f"recovery target LSN {target.value} is beyond the archived WAL, which carries "
            f"recovery to {format_lsn(reach.reachable)} ({extent})", hint)
    if target.kind in ("name", "xid"):
        _refuse_missing_point(tools, archive, reach, target, extent)
    if target.kind != "time":
        return
    last, certain = last_transaction_end(tools, archive, reach.segments)
    wanted = datetime.fromisoformat(target.value)
    if certain and (last is None or wanted > last or (wanted == last and target.inclusive)):
        found = (f"its last transaction ended at {last.isoformat()}" if last else
                 "it records no transaction end")
        raise RestoreError(
            f"recovery target time {target.value} is not before the archived WAL ends: "
            f"{found} ({extent}); recovery to a time stops at the first transaction that "
            "ended after it, so it would replay the archive and stop short of the target",
            hint)


def _refuse_missing_point(tools: ToolRunner, archive: Path, reach: Continuity,
                          target: Target, extent: str) -> None:
    """`RestoreError` for a restore point or transaction the archive does not hold after
    the backup's start (recovery would replay it all and stop short)."""
    found = stopping_points(tools, archive, reach.segments)
    if found is None:
        return
    names, xids = found
    if target.kind == "name" and target.value not in names:
        held = ", ".join(repr(n) for n in names[-10:]) or "none"
        raise RestoreError(
            f"restore point {target.value!r} is not in the archived WAL after the backup's "
            f"start ({extent}); the restore points there: {held}",
            "check the name given to pg_create_restore_point(), or choose another target")
    if target.kind == "xid" and int(target.value) % 2**32 not in xids:
        raise RestoreError(
            f"transaction {target.value} does not commit or abort in the archived WAL after "
            f"the backup's start ({extent}): recovery would replay it all and stop short",
            "check the id (a top-level transaction's, as txid_current() gave it: a "
            "subtransaction never matches), or choose another target")
