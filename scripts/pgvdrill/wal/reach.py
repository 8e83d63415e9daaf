"""Targets the archived WAL cannot reach, refused before anything is restored.

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
from pgvdrill.wal.continuity import Continuity
from pgvdrill.wal.names import format_lsn, parse_lsn
from pgvdrill.wal.pitr import Target

# "desc: COMMIT 2026-11-24 19:45:41.466854 UTC; ..." (prepared ones: "COMMIT_PREPARED 5: ...")
_ENDED = re.compile(r"desc: (?:COMMIT|ABORT)(?:_PREPARED \d+:)? "
                    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC|desc: RESTORE_POINT ")
HINT = ("choose an earlier target, or --target latest to recover as far as the archive goes; "
        "if the WAL was not archived yet, run SELECT pg_switch_wal() on the source, check "
        "that archiving works (pgvdrill verify), and try again")


def last_transaction_end(tools: ToolRunner, archive: Path, segments: Sequence[str]
                         ) -> tuple[datetime | None, bool]:
    """When the last transaction in `segments` (recovery's order) committed or aborted,
    from the newest segment that records one (None when none does), and whether recovery
    to a later time certainly fails: not when pg_waldump failed on a newer segment
    without reading anything (a .partial file, damage) or a restore point follows."""
    for segment in reversed(segments):
        done = tools.run_tool(
            "pg_waldump", ["--path", archive, "--rmgr", "Transaction", "--rmgr", "XLOG",
                           segment],
            check=False, env={"TZ": "UTC"})  # an unfinished last record ends it non-zero
        ended = _ENDED.findall(done.stdout)
        if ended:
            return ((datetime.fromisoformat(ended[-1]).replace(tzinfo=UTC), True)
                    if ended[-1] else (None, False))
        if done.returncode != 0:
            return None, False
    return None, True


def refuse_beyond_archive(tools: ToolRunner, archive: Path, reach: Continuity,
                          target: Target) -> None:
    """`RestoreError` for an LSN past the archive's last contiguous segment, or a time after
    its last transaction end: recovery could not stop there."""
    extent = (f"{len(reach.segments)} segment(s) from {format_lsn(reach.start)} in {archive}"
              + (f"; {reach.gap}" if reach.gap else ""))
    if target.kind == "lsn" and parse_lsn(target.value) > reach.reachable:
        raise RestoreError(
            f"recovery target LSN {target.value} is beyond the archived WAL, which carries "
            f"recovery to {format_lsn(reach.reachable)} ({extent})", HINT)
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
            HINT)
