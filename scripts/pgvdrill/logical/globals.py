"""Globals a database dump leaves out (roles, role memberships, tablespaces): dumped with
pg_dumpall --globals-only on the source, replayed with psql on the target before any
pg_restore whose objects belong to those roles.

Replaying a globals file on another server meets roles that already exist there, at
least the bootstrap superuser (`CREATE ROLE postgres` fails on every fresh cluster).
`restore_globals` leaves such roles' CREATE ROLE out and keeps their ALTER ROLE (the
source's attributes and password hash win), except for the role it connects as, whose
attributes and password stay the target's own: restoring them would lock pgvdrill (or
the operator) out. Everything else runs with ON_ERROR_STOP, so a real failure (a
tablespace directory missing on the target) stops the restore with psql's error,
instead of being ignored as psql would without it. Passwords travel only as the
hashes inside the file (mode 0600), never in argv.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from pgvdrill.cluster import Cluster, Server
from pgvdrill.errors import BackupError
from pgvdrill.logical.table_items import unquote

GLOBALS_FILE = "globals.sql"
_ROLE_STATEMENT = re.compile(r'(CREATE|ALTER) ROLE ("(?:[^"]|"")+"|[^\s;]+)(;| WITH )')


def dump_globals(cluster: Server, outdir: Path) -> Path:
    """pg_dumpall --globals-only --no-role-passwords of `cluster` into outdir/globals.sql
    (mode 0600); raises `BackupError` if the file exists or holds no role. Without role
    passwords no hash leaves the source, and a non-superuser can run it."""
    outdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = outdir / GLOBALS_FILE
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise BackupError(f"{target} already exists", "pgvdrill never overwrites a backup: "
                          "move it away or choose another directory") from None
    cluster.run_tool("pg_dumpall", ["--globals-only", "--no-role-passwords", "--file",
                                    str(target)],
                     hint=f"pg_dumpall --globals-only failed; {target} is incomplete")
    if "CREATE ROLE" not in target.read_text():
        raise BackupError(f"{target} holds no CREATE ROLE: pg_dumpall wrote no globals",
                          "check that pg_dumpall connected as a superuser")
    return target


def restore_globals(cluster: Cluster, path: Path) -> list[str]:
    """Replay the globals file `path` on `cluster` with psql (-X, ON_ERROR_STOP); returns
    the roles that already existed there (their CREATE ROLE was left out)."""
    with cluster.connect() as conn:
        existing = {name for (name,) in conn.execute("SELECT rolname FROM pg_roles")}
        myself = str(conn.execute("SELECT current_user").fetchone()[0])  # type: ignore[index]
    script, skipped = without_existing_roles(path.read_text(), existing, myself)
    with tempfile.TemporaryDirectory(prefix="pgvdrill-globals-") as tmp:
        replay = Path(tmp) / GLOBALS_FILE
        replay.touch(mode=0o600)
        replay.write_text(script)
        cluster.run_tool("psql", ["-X", "--quiet", "-v", "ON_ERROR_STOP=1", "--file",
                                  str(replay)], dbname="postgres", stdout="/dev/null",
                         hint=f"replaying the globals in {path} failed: the statement psql "
                              "names must succeed on the target (e.g. create a tablespace's "
                              "directory) before the databases are restored")
    return skipped


def without_existing_roles(script: str, existing: set[str], myself: str
                           ) -> tuple[str, list[str]]:
    """`script` less the CREATE ROLE of roles in `existing` and the ALTER ROLE of `myself`;
    and the roles whose CREATE ROLE was left out."""
    kept, skipped = [], set()
    for line in script.splitlines():
        match = _ROLE_STATEMENT.match(line)
        if match:
            role = unquote(match.group(2))
            if role in existing and (match.group(1) == "CREATE" or role == myself):
                skipped.add(role)
                continue
        kept.append(line)
    return "\n".join(kept) + "\n", sorted(skipped)

