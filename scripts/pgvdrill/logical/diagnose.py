"""Why a logical restore cannot succeed, said before it starts or after it failed.

`preflight` checks the target against what the archive uses before any data moves; `explain`
turns pg_restore/psql errors of the known pgvector pitfalls into what to do.
"""

from __future__ import annotations

import re

import psycopg

from pgvdrill.capabilities import version_key
from pgvdrill.cluster.base import ToolRunner
from pgvdrill.errors import RestoreError, ToolError
from pgvdrill.logical import vector_use
from pgvdrill.logical.archive import Archive


def preflight(conn: psycopg.Connection, archive: Archive, tools: ToolRunner,
              needs: str | None = None) -> list[str]:
    """Refuse a restore whose archive needs pgvector the target server does not offer, or
    uses what the target's pgvector lacks (types, index methods, operator classes,
    operators, functions: `vector_use`); return what to state: a target pgvector other
    than `needs` (the version the backup was taken with), older or newer."""
    script = vector_use.ddl(tools, archive)
    row = conn.execute("SELECT default_version, installed_version, (SELECT n.nspname"
                       " FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
                       " WHERE e.extname = 'vector') FROM pg_available_extensions"
                       " WHERE name = 'vector'").fetchone()
    used = vector_use.uses(script, archive, row[2] if row and row[2] else "public")
    if not used and not any(e.identity == ("EXTENSION", "-", "vector") for e in archive.toc):
        return []
    if row is None:
        version = conn.execute("SHOW server_version").fetchone()
        raise RestoreError(
            f"the target server (PostgreSQL {version[0] if version else '?'}) has no pgvector "
            f"extension, and {archive.path} needs it",
            "install pgvector on the target server (e.g. the postgresql-NN-pgvector package, "
            "or build it from source) before restoring",
        )
    offered, installed, _ = row
    there = installed or offered
    try:
        lacking = used - vector_use.offered(conn, installed is not None)
    except psycopg.Error as exc:
        return [f"what the target's pgvector {there} offers could not be probed "
                f"({exc.diag.message_primary or exc}): the restore itself will tell"]
    taken = f", the backup was taken with {needs}" if needs else ""
    if lacking:
        update = (f"run ALTER EXTENSION vector UPDATE in the target database (the server "
                  f"offers {offered}), or " if installed and version_key(offered) > version_key(
                      installed) else "")
        raise RestoreError(
            f"{archive.path} uses {vector_use.describe(lacking)}, which pgvector {there} "
            f"{'installed in' if installed else 'offered by'} the target lacks{taken}; "
            "nothing was restored",
            f"{update}install a pgvector that has them on the target server"
            f"{f' (the backup was taken with {needs}, which has them)' if needs else ''} "
            "before restoring")
    if needs is None or version_key(there) == version_key(needs):
        return []
    side = "older" if version_key(there) < version_key(needs) else "newer"
    named = vector_use.describe(used) or "no pgvector object"
    return [f"the target's pgvector {there} is {side} than the {needs} the backup was taken "
            f"with; the dump uses nothing {there} lacks ({named})"]


# Known errors and what to do; a hint's {0} is the pattern's first group.
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r'type "(?:public\.)?(vector|halfvec|sparsevec)" does not exist'),
     "the dump holds tables with pgvector columns ({0}) but no CREATE EXTENSION vector "
     "(pg_dump leaves extensions out of -t/-n dumps): run CREATE EXTENSION vector in the "
     "target database first, or dump with --extension=vector"),
    (re.compile(r'extension "vector" is not available|could not open extension control '
                r'file ".*vector\.control"'),
     "install pgvector on the target server before restoring"),
    (re.compile(r'role "([^"]+)" does not exist'),
     "the dump names role {0}, which the target server lacks: rerun pgvdrill restore "
     "logical with --with-globals (creates the missing roles from the backup's "
     "globals.sql), or with --no-owner --no-privileges (objects owned by the user you "
     "connect as, no grants), or create the role on the target (CREATE ROLE)"),
    (re.compile(r"out of shared memory"),
     "a restore in one transaction holds a lock per object: raise max_locks_per_transaction "
     "on the target (a restart), or restore with --jobs 2 (not one transaction)"),
    (re.compile(r'schema "([^"]+)" already exists'),
     "the dump creates schema {0}, which the target database already has: restore a "
     "whole-database dump into an empty database (createdb) or with --clean; a -n dump "
     "re-creates public, which every database has: leave its SCHEMA item out with a -L "
     "list (pg_restore -l, delete the line, pg_restore -L) and run CREATE EXTENSION "
     "vector first (-n dumps leave it out)"),
]


def explain(error: ToolError) -> RestoreError | None:
    """A `RestoreError` with what to do, when `error` shows known pitfalls (each named)."""
    found = [(match.group(0), hint.format(*match.groups()))
             for pattern, hint in _PATTERNS if (match := pattern.search(error.stderr))]
    if not found:
        return None
    return RestoreError(f"restore failed: {'; '.join(m for m, _ in found)}\n{error.message}",
                        "; also: ".join(h for _, h in found))
