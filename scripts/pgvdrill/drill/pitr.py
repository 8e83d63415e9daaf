"""PITR drills, shared by `pytest drills -k pitr` and `pgvdrill drill --pitr`.

One primary archives with `pgvdrill archive-wal`; markers 1-3 are committed before a plain
base backup, 4-12 after it (a restore point after 9). Each drill restores the backup,
recovers it to a target and checks the marker boundary exactly.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pgvdrill import osuser
from pgvdrill.cluster import Backend, Cluster
from pgvdrill.drill.record import DrillFailure, DrillResult, Progress, ran_on, run_cases
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.errors import DrillError, clean_after, cleanup
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS, BaseBackup
from pgvdrill.physical.backup import base_backup
from pgvdrill.physical.restore import restore_base_backup_timed
from pgvdrill.report.record import DrillEntry, Record
from pgvdrill.timing import Item, Phase, restore_phases
from pgvdrill.verify import Snapshot, snapshot
from pgvdrill.wal.archiving import (
    enable_archiving,
    make_archive_dir,
    switch_and_wait,
)
from pgvdrill.wal.markers import Marker, MarkerWriter, boundary_problems
from pgvdrill.wal.names import format_lsn
from pgvdrill.wal.pitr import BackupPoint, Recovery, Target, archive_end, recover

BEFORE_BACKUP = 3
MARKERS = 12
RESTORE_POINT = ("pitr_after_9", 9)
Restore = Callable[[BaseBackup, str], tuple[Cluster, float]]
TargetCase = tuple[Callable[[list[Marker]], Target], int]  # target from the markers, expected

TARGETS: dict[str, TargetCase] = {
    "time-inclusive": (lambda m: Target("time", m[5].commit_time.isoformat()), 6),
    "time-exclusive": (lambda m: Target("time", m[5].commit_time.isoformat(), False), 5),
    "xid-inclusive": (lambda m: Target("xid", str(m[6].xid)), 7),
    "xid-exclusive": (lambda m: Target("xid", str(m[6].xid), False), 6),
    "lsn-inclusive": (lambda m: Target("lsn", format_lsn(m[7].commit_lsn)), 8),
    "lsn-exclusive": (lambda m: Target("lsn", format_lsn(m[7].commit_lsn), False), 7),
    "name": (lambda m: Target("name", RESTORE_POINT[0]), RESTORE_POINT[1]),
    "end-of-archive": (lambda m: Target("end"), MARKERS),
}
IMMEDIATE: TargetCase = (lambda m: Target("immediate"), BEFORE_BACKUP)
KINDS: dict[str, TargetCase] = {  # `pgvdrill drill --pitr`: one target per kind
    "time": TARGETS["time-inclusive"], "xid": TARGETS["xid-inclusive"],
    "lsn": TARGETS["lsn-inclusive"], "name": TARGETS["name"], "immediate": IMMEDIATE,
}


@dataclass
class Archived:
    """The primary's archive, its base backup, and the markers around it."""

    archive: Path
    backup: BaseBackup
    markers: list[Marker]
    at_backup: Snapshot  # vector_db when the backup was taken
    server: Record  # ran_on of the primary (its copies run on the same installation)

    @property
    def backup_seconds(self) -> float:
        return self.backup.seconds

    def upto(self, last: int) -> tuple[list[Marker], list[Marker]]:
        """(markers 1..last, the rest)."""
        return self.markers[:last], self.markers[last:]


def archive_markers(backend: Backend, template: str, workdir: Path) -> Archived:
    """A primary from `template` archiving into `workdir`/archive: markers, a plain base
    backup into `workdir`/base, more markers and a restore point, the last segment
    archived. The primary is destroyed afterwards."""
    primary = backend.create("pitr-primary", template=template)
    with cleanup(primary.destroy, "the PITR primary"):
        primary.start()
        archive = make_archive_dir(workdir / "archive", osuser.server_user())
        enable_archiving(primary, archive, track_commit_timestamp=True)
        with primary.connect(SOURCE_DB) as conn, primary.connect() as wal_conn:
            writer = MarkerWriter.of(primary, conn, wal_conn)
            writer.create()
            for i in range(1, BEFORE_BACKUP + 1):
                writer.write(i)
            at_backup, server = snapshot(conn), ran_on(conn)
            backup = base_backup(primary, BASE_BACKUP_SETTINGS["plain"], workdir / "base",
                                 fast_checkpoint=True)
            for i in range(BEFORE_BACKUP + 1, MARKERS + 1):
                writer.write(i)
                if i == RESTORE_POINT[1]:
                    wal_conn.execute("SELECT pg_create_restore_point(%s)", (RESTORE_POINT[0],))
        switch_and_wait(primary, archive)
        primary.stop()
        return Archived(archive, backup, writer.written, at_backup, server)


@dataclass
class PitrDrill:
    """One recovery: what it aimed at, its phases, and the boundary check."""

    target: str  # the recovery target, as Target.label() says it
    backup_seconds: float
    copy_seconds: float
    recovery: Recovery
    boundary_problems: list[str] = field(default_factory=list)
    verify_seconds: float = 0.0
    target_kind: str | None = None  # the `pgvdrill drill --pitr` kind it drills
    server: Record | None = None  # the recovered copy's (ServerCapabilities.as_dict())
    kind: ClassVar[str] = "pitr"

    @property
    def name(self) -> str:
        return f"pitr:{self.target_kind or self.target}"

    @property
    def ok(self) -> bool:
        """Recovered to the target (promoted, or paused there as asked), boundary exact."""
        return self.recovery.state in ("promoted", "paused") and not self.boundary_problems

    @property
    def restore_seconds(self) -> float:
        return self.copy_seconds + self.recovery.start_to_ready

    def summary(self) -> str:
        replay = self.recovery.replay_seconds
        return (f"restore {self.restore_seconds:.2f}s (copy {self.copy_seconds:.2f}s, start to "
                f"{self.recovery.state} {self.recovery.start_to_ready:.2f}s, WAL replay "
                f"{'-' if replay is None else f'{replay:.2f}'}s), boundary "
                f"{'ok' if not self.boundary_problems else 'WRONG'}")

    def problems(self) -> list[str]:
        return self.boundary_problems

    def replay(self) -> Item | None:
        r = self.recovery
        if r.replayed_bytes is None or r.replay_seconds is None or r.replayed_to is None:
            return None
        return Item("wal-replay", f"{format_lsn(r.start_lsn)} to {format_lsn(r.replayed_to)}",
                    r.replay_seconds, bytes=r.replayed_bytes, segments=r.segments)

    def evidence(self) -> dict[str, object]:
        """What the targets are judged on (see verdicts.evaluate)."""
        replay = self.replay()
        return {"restore": {"kind": "pitr", "seconds": self.restore_seconds if self.ok else None,
                            "why": None if self.ok else "the recovery did not verify"},
                "throughput": [{"kind": "wal_replay",
                                "bytes": None if replay is None else replay.bytes,
                                "seconds": None if replay is None else replay.seconds}]}

    def entry(self) -> DrillEntry:
        replay = self.replay()
        measures = {} if replay is None else {
            "wal_replay_bytes": replay.bytes, "wal_replay_segments": replay.segments,
            "wal_replay_seconds": replay.seconds}
        phases = [Phase("copy", self.copy_seconds),
                  Phase("start", self.recovery.start_to_ready)]
        return DrillEntry(
            self.name, self.kind, self.ok, server=self.server,
            backup={"setting": "plain", "seconds": round(self.backup_seconds, 3)},
            restore={"setting": self.target, "seconds": round(self.restore_seconds, 3),
                     "copy_seconds": round(self.copy_seconds, 3), **self.recovery.as_dict()},
            measures=measures, phases=restore_phases(phases, self.verify_seconds),
            items=[] if replay is None else [replay.as_dict()], evidence=self.evidence(),
            problems=self.boundary_problems, target_kind=self.target_kind)

    def as_dict(self) -> dict[str, Any]:
        return self.entry().as_dict()


def pitr_drill(archived: Archived, restore: Restore, target: Target, name: str,
               expected: int) -> tuple[Cluster, PitrDrill]:
    """Restore the base backup, recover it to `target`, check markers 1..expected."""
    cluster, copy_seconds = restore(archived.backup, name)
    point = BackupPoint.of(cluster.read_file("backup_manifest"), archived.archive)
    recovery = recover(cluster, target, cluster.restore_command(archived.archive), point,
                       must_reach=archive_end(archived.archive, point)
                       if target.kind == "end" else None)
    result = PitrDrill(target.label(), archived.backup_seconds, copy_seconds, recovery)
    if recovery.state != "shut down":
        started = time.monotonic()
        with cluster.connect(SOURCE_DB) as conn:
            result.server = ran_on(conn)
            result.boundary_problems = boundary_problems(conn, *archived.upto(expected))
        result.verify_seconds = time.monotonic() - started
    return cluster, result


def run_pitr(backend: Backend, template: str, kinds: list[str], workdir: Path,
             progress: Progress) -> list[DrillResult]:
    """Archive the marker workload on a primary from `template`, then for each of `kinds`
    (keys of KINDS) restore the base backup, recover to that target and check the marker
    boundary. Backups and archive live in a scratch directory below `workdir` (which the
    server's OS user can enter), removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="pgvdrill-pitr-", dir=workdir))
    scratch.chmod(0o711)
    try:
        archived = archive_markers(backend, template, scratch)
        progress(f"pitr base backup plain: {archived.backup_seconds:.2f}s, markers "
                 f"1-{BEFORE_BACKUP} before it, {BEFORE_BACKUP + 1}-{MARKERS} after "
                 f"(restore point {RESTORE_POINT[0]!r} after {RESTORE_POINT[1]})")

        restored: list[Cluster] = []

        def restore(backup: BaseBackup, name: str) -> tuple[Cluster, float]:
            cluster, unpacked = restore_base_backup_timed(backend, backup, name)
            restored.append(cluster)
            return cluster, unpacked.seconds

        def drilled(kind: str) -> PitrDrill:
            make_target, expected = KINDS[kind]
            _, drill = pitr_drill(archived, restore, make_target(archived.markers),
                                  f"pitr-{kind}", expected)
            drill.target_kind = kind
            return drill

        def failed(kind: str, error: DrillError) -> DrillFailure:
            return DrillFailure(f"pitr:{kind}", "pitr", error, target_kind=kind,
                                server=archived.server)

        def destroy_copies(kind: str, result: DrillResult) -> None:
            error = result.exception if isinstance(result, DrillFailure) else None
            while restored:  # a failure here is the drill's error, or a note on it
                clean_after(error, restored.pop().destroy, f"the pitr-{kind} copy")

        return run_cases(kinds, drilled, failed, progress, after=destroy_copies,
                         label=lambda kind: f"pitr {kind} (markers 1-{KINDS[kind][1]} "
                                            "expected)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
