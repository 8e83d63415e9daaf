"""Continuous archiving and point-in-time recovery, as the runbook's section 3 does it
(restore a base backup, restore_command, a recovery target, recovery.signal), with the
recovery settings in an included file rather than a rewritten postgresql.conf.

One primary archives with `pgvdrill archive-wal`; markers 1-3 are committed before the
base backup, 4-12 after it (a restore point after 9). Every drill restores a copy of the
backup, recovers to a target and checks the boundary exactly: markers committed before the
target present with their vectors, those after absent, the HNSW index answering like exact
search over the expected markers.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from fixtures.cli import Cli
from pgvdrill import osuser
from pgvdrill.capabilities import server_capabilities
from pgvdrill.cluster import Backend, Cluster
from pgvdrill.drill.pitr import (
    BEFORE_BACKUP,
    TARGETS,
    Archived,
    PitrDrill,
    Restore,
    archive_markers,
)
from pgvdrill.drill.pitr import pitr_drill as drill
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.errors import DrillError, RestoreError
from pgvdrill.verify import verify
from pgvdrill.wal.archiving import (
    switch_and_wait,
)
from pgvdrill.wal.continuity import check_continuity
from pgvdrill.wal.markers import Marker, MarkerWriter, boundary_problems
from pgvdrill.wal.names import Segment, format_lsn
from pgvdrill.wal.pitr import BackupPoint, Target, recover, resume


@pytest.fixture(scope="module")
def archived(backend: Backend, source_template: str, wal_workdir: Path) -> Archived:
    return archive_markers(backend, source_template, wal_workdir)


@pytest.mark.parametrize(("make_target", "expected"), list(TARGETS.values()),
                         ids=list(TARGETS))
def test_pitr_target(archived: Archived, restore_backup: Restore,
                     make_target: Callable[[list[Marker]], Target], expected: int,
                     record_drill: Callable[[PitrDrill], None]) -> None:
    target = make_target(archived.markers)

    _, result = drill(archived, restore_backup, target, "pitr", expected)
    record_drill(result)

    assert result.recovery.state == "promoted"
    assert result.boundary_problems == []
    assert result.recovery.timeline == 2


def test_pitr_immediate_restores_the_dataset_as_it_was_at_the_backup(
        archived: Archived, restore_backup: Restore, record_drill: Callable[[PitrDrill], None]
) -> None:
    """recovery_target = 'immediate' ends at the backup's consistent point: vector_db
    equals the primary's snapshot from then, vector indexes and all."""
    cluster, result = drill(archived, restore_backup, Target("immediate"), "pitr", BEFORE_BACKUP)
    record_drill(result)

    with cluster.connect(SOURCE_DB) as conn:
        verify(archived.at_backup, conn, sequence_slack=32).raise_for_problems()


def test_pitr_pause_then_resume(archived: Archived, restore_backup: Restore,
                                record_drill: Callable[[PitrDrill], None]) -> None:
    target = Target("xid", str(archived.markers[4].xid), action="pause")

    cluster, result = drill(archived, restore_backup, target, "pitr-pause", 5)
    record_drill(result)

    assert result.recovery.state == "paused"
    assert cluster.query("SELECT pg_is_wal_replay_paused(), pg_is_in_recovery()") == \
        [(True, True)]
    assert result.boundary_problems == []  # read-only, at the target
    resume(cluster)
    with cluster.connect(SOURCE_DB) as conn:
        assert boundary_problems(conn, *archived.upto(5)) == []
        conn.execute("INSERT INTO pitr_markers VALUES (100, now(), pg_current_xact_id(), "
                     "'[0,0,0,0,0,0,0,1]')")  # promoted: writable


def test_pitr_shutdown_then_recover_further(archived: Archived, restore_backup: Restore,
                                            record_drill: Callable[[PitrDrill], None]) -> None:
    """recovery_target_action = 'shutdown' stops the server at the target; started again
    with a later target, recovery goes on from there."""
    first = Target("xid", str(archived.markers[3].xid), action="shutdown")

    cluster, result = drill(archived, restore_backup, first, "pitr-shutdown", 4)

    assert result.recovery.state == "shut down"
    assert not cluster.is_running()
    further = recover(cluster, Target("xid", str(archived.markers[9].xid)),
                      cluster.restore_command(archived.archive),
                      BackupPoint.of(cluster.read_file("backup_manifest"), archived.archive))
    assert further.state == "promoted"
    with cluster.connect(SOURCE_DB) as conn:
        record_drill(PitrDrill(f"{first.label()}; then {further.target.label()}",
                               archived.backup_seconds, result.copy_seconds, further,
                               server=server_capabilities(conn).as_dict()))
        assert boundary_problems(conn, *archived.upto(10)) == []


@pytest.mark.parametrize("beyond", ["time", "lsn"])
def test_pitr_target_the_archive_cannot_reach_fails_clearly(
        archived: Archived, restore_backup: Restore, beyond: str) -> None:
    last = archived.markers[-1]
    target = Target("time", (last.commit_time + timedelta(days=1)).isoformat()) \
        if beyond == "time" else Target("lsn", format_lsn(last.commit_lsn + 2**30))
    cluster, _ = restore_backup(archived.backup, "pitr-unreachable")

    with pytest.raises(RestoreError, match="ends before the target") as failure:
        recover(cluster, target, cluster.restore_command(archived.archive),
                BackupPoint.of(cluster.read_file("backup_manifest"), archived.archive))

    assert "recovery ended before configured recovery target was reached" in str(failure.value)
    assert not cluster.is_running()


@pytest.mark.parametrize("early", ["time", "lsn"])
def test_pitr_target_before_the_backup_end_is_refused(
        archived: Archived, restore_backup: Restore, early: str) -> None:
    cluster, _ = restore_backup(archived.backup, "pitr-early")
    point = BackupPoint.of(cluster.read_file("backup_manifest"), archived.archive)
    assert point.end_time is not None, "the archive has the backup's .backup history file"
    # the .backup file's STOP TIME has whole seconds: a second before it is surely earlier
    target = Target("time", (point.end_time - timedelta(seconds=1)).isoformat()) \
        if early == "time" else Target("lsn", format_lsn(point.start_lsn))

    with pytest.raises(RestoreError, match="before the base backup"):
        recover(cluster, target, cluster.restore_command(archived.archive), point)

    assert not cluster.is_running()
    assert "recovery.signal" not in cluster.list_dir()  # refused before touching anything


def test_pitr_archive_is_continuous_and_a_gap_is_named(archived: Archived, wal_workdir: Path
                                                       ) -> None:
    with_gap = wal_workdir / "archive-with-gap"
    shutil.copytree(archived.archive, with_gap)
    backup = BackupPoint.of((archived.backup.path / "backup_manifest").read_bytes())
    last = archived.markers[-1].commit_lsn
    missing = Segment.containing(archived.markers[6].commit_lsn, backup.timeline).name

    check_continuity(archived.archive, backup.start_lsn, backup.timeline,
                     target_lsn=last).require()
    (with_gap / missing).unlink()
    gap = check_continuity(with_gap, backup.start_lsn, backup.timeline, target_lsn=last).gap
    assert gap is not None and gap.startswith(f"segment {missing} is missing: recovery beyond")


def test_pitr_timeline_latest_follows_an_earlier_promotion(
        archived: Archived, restore_backup: Restore, wal_workdir: Path,
        record_drill: Callable[[PitrDrill], None]) -> None:
    """An earlier PITR promoted at marker 6 onto timeline 2 and committed markers 101-103
    there, archiving into the same archive. Restores from the same base backup then follow
    timeline 2 ('latest'), recover to a point on it (across the switch), or stay on
    timeline 1 ('current'), whose markers 7-12 are still in the archive."""
    user = osuser.server_user()
    archive = wal_workdir / "archive-timelines"
    shutil.copytree(archived.archive, archive)
    osuser.chown_tree(archive, user)
    point = BackupPoint.of((archived.backup.path / "backup_manifest").read_bytes(), archive)
    before, after = archived.upto(6)

    promoted, _ = restore_backup(archived.backup, "pitr-tl2")
    fetch = promoted.restore_command(archive)
    promoted.configure(archive_mode="on", archive_command=promoted.archive_command(archive),
                       track_commit_timestamp=True)
    assert recover(promoted, Target("xid", str(before[-1].xid)), fetch, point).timeline == 2
    with promoted.connect(SOURCE_DB) as conn, promoted.connect() as wal_conn:
        writer = MarkerWriter.of(promoted, conn, wal_conn, seed=5)
        branch = [writer.write(i) for i in (101, 102, 103)]
    switch_and_wait(promoted, archive)
    promoted.stop()
    assert check_continuity(archive, point.start_lsn, point.timeline).gap is None

    for name, target, present, absent in [
        ("latest", Target("end"), before + branch, after),
        ("across", Target("xid", str(branch[1].xid)), before + branch[:2], after + branch[2:]),
        ("current", Target("end", timeline="current"), archived.markers, branch),
    ]:
        cluster, copy_seconds = restore_backup(archived.backup, f"pitr-{name}")
        recovery = recover(cluster, target, fetch, point)
        with cluster.connect(SOURCE_DB) as conn:
            result = PitrDrill(target.label(), archived.backup_seconds, copy_seconds,
                               recovery, boundary_problems(conn, present, absent),
                               server=server_capabilities(conn).as_dict())
        record_drill(result)
        assert result.boundary_problems == [], name
        assert recovery.timeline == 3, name  # 2 is taken, even when branching from 1
        cluster.destroy()


def test_pitr_markers_found_by_pg_waldump_where_pg_walinspect_finds_them(
        make_cluster: Callable[..., Cluster], source_template: str) -> None:
    """The fallback for servers without pg_walinspect (PostgreSQL 16.2 and 18.3 of PyPI),
    pg_waldump over the server's pg_wal, finds the commit records pg_walinspect finds."""
    cluster = make_cluster("pitr-markers", template=source_template)
    cluster.configure(track_commit_timestamp=True)
    cluster.stop()
    cluster.start()
    with cluster.connect(SOURCE_DB) as conn, cluster.connect() as wal_conn:
        walinspect = server_capabilities(wal_conn).extension("pg_walinspect")
        if not walinspect.available:
            pytest.skip(f"{walinspect.reason}: nothing to compare pg_waldump with (the "
                        "lsn targets above were found by pg_waldump alone)")
        writer = MarkerWriter.of(cluster, conn, wal_conn)
        writer.create()
        markers = [writer.write(i) for i in (1, 2, 3)]

        writer.walinspect = False
        assert [writer.commit_lsn(m.xid, markers[0].commit_lsn) for m in markers] == \
            [m.commit_lsn for m in markers]


def test_pitr_markers_without_pg_walinspect_or_pg_wal_fail_clearly(
        make_cluster: Callable[..., Cluster], source_template: str) -> None:
    """Without pg_walinspect and no pg_wal to read, the markers' commit records cannot be
    located: a clear DrillError before anything is written, never a pass or a traceback."""
    cluster = make_cluster("pitr-no-walinspect", template=source_template)
    with cluster.connect(SOURCE_DB) as conn, cluster.connect() as wal_conn:
        server = server_capabilities(wal_conn)
        walinspect = server.extension("pg_walinspect")
        if walinspect.available:
            pytest.skip(f"PostgreSQL {server.version} offers pg_walinspect")

        with pytest.raises(DrillError, match="cannot locate the markers' commit records: "
                           f"PostgreSQL {server.version} does not offer the pg_walinspect"):
            MarkerWriter(conn, wal_conn).create()
        assert conn.execute("SELECT to_regclass('pitr_markers')").fetchone() == (None,)


def test_pitr_cli_drill(wal_workdir: Path, tmp_path: Path, pgvdrill_cli: Cli,
                        cli_cache: Path) -> None:
    """`pgvdrill drill --no-logical --pitr lsn,immediate`: the same PITR drills (archive,
    base backup, markers, recovery, exact boundary) from the command line."""
    result = pgvdrill_cli("drill", "--no-logical", "--pitr", "lsn,immediate", "--workdir",
                          wal_workdir, "--cache-dir", cli_cache, "--reports-dir",
                          tmp_path / "reports")

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("pitr base backup plain: ") for line in lines), result.stdout
    for kind, expected in (("lsn", 8), ("immediate", BEFORE_BACKUP)):
        assert any(line.startswith(f"  pitr {kind} (markers 1-{expected} expected): restore ")
                   and "WAL replay" in line and line.endswith("boundary ok")
                   for line in lines), result.stdout
    assert lines[-1].startswith("ok: 2 drill(s), 0 failed; targets: ")
    report = json.loads(next((tmp_path / "reports").glob("*/report.json")).read_text())
    assert [(d["drill"], d["target_kind"], d["ok"], d["problems"]) for d in report["drills"]] \
        == [("pitr:lsn", "lsn", True, []), ("pitr:immediate", "immediate", True, [])]
    for drill_report in report["drills"]:
        assert [p["phase"] for p in drill_report["phases"]] == ["copy", "start", "verify"]
        assert [i["phase"] for i in drill_report["items"]] == ["wal-replay"]
        verdicts = {v["name"]: v["status"] for v in drill_report["verdicts"]}
        assert verdicts["rto.pitr"] == "pass" and "throughput.wal_replay" in verdicts
        restore = drill_report["restore"]
        assert restore["state"] == "promoted" and restore["timeline"] == 2
        assert restore["seconds"] >= restore["copy_seconds"] > 0
        assert drill_report["backup"]["seconds"] > 0
    assert report["drills"][0]["restore"]["target"]["kind"] == "lsn"
    assert report["drills"][1]["restore"]["target"]["kind"] == "immediate"
    assert [p.name for p in wal_workdir.iterdir() if p.name.startswith("pgvdrill-pitr-")] == []
