"""`restore logical`: a catalog dump into an existing database named by a libpq conninfo,
with pg_restore's progress (--verbose) on stderr.

Refused unless --force: a target that is, or may be, the source's database, and
--with-globals on the source's server (roles are server-wide): see restore_target (the same
place, the same server, the same identity unless --into-copy-of-source, unverifiable).
Refused unless --clean: a target database that already holds tables (pg_restore would
stop at the first existing object, halfway).
Refused, before anything moves, when the target lacks roles the dump names (owners,
grantees and grantors, default privileges, policies: `roles.needed_roles` of the script
pg_restore would run with the same --no-owner/--no-privileges); the refusal names them and
the options that would work. --with-globals creates the missing ones (only those) from the
backup's globals.sql first.
With one job pg_restore runs as one transaction (--single-transaction): a failure leaves
the database as it was. With --jobs N it cannot; a failure leaves what was restored so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pgvdrill.backup.source import config_tools, server_facts
from pgvdrill.config import Config
from pgvdrill.errors import RestoreError, ToolError
from pgvdrill.logical import diagnose
from pgvdrill.logical.archive import Archive, inspect
from pgvdrill.logical.globals import defined_roles, restore_globals, withheld
from pgvdrill.logical.restore import RestoreSetting, restore_argv
from pgvdrill.logical.roles import needed_roles, restore_script
from pgvdrill.ops.restore_target import COPY_OPTION, refuse_the_source
from pgvdrill.proc import runner
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


@dataclass(frozen=True)
class Ownership:
    """What a logical restore does about roles: create the missing ones from the backup's
    globals (--with-globals), or leave owners (--no-owner) and grants (--no-privileges)
    out."""

    with_globals: bool = False
    no_owner: bool = False
    no_privileges: bool = False

    def argv(self) -> list[str]:
        return [*(["--no-owner"] if self.no_owner else []),
                *(["--no-privileges"] if self.no_privileges else [])]


_WHY = {"owner": "owns objects", "ACL": "grants", "DEFAULT ACL": "default privileges",
        "POLICY": "policies", "USER MAPPING": "user mappings"}


def roles_to_create(target: ExternalServer, archive: Archive, entry: Entry,
                    globals_file: Path | None, ownership: Ownership) -> list[str]:
    """The roles --with-globals must create; RestoreError naming the roles the dump names
    and the target lacks, with the options that would work, when it cannot proceed."""
    with target.connect() as conn:
        existing = {str(r) for (r,) in conn.execute("SELECT rolname FROM pg_roles")}
        user = str(conn.execute("SELECT current_user").fetchone()[0])  # type: ignore[index]

    def lacking(no_owner: bool, no_privileges: bool) -> dict[str, set[str]]:
        script = restore_script(target.tools, archive, no_owner=no_owner,
                                no_privileges=no_privileges)
        return {role: why for role, why in needed_roles(script).items()
                if role not in existing}

    missing = lacking(ownership.no_owner, ownership.no_privileges)
    if not missing:
        return []
    listed = "; ".join(f"{role} ({', '.join(sorted(_WHY[w] for w in why))})"
                       for role, why in sorted(missing.items()))
    if ownership.with_globals and globals_file is not None:
        absent = sorted(set(missing) - defined_roles(globals_file.read_text()))
        if absent:
            raise RestoreError(f"{globals_file} does not define {', '.join(absent)}, which "
                               f"the dump names and {target.describe()} lacks; nothing was "
                               "restored", "create them on the target (CREATE ROLE), then "
                               "rerun")
        return sorted(missing)
    options = [("rerun with --with-globals to create them (and only them) from the backup's "
                "globals.sql, without passwords") if globals_file is not None else
               (f"backup {entry.id} has no globals.sql (taken before pgvdrill kept them "
                "beside each dump): create the roles on the target (CREATE ROLE)")]
    if not ownership.no_owner and not lacking(True, ownership.no_privileges):
        options.append(f"or rerun with --no-owner (objects owned by {user})")
    elif not lacking(True, True):
        options.append(f"or rerun with --no-owner --no-privileges (objects owned by {user}, "
                       "the dump's grants and default privileges left out: re-grant them)")
    else:
        named = sorted(lacking(True, True))
        options.append(f"--no-owner --no-privileges are not enough: policies or user "
                       f"mappings name {', '.join(named)}")
    raise RestoreError(f"{target.describe()} lacks role(s) the dump names: {listed}; "
                       "nothing was restored", "; ".join(options))


def restore_logical(config: Config, entry: Entry, entry_file: Path, dump: Path,
                    target_dsn: str, *, jobs: int, clean: bool, force: bool, say: Say,
                    globals_file: Path | None = None, ownership: Ownership = Ownership(),
                    copy_of_source: bool = False) -> None:
    """pg_restore `dump`, the archive of `entry` (catalogued in `entry_file`), into
    `target_dsn`; `globals_file`: the backup's globals.sql, when it has one (checked
    against the catalog); `copy_of_source`: the operator says the target is a physical
    copy of the source (restore_target)."""
    tools = config_tools(config)
    target = ExternalServer(parse_conninfo(target_dsn, "--target-dsn"), tools, name="target")
    facts = server_facts(target)
    if force:
        say("--force: not checking whether the target is the source")
    else:
        if copy_of_source:
            say(f"{COPY_OPTION}: a target with the source's identity is taken for a copy")
        refuse_the_source(config, entry, entry_file, target, copy_of_source=copy_of_source)
    tables = int(str(target.query(USER_TABLES)[0][0]))
    if tables and not clean:
        raise RestoreError(
            f"target database {target.describe()} already holds {tables} table(s): "
            "pg_restore would stop at the first object that exists",
            "restore into an empty database (createdb), or add --clean to drop and "
            "re-create the dump's objects (other objects stay)")
    archive = inspect(tools, dump)
    with target.connect() as conn:
        for statement in diagnose.preflight(conn, archive, tools,
                                            needs=entry.source.get("pgvector")):
            say(statement)
    create = roles_to_create(target, archive, entry, globals_file, ownership)
    if create and globals_file is not None:
        if not force:  # roles are the whole server's: not on the source's server either
            refuse_the_source(config, entry, entry_file, target, server_wide=True,
                              copy_of_source=copy_of_source)
        created = restore_globals(target, globals_file, set(create))
        say(f"created role(s) {', '.join(created)} from {globals_file} (without passwords)")
        left = withheld(globals_file.read_text(), set(created))
        if left:
            say(f"left out, as a repository's file never grants them: {', '.join(left)}; "
                "grant what this server should have yourself (ALTER ROLE ... / GRANT ...)")
    say(f"restoring {entry.id} ({archive.size_bytes / 2**20:.1f} MiB, {len(archive.toc)} "
        f"items) into {target.describe()} (PostgreSQL {facts['server_version']})")
    seconds = _pg_restore(target, archive, RestoreSetting("operator", clean=clean, jobs=jobs),
                          ownership, create)
    say(f"ok: restored {entry.id} into {target.describe()} in {seconds:.1f}s")
    say("next: vacuumdb --analyze-in-stages for planner statistics" +
        ("; the roles created have no password: set one (ALTER ROLE ... PASSWORD) for those "
         "that log in" if create else ""))


def _pg_restore(target: ExternalServer, archive: Archive, setting: RestoreSetting,
                ownership: Ownership, created: list[str]) -> float:
    single = setting.jobs == 1
    args = restore_argv(archive.path, *ownership.argv(),
                        *(["--single-transaction"] if single else []), "--verbose",
                        setting=setting, dbname=target.dbname)
    left = ("nothing was restored (one transaction, rolled back): fix the cause and rerun "
            "the same command" if single else
            f"with --jobs {setting.jobs} pg_restore cannot run as one transaction: the "
            "database holds what was restored so far; drop and re-create it (dropdb, "
            "createdb) or add --clean before rerunning")
    if created:
        left += f"; the roles created ({', '.join(created)}) stay"
    started = time.monotonic()
    try:
        runner.run([target.tools.tool("pg_restore"), *args], env=target.env(), tee_stderr=True,
                   hint=f"restoring {archive.path} into {target.describe()} failed; {left}")
    except ToolError as exc:
        explained = diagnose.explain(exc)
        if explained is None:
            raise
        raise RestoreError(explained.message, f"{explained.hint}; {left}") from exc
    return time.monotonic() - started
