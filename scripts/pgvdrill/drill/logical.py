"""Drills: back up a source, restore into a target, verify, time each step.

A drill is a pairing of a backup setting and a restore setting; the CLI and the pytest
drills compose the same functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from psycopg import sql

from pgvdrill.cluster import Backend, Cluster
from pgvdrill.dataset import Dataset
from pgvdrill.drill.record import DrillFailure, DrillResult, ran_on, run_cases
from pgvdrill.drill.source import SOURCE_DB, dataset_template
from pgvdrill.errors import ConfigError, DrillError
from pgvdrill.logical.archive import Archive
from pgvdrill.logical.dump import PARTIAL_DUMP_SETTINGS, DumpResult, DumpSetting, dump
from pgvdrill.logical.pairing import (
    expected_tables,
    finish,
    prepare,
    refusal,
    user_tables,
)
from pgvdrill.logical.restore import RestoreResult, RestoreSetting, restore
from pgvdrill.report.record import DrillEntry, Record
from pgvdrill.timing import restore_phases
from pgvdrill.verify import Check, Snapshot, Verification, snapshot, verify
from pgvdrill.verify.ground_truth import ground_truth_check, index_recall
from pgvdrill.verify.outcome import run_check

SCHEMA_ONLY = PARTIAL_DUMP_SETTINGS["schema-only"]


@dataclass
class LogicalDrill:
    """The outcome of one dump -> restore -> verify pairing."""

    dump: DumpResult
    restore: RestoreResult
    verification: Verification
    server: Record | None = None  # ran_on() the restored database
    kind: ClassVar[str] = "logical"

    @property
    def ok(self) -> bool:
        return self.verification.ok and not self.dump.toc_problems

    @property
    def name(self) -> str:
        return f"logical:{self.dump.setting.name}->{self.restore.setting.name}"

    def summary(self) -> str:
        return f"{self.restore.seconds:.2f}s; verify {self.verification.summary()}"

    def problems(self) -> list[str]:
        return [*self.dump.toc_problems, *self.verification.problems()]

    @property
    def whole(self) -> bool:
        """A whole database dumped and restored: its throughput is comparable."""
        setting = self.restore.setting
        return self.dump.whole and not setting.tables and setting.section == "all"

    def measures(self) -> dict[str, object]:
        found = self.dump.measures()
        if self.whole and self.restore.seconds > 0:
            found["restore_bytes_per_second"] = round(
                self.dump.archive.size_bytes / self.restore.seconds)
        return found

    def evidence(self) -> dict[str, object]:
        """What the targets are judged on (see verdicts.evaluate)."""
        seconds = self.restore.seconds
        throughput = []
        if self.dump.whole:
            throughput.append({"kind": "logical_backup", "bytes": self.dump.source_bytes,
                               "seconds": self.dump.seconds})
        if self.whole:
            throughput.append({"kind": "logical_restore",
                               "bytes": self.dump.archive.size_bytes, "seconds": seconds})
        return {"restore": {"kind": "logical", "seconds": seconds if self.ok else None,
                            "why": None if self.ok else "the restore did not verify"},
                "throughput": throughput}

    def entry(self) -> DrillEntry:
        return DrillEntry(
            self.name, self.kind, self.ok, server=self.server, backup=self.dump.as_dict(),
            restore=self.restore.as_dict(), measures=self.measures(),
            phases=restore_phases(list(self.restore.phases), self.verification.seconds),
            items=[i.as_dict() for i in self.restore.items], evidence=self.evidence(),
            verification=self.verification.as_dict(), problems=self.problems())

    def as_dict(self) -> dict[str, Any]:
        return self.entry().as_dict()


def restore_dump_and_verify(
    dumped: DumpResult, target: Cluster, dbname: str, setting: RestoreSetting,
    source: Snapshot, *, data: Dataset | None = None, recall_threshold: float = 0.9,
    schema_source: Archive | None = None, source_index_recall: float | None = None,
) -> LogicalDrill:
    """Prepare `dbname` on `target` as `setting` needs, restore the checked dump (timed),
    and verify: the restored tables against the source's snapshot, that exactly those
    tables arrived, that tables already there are unchanged, and (given the dataset) the
    ground truth (the index path against `source_index_recall`, the source's own figure
    on the same queries, when given)."""
    archive = dumped.archive
    reason = refusal(dumped.setting, setting)
    if reason is not None:
        raise ConfigError(f"restore {setting.name!r} cannot take dump "
                          f"{dumped.setting.name!r}: {reason}")
    restored_tables = expected_tables(target, archive, setting)
    if not restored_tables:
        raise ConfigError(f"dump {dumped.setting.name!r} holds none of {setting.tables}")
    prepare(target, dbname, archive, setting, schema_source)
    with target.connect(dbname) as conn:
        present = user_tables(conn)
        before = snapshot(conn, tables=_names(present)) if present else None
    restored = finish(target, dbname, archive, setting, schema_source,
                      restore(target, archive, dbname, setting))
    content = setting.section != "schema" and bool(archive.entries("TABLE DATA"))
    source_tables = {(t.schema, t.name) for t in source.schema.tables.values()}
    scope = None if source_tables <= set(restored_tables) else _names(restored_tables)
    with target.connect(dbname) as conn:
        server = ran_on(conn)
        verification = verify(source, conn, tables=scope, recall_threshold=recall_threshold,
                              content=content)
        verification.checks.append(run_check("arrived", lambda c: c.problems.extend(
            _arrival_problems(user_tables(conn), restored_tables, present, setting))))
        if before is not None and setting.prepare == "other-tables":
            untouched = verify(before, conn, tables=_names(present),
                               recall_threshold=recall_threshold)
            verification.checks.append(Check(
                "untouched", untouched.ok, untouched.problems(), untouched.seconds))
        if data is not None and content and ("public", "documents") in restored_tables:
            verification.checks.append(ground_truth_check(
                conn, data.queries, data.ground_truth, threshold=recall_threshold,
                source_index_recall=source_index_recall))
    return LogicalDrill(dumped, restored, verification, server)


def _names(tables: list[tuple[str, str]]) -> list[str]:
    return ['"{}"."{}"'.format(s.replace('"', '""'), t.replace('"', '""')) for s, t in tables]


def _arrival_problems(now: list[tuple[str, str]], restored: list[tuple[str, str]],
                      present: list[tuple[str, str]], setting: RestoreSetting) -> list[str]:
    """Exactly the intended tables arrived; nothing else appeared or vanished."""
    expected = set(restored) | set(present)
    problems = [f"table {s}.{t} was to be restored but is missing"
                for s, t in sorted(expected - set(now))]
    problems += [f"table {s}.{t} appeared although restore {setting.name!r} does not "
                 "restore it" for s, t in sorted(set(now) - expected)]
    return problems


def _dbname(dumped: DumpResult, setting: RestoreSetting) -> str:
    return f"restored_{dumped.setting.name}_{setting.name}".replace("-", "_")


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


def failed_restore(dumped: DumpResult, setting: RestoreSetting, error: DrillError
                   ) -> DrillFailure:
    """A pairing whose restore could not run or failed (e.g. the target lacks pgvector)."""
    return DrillFailure(f"logical:{dumped.setting.name}->{setting.name}", "logical", error,
                        stage="restore", backup=dumped.as_dict(),
                        restore={"setting": setting.name}, measures=dumped.measures())


@dataclass
class PlanResult:
    drills: list[DrillResult]
    server: dict[str, object]
    dataset: dict[str, object]
    seconds: float

    @property
    def failed(self) -> list[DrillResult]:
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
    drills: list[DrillResult] = []
    with backend.cluster("source", template=template) as source, \
            backend.cluster("target") as target:
        with source.connect(SOURCE_DB) as conn:
            snapshot_started = time.monotonic()
            snap = snapshot(conn)
            source_recall = (index_recall(conn, plan.data.queries, plan.data.ground_truth)
                             if plan.dump_settings else None)  # only the restores use it
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        progress(f"source snapshot: {time.monotonic() - snapshot_started:.1f}s")
        taken: dict[str, DumpResult] = {}

        def dumped_with(setting: DumpSetting) -> DumpResult:
            if setting.name not in taken:
                taken[setting.name] = dump(source, SOURCE_DB, setting, outdir)
            return taken[setting.name]

        def restore_each(dumped: DumpResult, schema: Archive | None) -> list[DrillResult]:
            def restored(setting: RestoreSetting) -> LogicalDrill:
                return restore_dump_and_verify(
                    dumped, target, _dbname(dumped, setting), setting, snap, data=plan.data,
                    recall_threshold=plan.recall_threshold, schema_source=schema,
                    source_index_recall=source_recall)

            return run_cases(
                plan.restore_settings, restored, partial(failed_restore, dumped), progress,
                label=lambda setting: f"restore {setting.name}",
                skip=partial(refusal, dumped.setting),
                after=lambda setting, _: drop_database(target, _dbname(dumped, setting)))

        for setting in plan.dump_settings:
            dumped = dumped_with(setting)
            progress(f"backup {setting.name}: {dumped.seconds:.2f}s, "
                     f"{dumped.archive.size_bytes / 1e6:.1f} MB, "
                     f"{len(dumped.archive.toc)} TOC items"
                     + "".join(f"\n  - {p}" for p in dumped.toc_problems))
            schema_from = setting.selection.section == "data" and any(
                refusal(setting, r) is None for r in plan.restore_settings)
            drills += restore_each(
                dumped, dumped_with(SCHEMA_ONLY).archive if schema_from else None)
        server = {**backend.facts(), "version": source.query("SHOW server_version")[0][0]}
    spec = plan.data.spec
    return PlanResult(drills, server,
                      {"key": spec.key(), "rows": spec.rows, "dim": spec.dim,
                       "bytes": int(size[0]) if size else None,
                       "load_seconds": round(load_seconds, 3)},
                      time.monotonic() - started)
