"""The dump/restore upgrade: the target's (newer) pg_dump reads the source, pg_restore -j2
writes a new database on the target (started on restored.SAFE_START: pg_dump writes
subscriptions disabled, and no logical replication worker could run one), the vector
extension is brought to the target's version where the restore left it older, statistics
are gathered; then verified."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from pgvdrill.capabilities import server_capabilities, version_key
from pgvdrill.cluster import Cluster
from pgvdrill.cluster.local import LocalBackend
from pgvdrill.cluster.restored import SAFE_START
from pgvdrill.drill.record import Progress
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.drill.upgrade import Tamper, UpgradeDrill, UpgradePlan
from pgvdrill.drill.upgrade_source import source_template
from pgvdrill.drill.upgrade_verify import baseline, verify_upgraded
from pgvdrill.installation import Installation
from pgvdrill.logical.dump import DUMP_SETTINGS, dump
from pgvdrill.logical.restore import RestoreSetting, create_database, restore
from pgvdrill.proc.runner import Result, ToolCall
from pgvdrill.timing import Phase

# fast gzip: an upgrade's dump is read once, at once (the runbook's -Z9 is for keeping)
DUMP = DUMP_SETTINGS["custom-z1"]
# two jobs, each index build with room for its HNSW graph (at the server's default 64MB a
# 100k x 768 graph spills and the build slows down many times over)
RESTORE = RestoreSetting("upgrade-j2", jobs=2, session=(("maintenance_work_mem", "1GB"),),
                         description="pg_restore -j2, maintenance_work_mem 1GB per session")


@dataclass
class ClientOf:
    """The source server reached with another installation's client tools (an upgrade
    dumps with the target's pg_dump: a newer pg_dump reads older servers, not the reverse)."""

    cluster: Cluster
    tools: Installation
    name: str = field(init=False)
    major: int = field(init=False)

    def __post_init__(self) -> None:
        self.name, self.major = self.cluster.name, self.cluster.major

    def connect(self, dbname: str | None = None, *, autocommit: bool = True
                ) -> psycopg.Connection[tuple[Any, ...]]:
        return self.cluster.connect(dbname, autocommit=autocommit)

    def query(self, sql: str, dbname: str | None = None) -> list[tuple[object, ...]]:
        return self.cluster.query(sql, dbname)

    def run_tool(self, call: ToolCall) -> Result:
        return call.run([self.tools.tool(call.tool)], self.cluster.conninfo.env(call.dbname))


def timed(steps: list[Phase], name: str, action: Callable[[], Any]) -> Any:
    """Run one step of an upgrade, appending its duration to `steps`."""
    started = time.monotonic()
    result = action()
    steps.append(Phase(name, time.monotonic() - started))
    return result


def update_extension(cluster: Cluster, dbname: str, tamper: Tamper) -> str:
    """ALTER EXTENSION vector UPDATE where the database holds it older than the server
    offers; what was found or done, for the report."""
    with cluster.connect(dbname) as conn:
        row = conn.execute(
            "SELECT e.extversion, a.default_version FROM pg_catalog.pg_extension e"
            " JOIN pg_catalog.pg_available_extensions a ON a.name = e.extname"
            " WHERE e.extname = 'vector'").fetchone()
        if row is None:
            return f"database {dbname} has no vector extension"
        installed, offered = row
        if version_key(installed) >= version_key(offered):
            return f"vector {installed} in {dbname}: the target's version, no update needed"
        if tamper.skip_extension_update:
            return f"vector {installed} in {dbname}: update to {offered} SKIPPED (meta-drill)"
        conn.execute("ALTER EXTENSION vector UPDATE")
        return f"vector updated {installed} -> {offered} in {dbname}"


def analyze(cluster: Cluster, dbname: str | None = None) -> None:
    """Optimizer statistics for every table (an upgrade's last step before queries)."""
    cluster.run_tool(ToolCall("vacuumdb", ["--analyze-only", "--quiet",
                                           *(["--dbname", dbname] if dbname else ["--all"])],
                              dbname=dbname, hint="vacuumdb --analyze-only failed"))


def dump_upgrade(source_backend: LocalBackend, target_backend: LocalBackend,
                 plan: UpgradePlan, outdir: Path, progress: Progress) -> UpgradeDrill:
    """Dump the source with the target's pg_dump, restore into the target, update the
    extension where needed, analyze, verify (see the module docstring)."""
    template = source_template(source_backend, plan.data)
    with source_backend.cluster("upgrade-source", template=template) as source, \
            target_backend.cluster("upgrade-target") as target:
        target.configure(**SAFE_START)  # no worker for a restored (disabled) subscription
        target.stop()
        target.start()
        with source.connect(SOURCE_DB) as conn:
            before, planned = baseline(conn)
            source_facts = server_capabilities(conn).as_dict()
        progress(f"  source PostgreSQL {source_facts['postgresql']} + pgvector "
                 f"{source_facts['pgvector']}: snapshot taken")
        steps: list[Phase] = []
        dumped = timed(steps, "dump", lambda: dump(
            ClientOf(source, target_backend.installation), SOURCE_DB, DUMP, outdir))
        timed(steps, "createdb", lambda: create_database(target, SOURCE_DB))
        if plan.tamper.before_restore is not None:
            plan.tamper.before_restore(target, SOURCE_DB)
        restored = timed(steps, "restore", lambda: restore(
            target, dumped.archive, SOURCE_DB, RESTORE))
        note = timed(steps, "extension-update",
                     lambda: update_extension(target, SOURCE_DB, plan.tamper))
        timed(steps, "analyze", lambda: analyze(target, SOURCE_DB))
        verification, target_facts = verify_upgraded(target, before, planned, plan,
                                                     same_answers=False)
    backup = {**dumped.as_dict(), "tools": f"pg_dump {target_backend.installation.version}"}
    return UpgradeDrill("dump", source_facts, target_facts, steps, verification,
                        notes=[note, *dumped.toc_problems], backup=backup,
                        items=restored.items)
