"""Point-in-time recovery: a restored base backup (a stopped cluster) plus a WAL archive,
recovered to a target and timed.

Recovery settings go into pgvdrill's included conf file (`Cluster.configure`) next to a
`recovery.signal`; postgresql.conf is never written (the runbook's `cat > postgresql.conf`
step replaces the user's whole configuration).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import psycopg

from pgvdrill.cluster import Cluster
from pgvdrill.cluster.base import ConfigValue
from pgvdrill.errors import DrillError, RestoreError
from pgvdrill.proc import runner
from pgvdrill.proc.wait import GiveUp, poll_until, wait_until
from pgvdrill.wal.continuity import check_continuity
from pgvdrill.wal.names import DEFAULT_SEGMENT_SIZE, Segment, format_lsn, parse_lsn

TargetKind = Literal["time", "xid", "lsn", "name", "immediate", "end"]
Action = Literal["promote", "pause", "shutdown"]

NOT_REACHED = "recovery ended before configured recovery target was reached"
BEFORE_CONSISTENT = "requested recovery stop point is before consistent recovery point"
SHUTDOWN_AT_TARGET = "shutdown at recovery target"
# restore_command failed other than "no such file" (restore_status.ABORT_RECOVERY): FATAL,
# no promotion
_NOT_RESTORED = re.compile(r'could not restore file "([^"]+)" from archive: (.+)')
_RESTORE_WAL_SAID = re.compile(r"pgvdrill restore-wal: cannot restore .+")


@dataclass(frozen=True)
class Reach:
    """Where replay must get to at least (an LSN; with `past`, beyond it: into the segment
    that starts there), and what that is, for messages."""

    lsn: int
    what: str
    past: bool = False

    def reached_by(self, replayed: int) -> bool:
        return replayed > self.lsn if self.past else replayed >= self.lsn


@dataclass(frozen=True)
class Target:
    """Where recovery stops (`end`: the end of the archived WAL) and what it does there."""

    kind: TargetKind
    value: str = ""
    inclusive: bool = True
    action: Action = "promote"
    timeline: str = "latest"

    def settings(self) -> dict[str, ConfigValue]:
        settings: dict[str, ConfigValue] = {"recovery_target_timeline": self.timeline}
        if self.kind == "immediate":
            settings["recovery_target"] = "immediate"
        elif self.kind != "end":
            settings[f"recovery_target_{self.kind}"] = self.value
            settings["recovery_target_inclusive"] = self.inclusive
        if self.kind != "end":
            settings["recovery_target_action"] = self.action
        return settings

    def describe(self) -> str:
        if self.kind in ("immediate", "end"):
            point = "the backup's consistent point" if self.kind == "immediate" \
                else "the end of the archive"
        else:
            point = (f"recovery_target_{self.kind} = {self.value!r} "
                     f"({'inclusive' if self.inclusive else 'exclusive'})")
        return f"{point}, then {self.action}, timeline {self.timeline}"

    def label(self) -> str:
        """A short name for reports, e.g. `xid 766 exclusive, promote`."""
        point = self.kind if self.kind in ("immediate", "end") else \
            f"{self.kind} {self.value} {'inclusive' if self.inclusive else 'exclusive'}"
        timeline = "" if self.timeline == "latest" else f", timeline {self.timeline}"
        return f"{point}, {self.action}{timeline}"


@dataclass(frozen=True)
class BackupPoint:
    """Where a base backup's WAL starts and where it becomes consistent."""

    start_lsn: int
    timeline: int
    end_lsn: int
    end_time: datetime | None  # from the archive's .backup history file, when present

    @classmethod
    def of(cls, manifest: bytes, archive: Path | None = None,
           segment_size: int = DEFAULT_SEGMENT_SIZE) -> BackupPoint:
        """From a base backup's backup_manifest (its text), and its STOP TIME from the
        .backup history file in `archive` when that has one."""
        ranges = json.loads(manifest)["WAL-Ranges"]
        first, last = ranges[-1], ranges[0]
        start, timeline = parse_lsn(first["Start-LSN"]), int(first["Timeline"])
        end_time = None
        history = archive / (f"{Segment.containing(start, timeline, segment_size).name}."
                             f"{start % segment_size:08X}.backup") if archive else None
        if history is not None and history.is_file():
            match = re.search(r"^STOP TIME: (.+) (\S+)$", history.read_text(), re.M)
            if match and match.group(2) in ("UTC", "GMT"):  # else: a zone abbreviation
                end_time = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(
                    tzinfo=UTC)
        return cls(start, timeline, parse_lsn(last["End-LSN"]), end_time)


def refuse_before_backup_end(target: Target, point: BackupPoint) -> None:
    """`RestoreError` for a target that lies before the backup became consistent: its WAL
    replay cannot stop earlier than the end of the backup. LSNs are exact; the backup's
    end time is known to the second (the .backup file's STOP TIME), so a time target in
    that same second is left to PostgreSQL."""
    if target.kind == "lsn" and parse_lsn(target.value) < point.end_lsn:
        earlier = f"LSN {target.value} is before the base backup's end LSN " \
                  f"{format_lsn(point.end_lsn)}"
    elif target.kind == "time" and point.end_time is not None and \
            datetime.fromisoformat(target.value) < point.end_time:
        earlier = f"time {target.value} is before the base backup ended " \
                  f"({point.end_time.isoformat()})"
    else:
        return
    raise RestoreError(
        f"recovery target {earlier}: a base backup is consistent only from its end on, so "
        "it cannot be recovered to an earlier point",
        "use a base backup taken before the target, or a target after the backup's end")


@dataclass
class Recovery:
    """What a recovery did and how long it took."""

    target: Target
    state: Literal["promoted", "paused", "shut down"]
    start_to_ready: float  # start until promoted or paused (or the server stopped)
    start_lsn: int
    replayed_to: int | None  # last WAL record replayed (None after a shutdown)
    replay_seconds: float | None  # the server's own "redo done ... elapsed" figure
    timeline: int | None  # after promotion
    segment_size: int = DEFAULT_SEGMENT_SIZE
    details: dict[str, object] = field(default_factory=dict)

    @property
    def replayed_bytes(self) -> int | None:
        return None if self.replayed_to is None else self.replayed_to - self.start_lsn

    @property
    def segments(self) -> int | None:
        if self.replayed_to is None:
            return None
        return self.replayed_to // self.segment_size - self.start_lsn // self.segment_size + 1

    def as_dict(self) -> dict[str, object]:
        rate = None
        if self.replayed_bytes is not None and self.replay_seconds:
            rate = round(self.replayed_bytes / self.replay_seconds / 2**20, 1)
        return {"target": {**asdict(self.target), "describe": self.target.describe()},
                "state": self.state, "start_to_ready_seconds": round(self.start_to_ready, 3),
                "wal_replay": {
                    "from": format_lsn(self.start_lsn),
                    "to": None if self.replayed_to is None else format_lsn(self.replayed_to),
                    "segments": self.segments, "bytes": self.replayed_bytes,
                    "seconds": self.replay_seconds, "mib_per_second": rate},
                "timeline": self.timeline, **self.details}


def recover(cluster: Cluster, target: Target, restore_command: str, point: BackupPoint,
            *, timeout: float | None = None, must_reach: Reach | None = None) -> Recovery:
    """Recover the stopped `cluster` (a restored base backup) to `target` from the archive
    `restore_command` reads, and wait until it is promoted, paused or shut down there
    (within `timeout` seconds; None: the configured [limits] tool_timeout, as long as
    restoring a production backup's WAL may take).

    Raises `RestoreError` when the target is before the backup's end, when the archive
    ends before the target, when restore_command failed on a file, or when replay ended
    before where it had to get: the backup's end, an inclusive target LSN, `must_reach`
    (for a recovery to the end of the archive: its last segment). Never a silent partial
    recovery."""
    refuse_before_backup_end(target, point)
    if timeout is None:
        timeout = runner.tool_timeout().seconds
    cluster.configure(restore_command=restore_command, log_min_messages="log",
                      **target.settings())
    cluster.write_file("recovery.signal", b"")
    started = time.monotonic()
    try:
        cluster.start(timeout=timeout)
    except DrillError as exc:
        if not (target.action == "shutdown" and _shut_down_at_target(cluster)):
            raise _recovery_failure(target, cluster.server_log(200)) or exc from exc
        state: Literal["promoted", "paused", "shut down"] = "shut down"
    else:
        state = _wait_for_target(cluster, target, started + timeout - time.monotonic())
    seconds = time.monotonic() - started
    if state == "shut down":
        return Recovery(target, state, seconds, point.start_lsn, None,
                        _replay_seconds(cluster.server_log(200)), None)
    replayed = cluster.query("SELECT pg_last_wal_replay_lsn()::text")[0][0]
    require_reached(target, point, parse_lsn(str(replayed)) if replayed else None,
                    must_reach)
    timeline = None
    if state == "promoted":
        name = cluster.query("SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0]
        timeline = int(str(name)[:8], 16)
    return Recovery(target, state, seconds, point.start_lsn,
                    parse_lsn(str(replayed)) if replayed else None,
                    _replay_seconds(cluster.server_log(200)), timeline)


def archive_end(archive: Path, point: BackupPoint, timeline: int | None = None) -> Reach:
    """Where recovery from `point` to the end of `archive` (along `timeline`, default its
    latest) must get: into the last segment it holds without a gap (a replay that ends at
    its start, after the previous segment's switch record, read nothing of it)."""
    reach = check_continuity(archive, point.start_lsn, point.timeline, timeline=timeline)
    last = reach.segments[-1] if reach.segments else "none"
    return Reach(reach.last_start(), f"the start of the archive's last contiguous segment "
                                     f"{last}", past=bool(reach.segments))


def require_reached(target: Target, point: BackupPoint, replayed: int | None,
                    must_reach: Reach | None = None) -> None:
    """RestoreError, naming both LSNs, when replay ended at `replayed` (the end of the last
    record replayed) before the backup's end, an inclusive target LSN or `must_reach`."""
    needed = [Reach(point.end_lsn, "the base backup's end")]
    if target.kind == "lsn" and target.inclusive:
        needed.append(Reach(parse_lsn(target.value), "the target LSN"))
    if must_reach is not None:
        needed.append(must_reach)
    missed = [reach for reach in needed if replayed is None or not reach.reached_by(replayed)]
    if not missed:
        return
    wanted = max(missed, key=lambda reach: reach.lsn)
    ended = "no record replayed" if replayed is None else f"replay ended at {format_lsn(replayed)}"
    raise RestoreError(
        f"recovery to {target.describe()} ended early: {ended}, "
        f"{'not past' if wanted.past else 'before'} {format_lsn(wanted.lsn)} "
        f"({wanted.what}); the server "
        f"{'paused' if target.action == 'pause' else 'promoted'} without the WAL after that",
        "do not use this copy: read the restored server's log for why replay stopped (a "
        "damaged or unreadable segment, one of another server), repair the archive from "
        "another copy and restore again")


def _wait_for_target(cluster: Cluster, target: Target, timeout: float
                     ) -> Literal["promoted", "paused", "shut down"]:
    def failure(message: str, hint: str) -> DrillError:
        return _recovery_failure(target, cluster.server_log(200)) or RestoreError(message, hint)

    return wait_until(
        lambda: _recovery_state(cluster, target), timeout=timeout, error=failure,
        message=f"recovery to {target.describe()} did not finish in time",
        hint="read the server log; the archive may be slow or the target far away (a "
             "long recovery needs a larger [limits] tool_timeout, in seconds)")


def _recovery_state(cluster: Cluster, target: Target
                    ) -> Literal["promoted", "paused", "shut down"] | None:
    """Where recovery stands (None: still replaying); `GiveUp` once the server stopped."""
    try:
        in_recovery, pause = cluster.query(
            "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() "
            "THEN pg_get_wal_replay_pause_state() END")[0]
    except psycopg.OperationalError:
        failure = _recovery_failure(target, cluster.server_log(200))
        if failure is not None:  # the server is on its way down after a FATAL
            _wait_stopped(cluster)
            raise failure from None
        if cluster.is_running() and target.action != "shutdown":
            raise
        in_recovery, pause = True, None  # the server went away: see below
    if target.action == "shutdown" and _shut_down_at_target(cluster):
        return "shut down"
    if not in_recovery:
        return "promoted"
    if target.action == "pause" and pause == "paused":
        return "paused"
    if not cluster.is_running():
        raise GiveUp
    return None


def _wait_stopped(cluster: Cluster, timeout: float = 30) -> None:
    poll_until(lambda: not cluster.is_running(), timeout=timeout)


def resume(cluster: Cluster, timeout: float = 60) -> None:
    """End a recovery paused at its target (pg_wal_replay_resume) and wait for promotion."""
    cluster.query("SELECT pg_wal_replay_resume()")
    wait_until(lambda: not cluster.query("SELECT pg_is_in_recovery()")[0][0], timeout=timeout,
               error=RestoreError, message=f"server {cluster.name} still in recovery "
               f"{timeout:.0f}s after pg_wal_replay_resume()", hint="read the server log")


def _shut_down_at_target(cluster: Cluster) -> bool:
    """The server stopped itself at its target (recovery_target_action = shutdown)."""
    wait_until(lambda: not (cluster.is_running()
                            and SHUTDOWN_AT_TARGET in cluster.server_log(200)),
               timeout=30, error=RestoreError, hint="read the server log",
               message=f"server {cluster.name} reached its target but did not stop")
    return not cluster.is_running() and SHUTDOWN_AT_TARGET in cluster.server_log(200)


def _recovery_failure(target: Target, log: str) -> RestoreError | None:
    failed = _NOT_RESTORED.findall(log)
    if failed:
        name, why = failed[-1]
        said = _RESTORE_WAL_SAID.findall(log)
        return RestoreError(
            f"recovery to {target.describe()} stopped at WAL file {name}: restore_command "
            f"failed on it ({why})" + (f": {said[-1]}" if said else "")
            + "; the server stopped without promoting",
            f"make {name} in the archive readable by the server's OS user (or restore it "
            "from another copy of the archive), then restore again")
    if NOT_REACHED in log:
        return RestoreError(
            f"recovery to {target.describe()} failed: the archive's WAL ends before the "
            f"target (PostgreSQL: {NOT_REACHED!r})",
            "the archive lacks WAL up to the target: check it with pgvdrill's continuity "
            "check, restore the missing segments, or choose an earlier target")
    if BEFORE_CONSISTENT in log:
        return RestoreError(
            f"recovery to {target.describe()} failed: the target lies before the base "
            f"backup became consistent (PostgreSQL: {BEFORE_CONSISTENT!r})",
            "use a base backup taken before the target")
    return None


def _replay_seconds(log: str) -> float | None:
    found = re.findall(r"redo done at .*elapsed: ([0-9.]+) s", log)
    return float(found[-1]) if found else None
