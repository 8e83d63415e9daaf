"""pg_dump settings and the dump step."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pgvdrill.cluster import Cluster
from pgvdrill.errors import BackupError
from pgvdrill.logical.archive import Archive, inspect

Format = Literal["custom", "directory", "plain"]


@dataclass(frozen=True)
class DumpSetting:
    """One way to run pg_dump: format, gzip level, parallel jobs."""

    name: str
    format: Format
    compress: int | None = None  # gzip level; None = pg_dump's default
    jobs: int = 1
    description: str = ""

    def argv(self, dbname: str, target: Path) -> list[str]:
        args = ["--format", self.format, "--file", str(target), "--dbname", dbname]
        if self.compress is not None:
            args += ["--compress", str(self.compress)]
        if self.jobs > 1:
            args += ["--jobs", str(self.jobs)]
        return args

    def artifact_name(self, dbname: str) -> str:
        suffix = {"custom": ".dump", "directory": ".dir", "plain": ".sql"}[self.format]
        return f"{dbname}-{self.name}{suffix}"


DUMP_SETTINGS: dict[str, DumpSetting] = {
    s.name: s
    for s in [
        DumpSetting("custom-z9", "custom", 9, description="the runbook's pg_dump -F c -Z 9"),
        DumpSetting("custom-z1", "custom", 1, description="custom format, fast gzip level 1"),
        DumpSetting("directory-j2", "directory", 1, jobs=2,
                    description="directory format, gzip 1, two parallel jobs"),
    ]
}


@dataclass(frozen=True)
class DumpResult:
    setting: DumpSetting
    archive: Archive
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return {"setting": self.setting.name, "description": self.setting.description,
                "seconds": round(self.seconds, 3), **self.archive.as_dict()}


def dump(cluster: Cluster, dbname: str, setting: DumpSetting, outdir: Path) -> DumpResult:
    """Run pg_dump with `setting` into `outdir`, then inspect the archive it wrote."""
    outdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = outdir / setting.artifact_name(dbname)
    if target.exists():
        raise BackupError(f"{target} already exists", "pgvdrill never overwrites a backup: "
                          "move it away or choose another directory")
    started = time.monotonic()
    cluster.run_tool("pg_dump", setting.argv(dbname, target),
                     hint=f"pg_dump of {dbname} failed; the archive {target} is incomplete")
    seconds = time.monotonic() - started
    return DumpResult(setting, inspect(cluster, target), seconds)
