"""Drills: back up a source, restore into a target, verify, time each step.

A drill is a pairing of a backup setting and a restore setting; the CLI and the pytest
drills compose the same functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pgvdrill.cluster import Backend, Cluster
from pgvdrill.dataset import Dataset
from pgvdrill.logical.dump import DumpResult, DumpSetting, dump
from pgvdrill.logical.restore import RestoreResult, RestoreSetting, create_database, restore
from pgvdrill.source import SOURCE_DB, dataset_template
from pgvdrill.verify import Snapshot, Verification, snapshot, verify
from pgvdrill.verify.ground_truth import ground_truth_check


@dataclass
class LogicalDrill:
    """The outcome of one dump -> restore -> verify pairing."""

    dump: DumpResult
    restore: RestoreResult
    verification: Verification

    @property
    def ok(self) -> bool:
        return self.verification.ok

    @property
    def name(self) -> str:
        return f"logical:{self.dump.setting.name}->{self.restore.setting.name}"

    def as_dict(self) -> dict[str, object]:
        return {"drill": self.name, "kind": "logical", "ok": self.ok,
                "backup": self.dump.as_dict(), "restore": self.restore.as_dict(),
                "verification": self.verification.as_dict()}


def restore_and_verify(
    dumped: DumpResult, target: Cluster, dbname: str, setting: RestoreSetting,
    source: Snapshot, *, data: Dataset | None = None, recall_threshold: float = 0.9,
) -> LogicalDrill:
    """Restore an already checked dump into `dbname` on `target` and verify it against the
    source's snapshot (and, given the dataset, against its ground truth)."""
    create_database(target, dbname)
    if setting.clean:
        # the runbook's overwrite: restore over a database that has since diverged
        restore(target, dumped.archive, dbname, RestoreSetting("seed"))
        with target.connect(dbname) as conn:
            diverge(conn)
    restored = restore(target, dumped.archive, dbname, setting)
    with target.connect(dbname) as conn:
        verification = verify(source, conn, recall_threshold=recall_threshold)
        if data is not None:
            verification.checks.append(ground_truth_check(
                conn, data.queries, data.ground_truth, threshold=recall_threshold))
    return LogicalDrill(dumped, restored, verification)


def diverge(conn: psycopg.Connection[Any]) -> None:
    """Make a restored database differ from its dump: delete rows, drop an index."""
    tables = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    ).fetchall()
    for schema, table in tables:
        conn.execute(sql.SQL("DELETE FROM {} WHERE random() < 0.1").format(
            sql.Identifier(schema, table)))
    index = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE NOT i.indisprimary AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " ORDER BY 2 LIMIT 1").fetchone()
    if index is not None:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(*index)))


def drop_database(cluster: Cluster, dbname: str) -> None:
    with cluster.connect() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(dbname)))


@dataclass
class DrillPlan:
    """What `pgvdrill drill` runs: a dataset, dump settings x restore settings."""

    data: Dataset
    dump_settings: list[DumpSetting]
    restore_settings: list[RestoreSetting]
    recall_threshold: float = 0.9


@dataclass
class PlanResult:
    drills: list[LogicalDrill]
    server: dict[str, object]
    dataset: dict[str, object]
    seconds: float

    @property
    def failed(self) -> list[LogicalDrill]:
        return [d for d in self.drills if not d.ok]

    def as_dict(self) -> dict[str, object]:
        return {"ok": not self.failed, "seconds": round(self.seconds, 3), "server": self.server,
                "dataset": self.dataset, "drills": [d.as_dict() for d in self.drills]}


def run_plan(
    backend: Backend, plan: DrillPlan, outdir: Path, progress: Callable[[str], None]
) -> PlanResult:
    """Load the dataset into a source, run every pairing against a scratch target,
    announcing each step through `progress`."""
    started = time.monotonic()
    template, load_seconds = dataset_template(backend, plan.data)
    progress(f"dataset {plan.data.spec.key()}: "
             + (f"loaded in {load_seconds:.1f}s" if load_seconds else "cached template"))
    drills: list[LogicalDrill] = []
    with backend.cluster("source", template=template) as source, \
            backend.cluster("target") as target:
        with source.connect(SOURCE_DB) as conn:
            snapshot_started = time.monotonic()
            snap = snapshot(conn)
        progress(f"source snapshot: {time.monotonic() - snapshot_started:.1f}s")
        for setting in plan.dump_settings:
            dumped = dump(source, SOURCE_DB, setting, outdir)
            progress(f"backup {setting.name}: {dumped.seconds:.2f}s, "
                     f"{dumped.archive.size_bytes / 1e6:.1f} MB, "
                     f"{len(dumped.archive.toc)} TOC items")
            for rsetting in plan.restore_settings:
                dbname = f"restored_{setting.name}_{rsetting.name}".replace("-", "_")
                drill = restore_and_verify(dumped, target, dbname, rsetting, snap,
                                           data=plan.data,
                                           recall_threshold=plan.recall_threshold)
                drop_database(target, dbname)
                drills.append(drill)
                progress(f"  restore {rsetting.name}: {drill.restore.seconds:.2f}s; verify "
                         + drill.verification.summary())
                for problem in drill.verification.problems():
                    progress(f"    - {problem}")
        server = {"backend": backend.name, "major": backend.major,
                  "version": source.query("SHOW server_version")[0][0],
                  "pgvector": backend.pgvector_version()}
    return PlanResult(drills, server,
                      {"key": plan.data.spec.key(), "load_seconds": round(load_seconds, 3)},
                      time.monotonic() - started)
