"""RPO, measured rather than claimed (the runbook promises < 1 min with WAL archiving).

A writer commits timestamped rows with vectors continuously; the primary is destroyed
(SIGKILL, data directory removed); a base backup is recovered with the surviving WAL.
RPO = the last acknowledged commit's timestamp minus the last recovered one.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from fixtures.clusters import source_copy
from pgvdrill import osuser
from pgvdrill.cluster import Cluster
from pgvdrill.cluster.directory import DirectoryCluster
from pgvdrill.drill.record import ran_on
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS, BaseBackup
from pgvdrill.physical.backup import base_backup
from pgvdrill.report.record import Record
from pgvdrill.wal.archiving import (
    enable_archiving,
    hand_to_server,
    make_archive_dir,
)
from pgvdrill.wal.continuity import check_continuity
from pgvdrill.wal.pitr import BackupPoint, Recovery, Target, recover
from pgvdrill.wal.receiver import Receiver

ARCHIVE_TIMEOUT = 2  # seconds
WRITE_SECONDS = 8.0  # longer than the RPO bound, so an unbounded RPO shows
Restore = Callable[[BaseBackup, str], tuple[Cluster, float]]


class Writer(threading.Thread):
    """Commits one row (id, clock_timestamp(), vector) per transaction until stopped or the
    server dies; remembers the last acknowledged commit."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(daemon=True)
        self.dsn = cluster.conninfo.dsn(SOURCE_DB)
        self.acknowledged: tuple[int, datetime] | None = None
        self.stopping = threading.Event()
        self.error: Exception | None = None
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE rpo_writes (id int PRIMARY KEY, "
                         "ts timestamptz NOT NULL, embedding vector(8) NOT NULL)")

    def run(self) -> None:
        rng = np.random.default_rng(3)
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                register_vector(conn)
                i = 0
                while not self.stopping.is_set():
                    i += 1
                    row = conn.execute(
                        "INSERT INTO rpo_writes VALUES (%s, clock_timestamp(), %s) RETURNING ts",
                        (i, rng.standard_normal(8).astype(np.float32))).fetchone()
                    assert row is not None
                    self.acknowledged = (i, row[0])  # the commit returned: acknowledged
                    time.sleep(0.01)
        except psycopg.OperationalError as exc:  # the primary was killed
            self.error = exc


@dataclass
class RpoDrill:
    mode: str
    rpo_seconds: float
    acknowledged: tuple[int, datetime]
    recovered: tuple[int, datetime]
    recovery: Recovery
    copy_seconds: float
    server: Record  # what the recovered copy ran on (ran_on)

    def as_dict(self) -> dict[str, object]:
        lost = max(0.0, self.rpo_seconds)  # recovered past the last acknowledgement: none
        return {"drill": f"rpo:{self.mode}", "kind": "rpo",
                "backup": {"setting": "plain"}, "measures": {"rpo_seconds": round(lost, 3)},
                "evidence": {"rpo": {"kind": "wal_archiving", "seconds": lost}},
                "last_acknowledged": {"id": self.acknowledged[0],
                                      "ts": self.acknowledged[1].isoformat()},
                "last_recovered": {"id": self.recovered[0], "ts": self.recovered[1].isoformat()},
                "restore": {"seconds": round(self.copy_seconds + self.recovery.start_to_ready, 3),
                            "copy_seconds": round(self.copy_seconds, 3),
                            **self.recovery.as_dict()},
                "server": self.server}


rpo_source = source_copy("rpo-primary")


@pytest.fixture
def primary(rpo_source: Cluster) -> DirectoryCluster:
    """A started copy of the source, whose data directory this test removes."""
    assert isinstance(rpo_source, DirectoryCluster)
    return rpo_source


def destroy_while_writing(primary: DirectoryCluster) -> tuple[int, datetime]:
    """Run the writer, then SIGKILL the primary and remove its data directory; the last
    acknowledged commit."""
    writer = Writer(primary)
    writer.start()
    time.sleep(WRITE_SECONDS)
    primary.crash("kill")
    shutil.rmtree(primary.datadir)
    writer.stopping.set()
    writer.join(30)
    assert writer.acknowledged is not None, writer.error
    return writer.acknowledged


def take_base_backup(cluster: Cluster, dest: Path) -> BaseBackup:
    """The plain base backup (-Fp -X stream, fast checkpoint) recoveries start from."""
    return base_backup(cluster, BASE_BACKUP_SETTINGS["plain"], dest, fast_checkpoint=True)


def recover_and_measure(mode: str, restore: Restore, backup: BaseBackup, wal: Path, *,
                        partial: bool, acknowledged: tuple[int, datetime]) -> RpoDrill:
    """Recover the base backup with all WAL in `wal`; check the recovered rows are a prefix
    of the committed ones; the measured RPO."""
    point = BackupPoint.of((backup.path / "backup_manifest").read_bytes())
    check_continuity(wal, point.start_lsn, point.timeline, partial=partial).require()
    cluster, copy_seconds = restore(backup, f"rpo-{mode}")
    recovery = recover(cluster, Target("end"), cluster.restore_command(wal, partial=partial), point)
    rows = cluster.query("SELECT count(*), max(id), max(ts) FROM rpo_writes", SOURCE_DB)
    count, last_id, last_ts = rows[0]
    assert count == last_id, f"recovered rows are not a prefix: {count} rows, max id {last_id}"
    assert isinstance(last_id, int) and isinstance(last_ts, datetime)
    rpo = (acknowledged[1] - last_ts).total_seconds()
    with cluster.connect(SOURCE_DB) as conn:
        server = ran_on(conn)
    return RpoDrill(mode, rpo, acknowledged, (last_id, last_ts), recovery, copy_seconds,
                    server)


def test_rpo_archive_command_is_bounded_by_archive_timeout(
        primary: DirectoryCluster, restore_backup: Restore, wal_workdir: Path,
        record_drill: Callable[[RpoDrill], None]) -> None:
    archive = make_archive_dir(wal_workdir / "rpo-archive", osuser.server_user())
    enable_archiving(primary, archive, archive_timeout=ARCHIVE_TIMEOUT)
    backup = take_base_backup(primary, wal_workdir / "rpo-archive-base")

    acknowledged = destroy_while_writing(primary)
    result = recover_and_measure("archive_command, archive_timeout 2s", restore_backup,
                                 backup, archive, partial=False,
                                 acknowledged=acknowledged)
    record_drill(result)

    assert result.recovered[0] > 0, "nothing written after the backup was recovered"
    # a switch, then archiving: the bound leaves room for a loaded machine (the measured
    # figure is in the report); without archive_timeout the RPO would be the whole run
    assert 0 <= result.rpo_seconds <= ARCHIVE_TIMEOUT + 3 < WRITE_SECONDS


def test_rpo_synchronous_pg_receivewal_loses_no_acknowledged_commit(
        primary: DirectoryCluster, restore_backup: Restore, wal_workdir: Path,
        record_drill: Callable[[RpoDrill], None]) -> None:
    received = wal_workdir / "rpo-receivewal"
    receiver = Receiver(primary, received, synchronous=True).start()
    try:
        backup = take_base_backup(primary, wal_workdir / "rpo-sync-base")
        acknowledged = destroy_while_writing(primary)
    finally:
        receiver.stop()
    hand_to_server(received, osuser.server_user())
    assert any(p.name.endswith(".partial") for p in received.iterdir())

    result = recover_and_measure("pg_receivewal --synchronous", restore_backup,
                                 backup, received, partial=True,
                                 acknowledged=acknowledged)
    record_drill(result)

    assert result.recovered[0] >= acknowledged[0], "an acknowledged commit was lost"
    assert result.rpo_seconds <= 0
