"""The placeholders of procedure templates (the engine: pgvdrill.proc.template)."""

from __future__ import annotations

from collections.abc import Mapping

from pgvdrill.proc import template

PLACEHOLDERS: dict[str, str] = {
    "dsn": "libpq connection string of the throw-away source database (no password: "
           "PGPASSFILE is set)",
    "target_dsn": "libpq connection string of the scratch target database (logical)",
    "backup": "where the backup goes: a file or directory path that does not exist yet, "
              "read back by the restore",
    "wal_dir": "the WAL archive directory (owned by the server's OS user)",
    "pgdata": "the empty data directory a physical restore fills",
    "target_time": "a recovery target time, e.g. '2025-11-01 10:00:00+00'",
}


def placeholders(text: str, where: str = "template") -> set[str]:
    """The placeholders procedure template `text` uses (checking it as `render` does)."""
    return template.placeholders(text, PLACEHOLDERS, where)


def render(text: str, values: Mapping[str, str], where: str = "template") -> str:
    """Procedure template `text` with each placeholder replaced by its shell-quoted value."""
    return template.render(text, values, PLACEHOLDERS, where)
