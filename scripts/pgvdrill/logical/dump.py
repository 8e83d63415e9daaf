"""pg_dump settings, the dump step, and the check that the archive holds what it should."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pgvdrill.cluster import Server
from pgvdrill.errors import BackupError
from pgvdrill.logical.archive import Archive, inspect
from pgvdrill.logical.selection import Selection, expected_toc, toc_problems
from pgvdrill.proc.runner import ToolCall
from pgvdrill.timing import backup_measures

Format = Literal["custom", "directory", "plain"]
RUNBOOK_TABLES = ("documents", "account_behaviors", "product_embeddings")


@dataclass(frozen=True)
class DumpSetting:
    """One way to run pg_dump: format, gzip level, parallel jobs, what it covers."""

    name: str
    format: Format
    compress: int | None = None  # gzip level; None = pg_dump's default
    jobs: int = 1
    selection: Selection = field(default_factory=Selection)
    description: str = ""

    def argv(self, dbname: str, target: Path) -> list[str]:
        args = ["--format", self.format, "--file", str(target), "--dbname", dbname]
        if self.compress is not None:
            args += ["--compress", str(self.compress)]
        if self.jobs > 1:
            args += ["--jobs", str(self.jobs)]
        return args + self.selection.argv()

    def artifact_name(self, dbname: str) -> str:
        suffix = {"custom": ".dump", "directory": ".dir", "plain": ".sql"}[self.format]
        return f"{dbname}-{self.name}{suffix}"


def _settings(*settings: DumpSetting) -> dict[str, DumpSetting]:
    return {s.name: s for s in settings}


# Whole-database dumps: what every restore setting accepts.
DUMP_SETTINGS = _settings(
    DumpSetting("custom-z9", "custom", 9, description="the runbook's pg_dump -F c -Z 9"),
    DumpSetting("custom-z1", "custom", 1, description="custom format, fast gzip level 1"),
    DumpSetting("directory-j2", "directory", 1, jobs=2,
                description="directory format, gzip 1, two parallel jobs"),
    DumpSetting("plain", "plain", description="plain SQL (-F p), restored with psql"),
)
# Dumps of part of the database: the runbook's section 2 variants.
PARTIAL_DUMP_SETTINGS = _settings(
    DumpSetting("table", "custom", 9, selection=Selection(tables=("documents",)),
                description="the runbook's -t documents -F c -Z 9"),
    DumpSetting("tables", "custom", 9, selection=Selection(tables=RUNBOOK_TABLES),
                description="the runbook's -t documents -t account_behaviors "
                            "-t product_embeddings"),
    DumpSetting("pattern", "custom", 9, selection=Selection(tables=("documents*",)),
                description="the runbook's -t 'documents*'"),
    DumpSetting("data-only", "custom", 9, selection=Selection(section="data"),
                description="the runbook's --data-only -F c -Z 9"),
    DumpSetting("schema-only", "custom", selection=Selection(section="schema"),
                description="the runbook's --schema-only -F c"),
    DumpSetting("schema-public", "custom", selection=Selection(schemas=("public",)),
                description="the runbook's -n public -F c"),
    DumpSetting("exclude-schema", "custom", 1, selection=Selection(exclude_schemas=("archive",)),
                description="-N archive: everything but one schema"),
    DumpSetting("exclude-table", "custom", 1,
                selection=Selection(exclude_tables=("product_embeddings",)),
                description="-T product_embeddings: everything but one table"),
)
ALL_DUMP_SETTINGS = {**DUMP_SETTINGS, **PARTIAL_DUMP_SETTINGS}


@dataclass(frozen=True)
class DumpResult:
    setting: DumpSetting
    archive: Archive
    seconds: float
    toc_problems: tuple[str, ...] = ()  # the archive lacks, or holds beyond, what it covers
    source_bytes: int | None = None  # pg_database_size of the dumped database
    finished: datetime | None = None

    @property
    def whole(self) -> bool:
        """The dump covers the whole database (its throughput is comparable)."""
        return self.setting.selection == Selection()

    def as_dict(self) -> dict[str, object]:
        return {"setting": self.setting.name, "description": self.setting.description,
                "covers": self.setting.selection.describe(), "seconds": round(self.seconds, 3),
                "finished": self.finished.isoformat() if self.finished else None,
                "toc_problems": list(self.toc_problems), **self.archive.as_dict()}

    def measures(self) -> dict[str, object]:
        return backup_measures(self.source_bytes if self.whole else None,
                               self.archive.size_bytes, self.seconds)


def dump(cluster: Server, dbname: str, setting: DumpSetting, outdir: Path) -> DumpResult:
    """Run pg_dump with `setting` into `outdir`, then check the archive: readable, and
    holding exactly the tables, data, indexes and constraints the setting covers."""
    outdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = outdir / setting.artifact_name(dbname)
    if target.exists():
        raise BackupError(f"{target} already exists", "pgvdrill never overwrites a backup: "
                          "move it away or choose another directory")
    with cluster.connect(dbname) as conn:
        expected = expected_toc(conn, setting.selection)
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    started = time.monotonic()
    cluster.run_tool(ToolCall(
        "pg_dump", setting.argv(dbname, target),
        hint=f"pg_dump of {dbname} failed; the archive {target} is incomplete"))
    seconds = time.monotonic() - started
    finished = datetime.now(UTC)
    archive = inspect(cluster, target)
    return DumpResult(setting, archive, seconds, tuple(toc_problems(expected, archive.toc)),
                      int(size[0]) if size else None, finished)
