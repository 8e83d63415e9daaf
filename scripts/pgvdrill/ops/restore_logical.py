"""`restore logical`: a catalog dump into an existing database named by a libpq conninfo,
with pg_restore's progress (--verbose) on stderr.

Refused unless --force: a target that is the configured source (the same host, port and
database in the conninfo, or, when both answer, the same system identifier and database).
Refused unless --clean: a target database that already holds tables (pg_restore would
stop at the first existing object, halfway).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgvdrill import runner
from pgvdrill.config import Config
from pgvdrill.errors import ConfigError, RestoreError, ToolError
from pgvdrill.logical import diagnose
from pgvdrill.logical.archive import Archive, inspect
from pgvdrill.logical.restore import RestoreSetting
from pgvdrill.ops.backup_source import config_tools, server_facts, source_server
from pgvdrill.repository import Entry
from pgvdrill.server import ExternalServer, parse_conninfo

Say = Callable[[str], None]
USER_TABLES = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
"""


def place(conninfo: dict[str, str]) -> tuple[str, str, str, str]:
    """(service, host, port, database) a conninfo names, with libpq's defaults."""
    return (conninfo.get("service", ""),
            conninfo.get("host") or conninfo.get("hostaddr") or "localhost",
            conninfo.get("port") or "5432",
            conninfo.get("dbname") or conninfo.get("user") or "")


def refuse_the_source(config: Config, target: ExternalServer,
                      target_facts: dict[str, Any]) -> None:
    """RestoreError when `target` is the configured source."""
    if config.source is None:
        return
    why = ""
    if place(config.source.conninfo) == place(target.settings):
        why = "its connection settings name the same host, port and database"
    else:
        try:
            source_facts = server_facts(source_server(config))
        except ConfigError:  # the source is down (the usual reason to restore): no match
            source_facts = {}
        same = (source_facts.get("system_identifier"), source_facts.get("dbname"))
        if same[0] is not None and same == (target_facts["system_identifier"],
                                            target_facts["dbname"]):
            why = (f"it is the same server (system identifier {same[0]}) and database "
                   f"{same[1]}")
    if why:
        raise RestoreError(f"restore target {target.describe()} is the configured source: "
                           f"{why}", "restore into another database or server; if you "
                           "really mean to restore over the source, add --force")


def restore_logical(config: Config, entry: Entry, dump: Path, target_dsn: str, *, jobs: int,
                    clean: bool, force: bool, say: Say) -> None:
    """pg_restore `dump`, the archive of `entry`, into `target_dsn`."""
    tools = config_tools(config)
    target = ExternalServer(parse_conninfo(target_dsn, "--target-dsn"), tools, name="target")
    facts = server_facts(target)
    if force:
        say("--force: not checking whether the target is the configured source")
    else:
        refuse_the_source(config, target, facts)
    tables = int(str(target.query(USER_TABLES)[0][0]))
    if tables and not clean:
        raise RestoreError(
            f"target database {target.describe()} already holds {tables} table(s): "
            "pg_restore would stop at the first object that exists",
            "restore into an empty database (createdb), or add --clean to drop and "
            "re-create the dump's objects (other objects stay)")
    archive = inspect(tools, dump)
    with target.connect() as conn:
        diagnose.preflight(conn, archive, needs=entry.source.get("pgvector"))
    say(f"restoring {entry.id} ({archive.size_bytes / 2**20:.1f} MiB, {len(archive.toc)} "
        f"items) into {target.describe()} (PostgreSQL {facts['server_version']})")
    seconds = _pg_restore(target, archive, RestoreSetting("operator", clean=clean, jobs=jobs))
    say(f"ok: restored {entry.id} into {target.describe()} in {seconds:.1f}s")
    say("next: vacuumdb --analyze-in-stages for planner statistics; roles the dump's "
        "objects belong to must exist on the target (pg_dumpall --globals-only)")


def _pg_restore(target: ExternalServer, archive: Archive, setting: RestoreSetting) -> float:
    args = [*setting.base_argv(target.dbname), "--verbose", str(archive.path)]
    started = time.monotonic()
    try:
        runner.run([target.tools.tool("pg_restore"), *args], env=target.env(), tee_stderr=True,
                   hint=f"restoring {archive.path} into {target.describe()} failed; the "
                        "database holds what was restored so far")
    except ToolError as exc:
        raise diagnose.explain(exc) or exc from exc
    return time.monotonic() - started
