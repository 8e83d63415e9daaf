"""The benchmark's modes: every backup and restore mode, each measured as pgvdrill runs it
and (where there is one) as the bare tool command, and the comparisons between them.

A backup mode's pgvdrill figure includes its archive check (pg_restore reading every
block back, or pg_verifybackup); a restore mode's includes its preparation (the new
database, the preflight) and ends when the restored server answers queries. Base backups
use --checkpoint=fast both ways, so a spread checkpoint's wait does not blur them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass

from pgvdrill.bench.measure import Kind, Sample, disk_bytes, timed
from pgvdrill.bench.ratios import Comparison
from pgvdrill.bench.workbench import Workbench
from pgvdrill.cluster import Cluster
from pgvdrill.drill.logical import drop_database
from pgvdrill.drill.physical import SEQUENCE_SLACK
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.errors import ConfigError, cleanup
from pgvdrill.logical.dump import DUMP_SETTINGS
from pgvdrill.logical.pairing import finish, prepare
from pgvdrill.logical.restore import RESTORE_SETTINGS, RestoreSetting, restore, restore_argv
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS
from pgvdrill.physical.restore import restore_base_backup_timed
from pgvdrill.physical.verifybackup import check_backup
from pgvdrill.proc.runner import ToolCall
from pgvdrill.statement_log import pgoptions

Step = Callable[[Workbench], Sample]
RESTORED_DUMP = "custom-z9"  # the runbook's dump feeds every pg_restore mode
PHYSICAL = ("tar-gz", "tar-stream", "plain")  # the full base backup forms pg_basebackup takes
PSQL_ARGS = ["--no-psqlrc", "--set", "ON_ERROR_STOP=1", "--quiet"]


@dataclass(frozen=True)
class Mode:
    """One backup or restore mode; `raw` does the same work with the bare tool command."""

    name: str  # "<group>:<setting>", e.g. dump:custom-z9
    kind: Kind
    description: str
    pgvdrill: Step
    raw: Step | None = None

    @property
    def group(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def steps(self) -> list[tuple[str, Step]]:
        """Its runs: the name each is recorded under, and the step that measures it."""
        found = [(f"pgvdrill {self.name}", self.pgvdrill)]
        if self.raw is not None:
            found.append((f"raw {self.name}", self.raw))
        return found


def _dump(name: str) -> Mode:
    setting = DUMP_SETTINGS[name]

    def pgvdrill(bench: Workbench) -> Sample:
        dumped, seconds = timed(lambda: bench.take_dump(name))
        return Sample(seconds, dumped.archive.size_bytes)

    def raw(bench: Workbench) -> Sample:
        outdir = bench.fresh(f"raw-dump-{name}")
        outdir.mkdir()
        target = outdir / setting.artifact_name(SOURCE_DB)
        _, seconds = timed(lambda: bench.source.run_tool(ToolCall(
            "pg_dump", setting.argv(SOURCE_DB, target))))
        size = disk_bytes(target)
        shutil.rmtree(outdir)
        return Sample(seconds, size)

    return Mode(f"dump:{name}", "backup", f"pg_dump: {setting.description}", pgvdrill, raw)


def _base_backup(name: str) -> Mode:
    setting = BASE_BACKUP_SETTINGS[name]

    def pgvdrill(bench: Workbench) -> Sample:
        def step() -> int:
            backup = bench.take_base_backup(name)
            check_backup(bench.backend.tools(), backup.path)
            return backup.size_bytes

        size, seconds = timed(step)
        return Sample(seconds, size)

    def raw(bench: Workbench) -> Sample:
        dest = bench.fresh(f"raw-base-{name}")
        _, seconds = timed(lambda: bench.source.run_tool(ToolCall(
            "pg_basebackup", ["-D", dest, *setting.args, "--checkpoint=fast"])))
        size = disk_bytes(dest)
        shutil.rmtree(dest)
        return Sample(seconds, size)

    return Mode(f"basebackup:{name}", "backup", f"pg_basebackup: {setting.description}",
                pgvdrill, raw)


def _restore(name: str, setting_of: Callable[[Workbench], RestoreSetting], description: str,
             dump_name: str = RESTORED_DUMP) -> Mode:
    def pgvdrill(bench: Workbench) -> Sample:
        archive, setting = bench.dump(dump_name).archive, setting_of(bench)
        dbname = bench.database()

        def step() -> None:
            prepare(bench.target, dbname, archive, setting, None)
            finish(bench.target, dbname, archive, setting, None,
                   restore(bench.target, archive, dbname, setting))

        _, seconds = timed(step)
        bench.check(bench.target, dbname)
        drop_database(bench.target, dbname)
        return Sample(seconds, archive.size_bytes)

    def raw(bench: Workbench) -> Sample:
        archive, setting = bench.dump(dump_name).archive, setting_of(bench)
        dbname = bench.database()
        if archive.format == "plain":
            tool, args = "psql", ["--dbname", dbname, *PSQL_ARGS, "--file", str(archive.path)]
        else:
            tool, args = "pg_restore", restore_argv(archive.path, setting=setting, dbname=dbname)
        env = {"PGOPTIONS": pgoptions(setting.session)} if setting.session else None

        def step() -> None:
            bench.target.run_tool(ToolCall("createdb", [dbname]))
            bench.target.run_tool(ToolCall(tool, args, stdout="/dev/null", env=env))

        _, seconds = timed(step)
        bench.check(bench.target, dbname)
        drop_database(bench.target, dbname)
        return Sample(seconds, archive.size_bytes)

    return Mode(f"restore:{name}", "restore", description, pgvdrill, raw)


def _restore_base_backup(name: str) -> Mode:
    def pgvdrill(bench: Workbench) -> Sample:
        backup = bench.base_backup(name)
        restored: list[Cluster] = []

        def step() -> None:
            cluster, _ = restore_base_backup_timed(bench.backend, backup, "bench-restored")
            restored.append(cluster)
            cluster.start()

        def destroy() -> None:
            for cluster in restored:
                cluster.destroy()

        with cleanup(destroy, "the restored copy"):
            _, seconds = timed(step)
            bench.check(restored[0], SOURCE_DB, sequence_slack=SEQUENCE_SLACK)
        return Sample(seconds, backup.size_bytes)

    return Mode(f"restore:basebackup-{name}", "restore",
                f"the {name} base backup unpacked into a new data directory and started "
                "(WAL replay included) until it answers queries", pgvdrill)


MODES = {m.name: m for m in [
    *(_dump(name) for name in DUMP_SETTINGS),
    *(_base_backup(name) for name in PHYSICAL),
    _restore("fresh", lambda _: RESTORE_SETTINGS["fresh"],
             f"pg_restore of the {RESTORED_DUMP} dump into a new database, one job (the "
             "runbook's command)"),
    _restore("parallel-j2", lambda _: RESTORE_SETTINGS["parallel-j2"],
             f"pg_restore -j 2 of the {RESTORED_DUMP} dump on default server settings"),
    _restore("rto-optimised", lambda bench: bench.rto,
             f"pg_restore of the {RESTORED_DUMP} dump with one job per core, index builds "
             "with maintenance_work_mem sized for the largest HNSW graph and parallel "
             "maintenance workers (data before indexes, as pg_restore orders it)"),
    _restore("psql", lambda _: RESTORE_SETTINGS["fresh"],
             "psql -f of the plain SQL dump into a new database", dump_name="plain"),
    *(_restore_base_backup(name) for name in ("tar-gz", "plain")),
]}


def parse_modes(text: str) -> list[str]:
    """Comma-separated mode names, groups or `all`; `ConfigError` names the unknown ones."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = ["all", *dict.fromkeys(m.group for m in MODES.values()), *MODES]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ConfigError(f"unknown mode {', '.join(unknown) or '(none)'}",
                          f"choose from {', '.join(known)}")
    return names


def select(names: list[str]) -> list[Mode]:
    """The modes `names` pick, in registry order: a mode's name, its group (`dump`,
    `basebackup`, `restore`) or `all`."""
    return [m for m in MODES.values()
            if "all" in names or m.name in names or m.group in names]


# Harness overhead of each mode with a raw twin, the runbook's settings against the
# recommended ones, and the RTO-optimised restore against plain -j 2.
COMPARISONS = [
    *(Comparison("harness overhead", m.name, f"pgvdrill {m.name}", f"raw {m.name}")
      for m in MODES.values() if m.raw),
    Comparison("runbook vs recommended", "pg_dump -Z 9 vs -Z 1",
               "raw dump:custom-z9", "raw dump:custom-z1"),
    Comparison("runbook vs recommended", "pg_basebackup -Ft -z vs -Ft",
               "raw basebackup:tar-gz", "raw basebackup:tar-stream"),
    Comparison("runbook vs recommended", "restore one job vs RTO-optimised",
               "pgvdrill restore:fresh", "pgvdrill restore:rto-optimised"),
    Comparison("physical vs logical RTO", "runbook's logical vs physical restore",
               "pgvdrill restore:fresh", "pgvdrill restore:basebackup-tar-gz"),
    Comparison("physical vs logical RTO", "fastest logical vs physical restore",
               "pgvdrill restore:rto-optimised", "pgvdrill restore:basebackup-plain"),
    Comparison("RTO-optimised vs plain", "pg_restore -j 2 vs RTO-optimised",
               "pgvdrill restore:parallel-j2", "pgvdrill restore:rto-optimised"),
]
