"""Whether a restored physical copy holds its whole cluster: every database of the source,
and in each of its databases the file of every relation with storage. A base backup
missing a relation's file restores and recovers without a word (only reading the
relation fails), and a drill compares one database's content: this looks at all of them.
Read on the copy as its superuser (pg_stat_file)."""

from __future__ import annotations

from typing import Any

import psycopg

DATABASES = "SELECT datname FROM pg_catalog.pg_database"
CONNECTABLE = "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn ORDER BY 1"
# relations with storage (temporary ones are gone after a restart) whose main fork's first
# file is not in the data directory
MISSING_FILES = """SELECT c.oid::pg_catalog.regclass::text, f.path
    FROM pg_catalog.pg_class c, LATERAL (SELECT pg_catalog.pg_relation_filepath(c.oid)) f(path)
    WHERE c.relkind IN ('r', 'i', 'S', 't', 'm') AND c.relpersistence <> 't'
      AND f.path IS NOT NULL AND (pg_catalog.pg_stat_file(f.path, true)).size IS NULL
    ORDER BY 2"""
MISSING_SHOWN = 20


def databases(conn: psycopg.Connection[Any]) -> set[str]:
    """The names of the server's databases."""
    return {str(row[0]) for row in conn.execute(DATABASES).fetchall()}


def connectable(conn: psycopg.Connection[Any]) -> list[str]:
    """The databases that allow connections."""
    return [str(row[0]) for row in conn.execute(CONNECTABLE).fetchall()]


def missing_files(conn: psycopg.Connection[Any], dbname: str) -> list[str]:
    """Each relation of the connected database whose file is missing, as a problem."""
    rows = conn.execute(MISSING_FILES).fetchall()
    found = [f"database {dbname}, relation {name}: its file {path} is missing from the "
             "restored copy (the backup lacks it: a restore loses that relation)"
             for name, path in rows[:MISSING_SHOWN]]
    if len(rows) > MISSING_SHOWN:
        found.append(f"database {dbname}: {len(rows) - MISSING_SHOWN} more relation files "
                     "missing")
    return found
