"""Backups under load: a writer commits vector rows continuously while pg_dump or
pg_basebackup runs, and the restored copy must be transactionally consistent.

The writer is pgbench (one client) with a script whose every transaction inserts a batch of
BATCH_ROWS vector rows under a new batch id into load_rows and adds them to the single
row of load_tally. A restore is consistent iff every batch is complete, the rows add up to
the tally, and the tally lies between the one sampled just before the backup started and
the one sampled just after it ended (a dump shows its start, a base backup its end). The
dataset's own tables must verify against the primary's snapshot taken before the load.
Each drill records the backup's duration and the writer's throughput during it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from fixtures.clusters import source_copy
from fixtures.polling import assert_until
from pgvdrill.cluster import Cluster, Server
from pgvdrill.cluster.directory import DirectoryCluster
from pgvdrill.drill.physical import SEQUENCE_SLACK
from pgvdrill.drill.record import ran_on
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.logical.dump import DUMP_SETTINGS, DumpResult, dump
from pgvdrill.logical.restore import RESTORE_SETTINGS, create_database, restore
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS, BaseBackup
from pgvdrill.physical.backup import base_backup, cluster_size
from pgvdrill.proc.background import Process
from pgvdrill.report.record import Record
from pgvdrill.verify import Snapshot, Verification, snapshot, verify

BATCH_ROWS = 10
WRITER_TPS = 400  # pgbench --rate: a steady load that leaves CPU to the backup and others
MIN_OVERLAP = 20  # writer transactions committed while the backup ran, at least
BASE_BACKUP_SECONDS = 2.5  # pg_basebackup --max-rate stretches the copy to about this
SCHEMA = """
CREATE SEQUENCE load_batch;
CREATE TABLE load_rows (id bigserial PRIMARY KEY, batch bigint NOT NULL,
                        embedding vector(8) NOT NULL);
CREATE TABLE load_tally (rows bigint NOT NULL, batches bigint NOT NULL);
INSERT INTO load_tally VALUES (0, 0);
"""
WRITER_SCRIPT = f"""\\set batch_rows {BATCH_ROWS}
BEGIN;
INSERT INTO load_rows (batch, embedding)
    SELECT b.id, (SELECT array_agg(random()) FROM generate_series(1, 8) WHERE g > 0)::vector
    FROM (SELECT nextval('load_batch') AS id) b, generate_series(1, :batch_rows) g;
UPDATE load_tally SET rows = rows + :batch_rows, batches = batches + 1;
END;
"""
Restore = Callable[[BaseBackup, str], tuple[Cluster, float]]


@dataclass(frozen=True)
class Tally:
    rows: int
    batches: int
    at: float  # time.monotonic() when read

    @classmethod
    def read(cls, server: Server) -> Tally:
        rows = server.query("SELECT rows, batches FROM load_tally", SOURCE_DB)
        assert len(rows) == 1, f"load_tally must hold one row, holds {len(rows)}"
        return cls(int(str(rows[0][0])), int(str(rows[0][1])), time.monotonic())

    def as_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "batches": self.batches}


@dataclass
class LoadDrill:
    """One backup taken while the writer ran, restored and checked."""

    kind: str  # logical or physical
    backup: DumpResult | BaseBackup
    before: Tally  # sampled just before the backup started
    after: Tally  # and just after it ended
    restored: Tally
    restore_seconds: float
    problems: list[str]
    verification: Verification
    server: Record  # what the restored copy ran on (ran_on)

    @property
    def ok(self) -> bool:
        return not self.problems and self.verification.ok

    @property
    def setting(self) -> str:
        return self.backup.setting.name

    @property
    def window(self) -> float:
        return self.after.at - self.before.at

    def measures(self) -> dict[str, object]:
        batches = self.after.batches - self.before.batches
        return {"backup_seconds": round(self.backup.seconds, 3),
                "writer_window_seconds": round(self.window, 3),
                "writer_transactions": batches,
                "writer_tps": round(batches / self.window, 1),
                "writer_rows_per_second": round(
                    (self.after.rows - self.before.rows) / self.window, 1),
                "batch_rows": BATCH_ROWS, "writer_rate_limit_tps": WRITER_TPS}

    def summary(self) -> str:
        m = self.measures()
        return (f"{self.kind} {self.setting}: backup {m['backup_seconds']}s, writer "
                f"{m['writer_tps']} tps / {m['writer_rows_per_second']} rows/s "
                f"({m['writer_transactions']} transactions during it); restored batch "
                f"{self.restored.batches} of {self.before.batches}..{self.after.batches}")

    def as_dict(self) -> dict[str, object]:
        return {"drill": f"load:{self.kind}:{self.setting}", "kind": "load", "ok": self.ok,
                "backup": self.backup.as_dict(),
                "restore": {"setting": "fresh" if self.kind == "logical" else "start",
                            "seconds": round(self.restore_seconds, 3)},
                "measures": self.measures(),
                "load": {"before": self.before.as_dict(), "after": self.after.as_dict(),
                         "restored": self.restored.as_dict()},
                "evidence": {}, "verification": self.verification.as_dict(),
                "problems": self.problems, "server": self.server}


class Writer:
    """pgbench running WRITER_SCRIPT against `cluster` until stopped: one client,
    WRITER_TPS transactions a second on schedule (fewer when the server falls behind)."""

    def __init__(self, cluster: DirectoryCluster, workdir: Path) -> None:
        script = workdir / "load-writer.sql"
        script.write_text(WRITER_SCRIPT)
        argv, env = cluster.process_command(
            "pgbench", ["--no-vacuum", "--client=1", f"--rate={WRITER_TPS}", "--time=600",
                        "--progress=1", f"--file={script}", SOURCE_DB], {})
        self.cluster = cluster
        self.process = Process(argv, workdir / "load-writer.log", env=env)

    def __enter__(self) -> Writer:
        first = Tally.read(self.cluster).batches
        self.process.start()
        process = self.process

        def committing() -> bool:  # connected and committing
            if Tally.read(self.cluster).batches >= first + 5:
                return True
            process.check_running()
            return False

        assert_until(committing, timeout=30, message=lambda _: (
            f"the writer committed nothing in 30s:\n{process.log_tail()}"))
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop()

    def alive(self) -> None:
        """Raise with pgbench's output if it stopped (an error in a transaction)."""
        self.process.check_running()


load_source = source_copy("load-primary", scope="module")


@pytest.fixture(scope="module")
def primary(load_source: Cluster) -> tuple[DirectoryCluster, Snapshot]:
    """A started copy of the source with the writer's tables, and a snapshot of the
    dataset taken before any load."""
    assert isinstance(load_source, DirectoryCluster)
    with load_source.connect(SOURCE_DB) as conn:
        dataset = snapshot(conn)
        conn.execute(SCHEMA)
    return load_source, dataset


def consistency_problems(restored: Server, before: Tally, after: Tally) -> tuple[Tally, list[str]]:
    """The restored tally, and every way the restored load tables are not a committed
    state of the writer between `before` and `after`."""
    tally = Tally.read(restored)
    [(rows, batches)] = restored.query("SELECT count(*), count(DISTINCT batch) FROM load_rows",
                                       SOURCE_DB)
    problems = []
    if rows != tally.rows or batches != tally.batches:
        problems.append(f"load_rows holds {rows} rows in {batches} batches, but load_tally "
                        f"counts {tally.rows} rows in {tally.batches} batches: the restore "
                        "holds part of a transaction")
    partial = restored.query(f"SELECT batch, count(*) FROM load_rows GROUP BY batch "
                             f"HAVING count(*) <> {BATCH_ROWS} ORDER BY batch LIMIT 5", SOURCE_DB)
    if partial:
        problems.append(f"batches with other than {BATCH_ROWS} rows (batch, rows): {partial}: "
                        "a transaction was restored in part")
    if not before.batches <= tally.batches <= after.batches:
        problems.append(f"the restored tally ({tally.batches} batches) is outside the writer's "
                        f"state while the backup ran ({before.batches}..{after.batches})")
    return tally, problems


def loaded_backup(cluster: DirectoryCluster, take: Callable[[], DumpResult | BaseBackup],
                  workdir: Path) -> tuple[DumpResult | BaseBackup, Tally, Tally]:
    """Take a backup while the writer runs; the backup, the tally just before and just
    after it."""
    with Writer(cluster, workdir) as writer:
        before = Tally.read(cluster)
        backup = take()
        after = Tally.read(cluster)
        writer.alive()
    assert after.batches - before.batches >= MIN_OVERLAP, (
        f"the writer committed only {after.batches - before.batches} transactions while the "
        f"backup ran ({after.at - before.at:.2f}s): the drill proves little; slow the backup "
        "(--max-rate) or grow the dataset")
    return backup, before, after


def check_dataset(restored: Server, dataset: Snapshot, **options: int
                  ) -> tuple[Verification, Record]:
    """The restored dataset verified, and the server it was restored on (ran_on)."""
    with restored.connect(SOURCE_DB) as conn:
        return verify(dataset, conn, tables=list(dataset.schema.tables), **options), ran_on(conn)


def test_load_logical_dump_is_one_consistent_snapshot(
        primary: tuple[DirectoryCluster, Snapshot], target: Cluster, tmp_path: Path,
        record_drill: Callable[[LoadDrill], None]) -> None:
    """pg_dump -F c -Z 9 while the writer commits: the archive holds the state of the
    moment the dump began, every batch whole, and the dataset intact."""
    cluster, dataset = primary
    setting = DUMP_SETTINGS["custom-z9"]
    dumped, before, after = loaded_backup(
        cluster, lambda: dump(cluster, SOURCE_DB, setting, tmp_path / "dump"), tmp_path)
    assert isinstance(dumped, DumpResult)
    assert dumped.toc_problems == ()

    create_database(target, SOURCE_DB)
    restored = restore(target, dumped.archive, SOURCE_DB, RESTORE_SETTINGS["fresh"])
    tally, problems = consistency_problems(target, before, after)
    result = LoadDrill("logical", dumped, before, after, tally, restored.seconds, problems,
                       *check_dataset(target, dataset))
    record_drill(result)

    assert result.problems == [], result.summary()
    result.verification.raise_for_problems()
    assert tally.batches < after.batches, "a dump shows its start, not the writes after it"


@pytest.mark.parametrize("name", ["plain", "tar-stream"])
def test_load_base_backup_recovers_to_a_consistent_end(
        primary: tuple[DirectoryCluster, Snapshot], restore_backup: Restore,
        wal_workdir: Path, tmp_path: Path, name: str,
        record_drill: Callable[[LoadDrill], None]) -> None:
    """pg_basebackup with WAL streamed, its copy slowed by --max-rate to overlap the writer:
    started, the restored server is at the backup's end, every batch whole, the dataset
    intact."""
    cluster, dataset = primary
    rate = max(32, int(cluster_size(cluster) / BASE_BACKUP_SECONDS / 1024))  # kB/s, >= 32
    usual = BASE_BACKUP_SETTINGS[name]
    setting = replace(usual, args=(*usual.args, f"--max-rate={rate}k"),
                      description=f"{usual.description}, --max-rate={rate}k")
    dest = wal_workdir / f"load-{name}"
    backup, before, after = loaded_backup(
        cluster, lambda: base_backup(cluster, setting, dest, fast_checkpoint=True), tmp_path)
    assert isinstance(backup, BaseBackup)

    restored, copy_seconds = restore_backup(backup, f"load-{name}")
    started = time.monotonic()
    restored.start()
    restore_seconds = copy_seconds + time.monotonic() - started
    tally, problems = consistency_problems(restored, before, after)
    result = LoadDrill("physical", backup, before, after, tally, restore_seconds, problems,
                       *check_dataset(restored, dataset, sequence_slack=SEQUENCE_SLACK))
    record_drill(result)

    assert result.problems == [], result.summary()
    result.verification.raise_for_problems()
    assert tally.batches > before.batches, \
        "a base backup restores to its end: the writes during the copy are missing"
