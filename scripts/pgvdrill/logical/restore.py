"""pg_restore settings and the restore step."""

from __future__ import annotations

import time
from dataclasses import dataclass

from psycopg import sql

from pgvdrill.cluster import Cluster
from pgvdrill.errors import ToolError
from pgvdrill.logical import diagnose
from pgvdrill.logical.archive import Archive


@dataclass(frozen=True)
class RestoreSetting:
    """One way to run pg_restore."""

    name: str
    clean: bool = False  # --clean --if-exists over an existing database (the runbook's overwrite)
    jobs: int = 1
    description: str = ""

    def argv(self, dbname: str, archive: Archive) -> list[str]:
        args = ["--dbname", dbname, "--exit-on-error", "--no-password"]
        if self.clean:
            args += ["--clean", "--if-exists"]
        if self.jobs > 1:
            args += ["--jobs", str(self.jobs)]
        return [*args, str(archive.path)]


RESTORE_SETTINGS: dict[str, RestoreSetting] = {
    s.name: s
    for s in [
        RestoreSetting("fresh", description="into a new, empty database"),
        RestoreSetting("clean", clean=True,
                       description="--clean --if-exists over an existing, diverged database"),
        RestoreSetting("parallel-j2", jobs=2, description="into a new database with -j 2"),
    ]
}


@dataclass(frozen=True)
class RestoreResult:
    setting: RestoreSetting
    dbname: str
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return {"setting": self.setting.name, "description": self.setting.description,
                "database": self.dbname, "seconds": round(self.seconds, 3)}


def create_database(cluster: Cluster, dbname: str) -> None:
    """An empty database from template0, as pg_restore into a fresh database expects."""
    with cluster.connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
            sql.Identifier(dbname)))


def restore(cluster: Cluster, archive: Archive, dbname: str, setting: RestoreSetting
            ) -> RestoreResult:
    """Restore `archive` into `dbname` (which must exist) with `setting`."""
    if archive.format == "plain":
        args = ["--dbname", dbname, "--no-psqlrc", "--set", "ON_ERROR_STOP=1", "--quiet",
                "--file", str(archive.path)]
        tool = "psql"
    else:
        args = setting.argv(dbname, archive)
        tool = "pg_restore"
    with cluster.connect(dbname) as conn:
        diagnose.preflight(conn, archive)
    started = time.monotonic()
    try:
        cluster.run_tool(tool, args, stdout="/dev/null",
                         hint=f"restoring {archive.path} into {dbname} failed; see the error")
    except ToolError as exc:
        raise diagnose.explain(exc) or exc from exc
    return RestoreResult(setting, dbname, time.monotonic() - started)
