"""Physical drills: base backup -> pg_verifybackup -> restore into a fresh data directory
-> start (WAL replay) -> verify against the source, with identical ANN answers."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import psycopg
from psycopg import sql

from pgvdrill import osuser
from pgvdrill.capabilities import Capability, server_capabilities
from pgvdrill.cluster import Backend, Cluster, Server
from pgvdrill.cluster.directory import DirectoryCluster
from pgvdrill.cluster.restored import Neutralised
from pgvdrill.dataset import Dataset, documents_copies_sql
from pgvdrill.drill.record import DrillFailure, DrillResult, Progress, ran_on, run_cases
from pgvdrill.drill.source import SOURCE_DB, dataset_template
from pgvdrill.errors import DrillError, cleanup
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS, BaseBackup, BaseBackupSetting
from pgvdrill.physical.backup import base_backup
from pgvdrill.physical.restore import unpack
from pgvdrill.physical.verifybackup import BackupCheck, check_backup
from pgvdrill.report.record import DrillEntry, Record
from pgvdrill.repository.paths import copy_regular
from pgvdrill.timing import Item, Phase, backup_measures, restore_phases
from pgvdrill.verify import (
    Snapshot,
    Verification,
    cluster_files,
    same_ann_answers,
    snapshot,
    verify,
)
from pgvdrill.verify.outcome import Check, run_check
from pgvdrill.wal.names import format_lsn
from pgvdrill.wal.pitr import BackupPoint, Target, recover, resume
from pgvdrill.wal.replay import replay_item

SEQUENCE_SLACK = 32  # WAL replay restores sequences at the value logged ahead


@dataclass
class RestorePhases:
    """Seconds per restore phase: unpack (extract, copy or combine), start to ready (WAL
    replay included), verification; and the WAL replay the server reported."""

    unpack_step: str
    unpack: float
    start: float
    verify: float
    replay: Item | None = None

    @property
    def seconds(self) -> float:
        """Until the restored server was ready: the measured RTO (verification excluded)."""
        return self.unpack + self.start

    def as_dict(self) -> dict[str, object]:
        return {"seconds": round(self.seconds, 3), "unpack_step": self.unpack_step,
                "unpack_seconds": round(self.unpack, 3), "start_seconds": round(self.start, 3),
                "verify_seconds": round(self.verify, 3)}

    def phases(self) -> list[dict[str, Any]]:
        return restore_phases([Phase(self.unpack_step, self.unpack), Phase("start", self.start)],
                              self.verify)


@dataclass
class PhysicalDrill:
    """The outcome of one base backup -> restore -> verify drill."""

    backup: BaseBackup
    checks: list[BackupCheck]  # pg_verifybackup of the backup (its parent, the combined
    phases: RestorePhases      # result); none for a low-level copy, which has no manifest
    verification: Verification
    neutralised: Neutralised | None = None  # what the restored copy's start changed
    server: Record | None = None  # the restored copy's (ServerCapabilities.as_dict())
    kind: ClassVar[str] = "physical"

    @property
    def ok(self) -> bool:
        return self.verification.ok

    @property
    def name(self) -> str:
        return f"physical:{self.backup.setting.name}"

    def summary(self) -> str:
        p = self.phases
        return (f"{p.unpack_step} {p.unpack:.2f}s, start {p.start:.2f}s; verify "
                f"{self.verification.summary()}")

    def problems(self) -> list[str]:
        return self.verification.problems()

    def evidence(self) -> dict[str, object]:
        """What the targets are judged on (see verdicts.evaluate)."""
        return {"restore": {"kind": "physical",
                            "seconds": self.phases.seconds if self.ok else None,
                            "why": None if self.ok else "the restore did not verify"},
                "throughput": [{"kind": "physical_backup", "bytes": self.backup.source_bytes,
                                "seconds": self.backup.seconds}]}

    def entry(self) -> DrillEntry:
        replay = self.phases.replay
        measures = backup_measures(self.backup.source_bytes, self.backup.size_bytes,
                                   self.backup.seconds)
        if replay is not None:
            measures.update(wal_replay_bytes=replay.bytes, wal_replay_segments=replay.segments,
                            wal_replay_seconds=replay.seconds)
        return DrillEntry(
            self.name, self.kind, self.ok, server=self.server,
            backup={**self.backup.as_dict(), "verifybackup": [c.as_dict() for c in self.checks]},
            restore={"setting": self.phases.unpack_step, **self.phases.as_dict()},
            measures=measures, phases=self.phases.phases(),
            items=[] if replay is None else [replay.as_dict()], evidence=self.evidence(),
            verification=self.verification.as_dict(), problems=self.problems(),
            neutralised=None if self.neutralised is None else self.neutralised.as_dict())

    def as_dict(self) -> dict[str, Any]:
        return self.entry().as_dict()


@dataclass(frozen=True)
class ArchiveReplay:
    """Recovery through an archive on start (the DR drill): the WAL in `wal`, replayed to
    its end, must get past `reach_lsn` (the start of its last contiguous segment: a replay
    that ends right there, after the previous segment's switch record, read none of it)."""

    wal: Path
    reach_lsn: int
    partial: bool = False  # its last segment is a pg_receivewal .partial file
    segments: tuple[str, ...] = ()  # the files recovery reads from `wal`, in order
    timeline: int | None = None  # the one recovery follows (None: the archive's latest)

    def copied(self, into: Path, server_user: str | None) -> ArchiveReplay:
        """The same replay from a copy of its segments (and the archive's timeline history
        files) in `into`, owned by the scratch server's OS user: the restored copy reads
        nothing of production's, whichever user owns production's archive."""
        into.chmod(0o700)
        names = [*self.segments, *(p.name for p in self.wal.glob("*.history"))]
        for name in names:  # an archive's symlink is never followed (OSError)
            copy_regular(self.wal / name, into / name)
            (into / name).chmod(0o600)
        osuser.chown_tree(into, server_user)
        return replace(self, wal=into)


def replay_problems(cluster: Cluster, backup: BaseBackup, replay: ArchiveReplay) -> list[str]:
    """Start the stopped restored `cluster` recovering through the archive to its end;
    what stopped it short of its last segment, if anything did."""
    point = BackupPoint.of((backup.path / "backup_manifest").read_bytes(), replay.wal)
    command = cluster.restore_command(replay.wal, partial=replay.partial)
    timeline = "latest" if replay.timeline is None else str(replay.timeline)
    recovery = recover(cluster, Target("end", timeline=timeline), command, point)
    if recovery.replayed_to is not None and recovery.replayed_to > replay.reach_lsn:
        return []
    stopped = "nowhere" if recovery.replayed_to is None else format_lsn(recovery.replayed_to)
    return [f"recovery through the WAL archive {replay.wal} stopped at {stopped}, before its "
            f"last segment (from {format_lsn(replay.reach_lsn)}): a record there cannot be "
            "replayed (damaged, or of another server); the restored server's log says where"]


@dataclass(frozen=True)
class ComparisonPoint:
    """Where a restored copy of a source that kept changing is compared with it: recovered
    through the WAL in `wal` (pg_receivewal's, the newest segment .partial) to the record
    at `lsn` (inclusive), it must show exactly what
    the source's snapshot `xids` (pg_current_snapshot()'s text) shows. How the point is
    chosen so that this holds: pgvdrill.drill.dr_point."""

    wal: Path
    lsn: int
    xids: str


def raced_commits(conn: psycopg.Connection, xids: str, next_xid: int) -> list[str]:
    """Transactions the source's snapshot `xids` does not see (running, or from its xmax on
    up to the copy's `next_xid`) that are committed in the connected, promoted copy: a copy
    that is not at that snapshot."""
    _, xmax, running = xids.split(":")
    unseen = [int(x) for x in running.split(",") if x] + list(range(int(xmax), next_xid))
    return [str(x) for x in unseen if x < next_xid and _status(conn, x) == "committed"]


def next_xid(conn: psycopg.Connection, start: int) -> int:
    """The connected copy's next transaction id, searched from `start` up: the first id
    pg_xact_status() calls "in the future"."""
    xid = start
    while _status(conn, xid) is not None:
        xid += 1
    return xid


def _status(conn: psycopg.Connection, xid: int) -> str | None:
    """pg_xact_status() of `xid`; None from the copy's next transaction id on."""
    try:
        row = conn.execute("SELECT pg_xact_status(%s::text::xid8)", (str(xid),)).fetchone()
    except psycopg.errors.InvalidParameterValue:  # "transaction ID ... is in the future"
        return None
    return None if row is None else str(row[0])


def _recover_to_point(cluster: Cluster, backup: BaseBackup, point: ComparisonPoint) -> None:
    """Recover the stopped restored `cluster` to `point` and pause there, where its next
    transaction id is the source's at that point (a hot standby assigns none); promote it
    and prove that it shows what the source's snapshot showed: no transaction the snapshot
    does not see is committed in it. (Paused, the copy cannot tell: pg_xact_status() calls
    "in progress" what its WAL listed as running when the backup began, even if the WAL
    holds its commit; promoted, its own new transactions come from that next id on.)"""
    manifest = BackupPoint.of((backup.path / "backup_manifest").read_bytes())
    recover(cluster, Target("lsn", format_lsn(point.lsn), inclusive=True, action="pause"),
            cluster.restore_command(point.wal, partial=True), manifest)
    with cluster.connect() as conn:
        limit = next_xid(conn, int(point.xids.split(":")[1]))
    resume(cluster)
    with cluster.connect() as conn:
        raced = raced_commits(conn, point.xids, limit)
    if raced:
        raise DrillError(
            f"inconclusive: recovered to {format_lsn(point.lsn)}, the restored copy holds the "
            f"commits of transaction(s) {', '.join(raced)}, which the source's snapshot "
            f"{point.xids} does not see: it cannot be compared with that snapshot (the "
            "backup is not judged)", "run the drill again")


def restore_backup_and_verify(
        backend: Backend, backup: BaseBackup, source: Server, source_snapshot: Snapshot, *,
        recall_threshold: float = 0.9, dbname: str = SOURCE_DB, scratch: Path | None = None,
        replay: ArchiveReplay | None = None, point: ComparisonPoint | None = None,
        superuser: str = "postgres") -> PhysicalDrill:
    """Check `backup` with pg_verifybackup, restore it into a fresh data directory, start
    it (with `replay`: recovering through the archive to its end; with `point`: to the
    moment `source_snapshot` shows) and verify it against the source (its snapshot, and
    without `point` the live source for identical ANN answers), connecting to the copy as
    `superuser` (the source's bootstrap superuser). The restored cluster is destroyed
    afterwards."""
    chain = [b for b in (backup.parent, backup)
             if b is not None and b.setting.method != "low-level"]
    checks = [check_backup(backend.tools(), b.path) for b in chain]
    with tempfile.TemporaryDirectory(prefix="restore-", dir=scratch or backup.path.parent
                                     ) as tmp:
        unpacked = unpack(backend.tools(), backup, Path(tmp) / "data")
        if unpacked.step == "combine":
            checks.append(check_backup(backend.tools(), unpacked.datadir))
        cluster = backend.adopt(f"restored-{backup.setting.name}", unpacked.datadir,
                                superuser=superuser)
    with cleanup(cluster.destroy, f"the restored copy {cluster.name}"):
        started = time.monotonic()
        replayed = None
        if point is not None:
            _recover_to_point(cluster, backup, point)
        elif replay is None:
            cluster.start()
        else:
            replayed = replay_problems(cluster, backup, replay)
        start_seconds = time.monotonic() - started
        started = time.monotonic()
        verification, server = verify_restored(
            cluster, source, source_snapshot, dbname=dbname, recall_threshold=recall_threshold,
            answers=None if point is None else _answers_not_compared)
        if replayed is not None:
            verification.checks.append(run_check(
                "wal_replay", lambda check: check.problems.extend(replayed)))
        phases = RestorePhases(unpacked.step, unpacked.seconds, start_seconds,
                               time.monotonic() - started, replay_item(cluster.log_since(0)))
    neutralised = cluster.restored if isinstance(cluster, DirectoryCluster) else None
    return PhysicalDrill(backup, checks, phases, verification, neutralised, server)


def verify_restored(cluster: Cluster, source: Server, source_snapshot: Snapshot, *,
                    dbname: str, recall_threshold: float,
                    answers: Callable[[Check], None] | None = None
                    ) -> tuple[Verification, Record]:
    """Verify the started physical copy `cluster` against `source_snapshot` (the live
    `source` names differing rows and, unless `answers` says why not, must give the same
    ANN answers): counts, fingerprints, vectors bit-exact, schema, indexes, recall, amcheck;
    unlogged tables (a base backup holds none of their rows) left out and checked empty;
    the whole cluster's files (cluster_files: every database, every relation's file).
    Also what the copy runs on (ran_on)."""
    with cluster.connect(dbname) as conn, source.connect(dbname) as src:
        whole = run_check("cluster_files", lambda check: _cluster_files(check, cluster, conn,
                                                                        src))
        server = ran_on(conn)
        unlogged = unlogged_tables(conn)
        logged = None if not unlogged else [
            _quoted(t.schema, t.name) for t in source_snapshot.schema.tables.values()
            if (t.schema, t.name) not in unlogged]
        verification = verify(source_snapshot, conn, source_conn=src, tables=logged,
                              recall_threshold=recall_threshold, sequence_slack=SEQUENCE_SLACK)
        verification.checks.append(same_ann_answers(src, conn, tables=logged)
                                   if answers is None else run_check("ann_answers", answers))
        if unlogged:
            verification.checks.append(run_check(
                "unlogged", lambda check: check.problems.extend(
                    _unlogged_problems(conn, unlogged))))
        verification.checks.append(whole)
    return verification, server


def _cluster_files(check: Check, cluster: Cluster, conn: psycopg.Connection[Any],
                   src: psycopg.Connection[Any]) -> None:
    """The copy holds every database of the source and, in each database that allows
    connections, every relation's file (cluster_files); unknown when the copy will not
    show its files to the role the drill connects as."""
    ours, theirs = cluster_files.databases(conn), cluster_files.databases(src)
    check.problems.extend(f"database {name} of the source is not in the restored copy"
                          for name in sorted(theirs - ours))
    if ours - theirs:
        check.details["not_in_source"] = sorted(ours - theirs)
    names = cluster_files.connectable(conn)
    check.details["databases"] = names
    for name in names:
        try:
            with cluster.connect(name) as other:
                check.problems.extend(cluster_files.missing_files(other, name))
        except psycopg.errors.InsufficientPrivilege as exc:
            check.unknown = f"the copy's files are not readable: {str(exc).strip()[:200]}"
            return
        except psycopg.OperationalError as exc:
            check.problems.append(f"database {name} of the restored copy cannot be entered: "
                                  f"{str(exc).strip()[:300]}")


UNLOGGED_SQL = """SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relpersistence = 'u' AND c.relkind IN ('r', 'p')"""


def unlogged_tables(conn: psycopg.Connection[Any]) -> set[tuple[str, str]]:
    """The database's unlogged tables: a base backup holds none of their rows (recovery
    leaves them empty), so a physical copy is compared with the source without them."""
    return {(str(s), str(n)) for s, n in conn.execute(UNLOGGED_SQL).fetchall()}


def _unlogged_problems(conn: psycopg.Connection[Any], tables: set[tuple[str, str]]
                       ) -> list[str]:
    """Unlogged tables of the copy that are not empty, as recovery must leave them."""
    problems = []
    for schema, name in sorted(tables):
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema),
                                                              sql.Identifier(name))
        rows = conn.execute(query).fetchone()
        if rows and rows[0]:
            problems.append(f"unlogged table {schema}.{name} has {rows[0]} rows after "
                            "recovery, which must leave it empty")
    return problems


def _quoted(schema: str, name: str) -> str:
    return '"{}"."{}"'.format(schema.replace('"', '""'), name.replace('"', '""'))


def _answers_not_compared(check: Check) -> None:
    check.details["note"] = (
        "not compared: the source kept changing after the comparison point, and an "
        "approximate index's answers depend on entries added since, even invisible ones; "
        "content, schema and recall were compared with the source's snapshot")


UPDATE_SQL = """UPDATE documents SET title = title || ' (changed)',
    embedding = embedding + embedding WHERE id % 25 = 0"""
DELETE_SQL = "DELETE FROM account_behaviors WHERE id % 40 = 0"


def change_source(source: Cluster) -> None:
    """Updates, inserts (vector indexes included; the columns the schema has: no
    embedding_half before pgvector 0.7) and deletes between a full backup and an
    incremental one, so the incremental has something to carry."""
    with source.connect(SOURCE_DB) as conn:
        conn.execute(UPDATE_SQL)
        conn.execute(documents_copies_sql(conn, "id % 20 = 1"))
        conn.execute(DELETE_SQL)


def enable_summarize_wal(source: Cluster) -> Capability:
    """summarize_wal on (restarting `source`) where the server has it, which incremental
    backups need; the capability says why not elsewhere (before PostgreSQL 17)."""
    with source.connect() as conn:
        found = server_capabilities(conn).setting("summarize_wal")
    if found.available:
        source.configure(summarize_wal=True)
        source.stop()
        source.start()
    return found


def incremental_backup(source: Cluster, outdir: Path, parent: BaseBackup, *,
                       fast_checkpoint: bool = False) -> BaseBackup:
    """Change the source, then take an incremental backup on top of `parent`."""
    change_source(source)
    return base_backup(source, BASE_BACKUP_SETTINGS["incremental"], outdir / "incremental",
                       parent=parent, fast_checkpoint=fast_checkpoint)


def run_physical(backend: Backend, data: Dataset, settings: Sequence[BaseBackupSetting],
                 outdir: Path, progress: Progress, *, recall_threshold: float = 0.9,
                 fast_checkpoint: bool = False) -> list[DrillResult]:
    """Each setting's drill (none when `settings` is empty) on a source holding `data`
    (summarize_wal on where the server has it, for incremental backups, which change the
    source and so run last; without it they are not applicable, and say why)."""
    if not settings:
        return []
    template, _ = dataset_template(backend, data)
    with backend.cluster("physical-source", template=template) as source:
        summaries = enable_summarize_wal(source)
        incremental = summaries.available and any(s.method == "incremental" for s in settings)
        parent = (base_backup(source, BASE_BACKUP_SETTINGS["plain"], outdir / "incr-full",
                              fast_checkpoint=fast_checkpoint) if incremental else None)
        with source.connect(SOURCE_DB) as conn:
            snaps = [snapshot(conn)]  # the source as the next backup holds it
            server = ran_on(conn)  # a failed drill's (its copies run on the same)

        def drilled(setting: BaseBackupSetting) -> PhysicalDrill:
            if setting.method == "incremental":
                assert parent is not None
                backup = incremental_backup(source, outdir, parent,
                                            fast_checkpoint=fast_checkpoint)
                with source.connect(SOURCE_DB) as conn:
                    snaps.append(snapshot(conn))
            else:
                backup = base_backup(source, setting, outdir / setting.name,
                                     fast_checkpoint=fast_checkpoint)
            files = backup.files()
            progress(f"base backup {setting.name}: {backup.seconds:.2f}s, "
                     f"{backup.size_bytes / 1e6:.1f} MB, WAL {backup.start_lsn} to "
                     f"{backup.end_lsn}, "
                     + (", ".join(files) if len(files) <= 4 else "a data directory"))
            return restore_backup_and_verify(backend, backup, source, snaps[-1],
                                             recall_threshold=recall_threshold)

        return run_cases(sorted(settings, key=lambda s: s.method == "incremental"), drilled,
                         lambda setting, error: failed_drill(setting, error, server),
                         progress, label=lambda setting: f"restore {setting.name}",
                         skip=lambda setting: None if setting.method != "incremental" or
                         summaries.available else f"incremental backups need WAL summaries: "
                         f"{summaries.reason}")


def failed_drill(setting: BaseBackupSetting, error: DrillError,
                 server: Record | None = None) -> DrillFailure:
    """A physical drill whose backup, check or restore failed outright (`server`: ran_on
    of the source it was drilling, where it was reached)."""
    return DrillFailure(f"physical:{setting.name}", "physical", error,
                        backup={"setting": setting.name}, server=server)
