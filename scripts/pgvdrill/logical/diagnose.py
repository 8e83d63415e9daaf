"""Why a logical restore cannot succeed, said before it starts or after it failed.

`preflight` checks the target against the archive before any data moves; `explain`
turns pg_restore/psql errors of the known pgvector pitfalls into what to do.
"""

from __future__ import annotations

import re

import psycopg

from pgvdrill.errors import RestoreError, ToolError
from pgvdrill.logical.archive import Archive


def preflight(conn: psycopg.Connection, archive: Archive) -> None:
    """Refuse a restore whose archive needs pgvector the target server does not offer."""
    needs_vector = archive.format == "plain" or any(
        e.identity == ("EXTENSION", "-", "vector") for e in archive.toc)
    if not needs_vector:
        return
    row = conn.execute("SELECT default_version FROM pg_available_extensions"
                       " WHERE name = 'vector'").fetchone()
    if row is None:
        version = conn.execute("SHOW server_version").fetchone()
        raise RestoreError(
            f"the target server (PostgreSQL {version[0] if version else '?'}) has no pgvector "
            f"extension, and {archive.path} needs it",
            "install pgvector on the target server (e.g. the postgresql-NN-pgvector package, "
            "or build it from source) before restoring",
        )


_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r'type "(?:public\.)?(vector|halfvec|sparsevec)" does not exist'),
     "the dump holds tables with pgvector columns but no CREATE EXTENSION vector (pg_dump "
     "leaves extensions out of -t/-n dumps): run CREATE EXTENSION vector in the target "
     "database first, or dump with --extension=vector"),
    (re.compile(r'extension "vector" is not available|could not open extension control '
                r'file ".*vector\.control"'),
     "install pgvector on the target server before restoring"),
    (re.compile(r'role "([^"]+)" does not exist'),
     "objects in the dump belong to roles the target server lacks: restore the globals "
     "first (pg_dumpall --globals-only on the source, psql -f on the target), or restore "
     "with --no-owner --no-acl and re-grant"),
]


def explain(error: ToolError) -> RestoreError | None:
    """A `RestoreError` with what to do, when `error` is one of the known pitfalls."""
    for pattern, hint in _PATTERNS:
        match = pattern.search(error.stderr)
        if match:
            return RestoreError(f"restore failed: {match.group(0)}\n{error.message}", hint)
    return None
