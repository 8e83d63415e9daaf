"""The comparison point of the DR drill's own base backup (`drill --take`) on a source
that keeps changing (pgvdrill.drill.dr_point): a commit that is in the WAL but not yet
visible to anyone, the case a WAL position alone gets wrong, made to happen for sure."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from pgvdrill.backup.take import take_backup
from pgvdrill.cluster import Backend, Cluster
from pgvdrill.config import load_config
from pgvdrill.drill.dr import drill_physical
from pgvdrill.drill.dr_point import WalStream, comparison_point, sequences_now
from pgvdrill.drill.physical import ComparisonPoint
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.errors import DrillError
from pgvdrill.repository import Entry, Repository
from pgvdrill.server import ExternalServer
from pgvdrill.verify import Snapshot
from pgvdrill.wal.names import parse_lsn

INSERT = ("INSERT INTO product_embeddings (id, name, embedding) SELECT max(id) + %s, %s, "
          "(SELECT embedding FROM product_embeddings WHERE id = 1) FROM product_embeddings")


class HeldCommits:
    """COMMITs whose record is in the WAL but which nobody sees yet: each waits for a
    synchronous standby that never connects (as a commit waits for its flush, briefly,
    on any busy server)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.threads: list[threading.Thread] = []
        self.pids: list[int] = []
        self.open: list[psycopg.Connection[tuple[object, ...]]] = []

    def commit(self) -> int:
        """Start a held commit of one inserted row; its transaction id."""
        conn = psycopg.connect(self.cluster.conninfo.dsn(SOURCE_DB), autocommit=True)
        conn.execute("BEGIN")
        conn.execute(INSERT, (1, "held"))
        row = conn.execute("SELECT pg_current_xact_id()::text, pg_backend_pid()").fetchone()
        assert row is not None
        self.pids.append(int(row[1]))

        def wait() -> None:
            with conn:
                conn.execute("COMMIT")  # returns once cancelled, committed locally

        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        self.threads.append(thread)
        deadline = time.monotonic() + 60
        while self.cluster.query(f"SELECT wait_event FROM pg_stat_activity WHERE pid = "
                                 f"{row[1]}") != [("SyncRep",)]:
            assert time.monotonic() < deadline, "the commit is not waiting for its standby"
            time.sleep(0.05)
        return int(str(row[0]))

    def advance_sequence(self) -> None:
        """nextval() 40 times in a transaction left open (the sequence's WAL record, which
        it logs every 32 calls, lies after the held commit's)."""
        conn = psycopg.connect(self.cluster.conninfo.dsn(SOURCE_DB), autocommit=True)
        self.open.append(conn)
        conn.execute("BEGIN")
        conn.execute("SELECT nextval('documents_chunks_id_seq') FROM generate_series(1, 40)")

    def visible(self) -> None:
        """A commit everyone sees at once (this session does not wait for a standby)."""
        with psycopg.connect(self.cluster.conninfo.dsn(SOURCE_DB), autocommit=True) as conn:
            conn.execute("SET synchronous_commit = local")
            conn.execute("SET lock_timeout = '60s'")
            conn.execute(INSERT, (1000, "seen"))  # the held row's id is locked


@pytest.fixture
def held(prod_source: Cluster) -> Iterator[HeldCommits]:
    prod_source.query("ALTER SYSTEM SET synchronous_standby_names = 'never_connects'")
    prod_source.reload()
    commits = HeldCommits(prod_source)
    try:
        yield commits
    finally:
        for pid in commits.pids:
            prod_source.query(f"SELECT pg_cancel_backend({pid})")
        for thread in commits.threads:
            thread.join(60)
        for conn in commits.open:
            conn.close()
        prod_source.query("ALTER SYSTEM RESET synchronous_standby_names")
        prod_source.reload()


def take(config: Path, source: ExternalServer, wal: Path, after_backup: Callable[[], object]
         ) -> tuple[Entry, tuple[Snapshot, ComparisonPoint] | DrillError]:
    """What `drill --take` does for its base backup, with `after_backup` run between the
    backup's end and the comparison point."""
    before = sequences_now(source)
    with WalStream(source, wal) as stream:
        entry = take_backup(load_config(config), "physical", print)
        after_backup()
        assert entry.end_lsn is not None and entry.timeline is not None
        try:
            return entry, comparison_point(source, stream, parse_lsn(entry.end_lsn),
                                           entry.timeline, before, print)
        except DrillError as exc:
            return entry, exc


def source_of(config: Path, backend: Backend) -> ExternalServer:
    return ExternalServer(load_config(config).require_source().conninfo, backend.tools())


def test_a_commit_in_the_wal_that_the_snapshot_does_not_see_is_left_out(
        backend: Backend, held: HeldCommits, ops_config: Callable[..., Path],
        reachable: Path, tmp_path: Path) -> None:
    """The copy stops before that commit; a sequence called after it (all sequence calls
    come before the snapshot's read) is compared with its state before the backup."""
    config = ops_config()
    source = source_of(config, backend)
    xids: list[int] = []

    def after_backup() -> None:
        xids.append(held.commit())
        held.advance_sequence()

    entry, found = take(config, source, reachable / "wal", after_backup)

    assert not isinstance(found, DrillError), found
    snap, point = found
    _, xmax, running = point.xids.split(":")
    assert str(xids[0]) in running.split(",") or xids[0] >= int(xmax)  # unseen, yet in
    # the WAL before the insert position
    drill = drill_physical(backend, Repository(tmp_path / "repo"), entry, source,
                           snap, recall_threshold=0.9, say=print, point=point)
    assert drill["ok"], drill["problems"]


def test_a_commit_unseen_by_the_snapshot_before_the_backup_ended_is_inconclusive(
        backend: Backend, held: HeldCommits, ops_config: Callable[..., Path],
        reachable: Path, tmp_path: Path) -> None:
    """Held from before the backup: its commit is in the backup itself, no WAL position
    after the backup's end matches the snapshot; the restored copy proves it."""
    config = ops_config()
    source = source_of(config, backend)
    xid = held.commit()

    entry, found = take(config, source, reachable / "wal", lambda: None)

    assert not isinstance(found, DrillError), found
    snap, point = found
    drill = drill_physical(backend, Repository(tmp_path / "repo"), entry, source,
                           snap, recall_threshold=0.9, say=print, point=point)
    assert drill["ok"] is False, drill
    assert drill.get("error", "").startswith("inconclusive: "), drill["problems"]
    assert f"transaction(s) {xid}, which the source's snapshot" in drill["error"]


def test_commits_that_cross_make_the_point_inconclusive(
        backend: Backend, held: HeldCommits, ops_config: Callable[..., Path],
        reachable: Path) -> None:
    """A commit the snapshot sees after one it does not see in the WAL: no position
    matches; taken again, the same; never a pass."""
    config = ops_config()
    source = source_of(config, backend)

    def cross() -> None:
        held.commit()
        held.visible()

    _, found = take(config, source, reachable / "wal", cross)

    assert isinstance(found, DrillError)
    assert found.message.startswith("inconclusive: no WAL position of the source matched "
                                    "its snapshot in 3 attempts (transaction ")
    assert "which it sees" in found.message
