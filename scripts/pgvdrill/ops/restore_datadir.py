"""The data directory a physical or point-in-time restore makes, and its recovery settings.

Safety rules (nothing in the directory is ever deleted or replaced):
- DIR must be missing or empty;
- `--force` allows a DIR that holds other files (a mount point's lost+found, say), as long
  as it holds no PG_VERSION (a cluster: move it away yourself) and none of the names the
  backup restores (checked before anything is moved in: the backup is unpacked into a
  staging directory inside DIR, so the final moves are renames on the same file system).
The restored files take the owner of DIR (of its parent when DIR is new), which is the OS
user the server must run as; as root with a root-owned DIR they stay root's, and the next
steps say to chown them. Recovery settings are appended the PostgreSQL 12+ way:
postgresql.auto.conf (read last, so they win) plus recovery.signal.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pgvdrill import osuser
from pgvdrill.cluster.base import ToolRunner, quote
from pgvdrill.errors import RestoreError
from pgvdrill.physical.artifact import BaseBackup
from pgvdrill.physical.restore import unpack
from pgvdrill.wal.pitr import Target

AUTO_CONF = "postgresql.auto.conf"


def existing_names(pgdata: Path, force: bool) -> list[str]:
    """What `pgdata` holds already; RestoreError unless that is nothing, or `force` and no
    cluster."""
    if pgdata.exists() and not pgdata.is_dir():
        raise RestoreError(f"restore target {pgdata} is not a directory",
                           "choose a new or empty directory")
    names = sorted(os.listdir(pgdata)) if pgdata.is_dir() else []
    if not names:
        return []
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    if "PG_VERSION" in names:
        raise RestoreError(
            f"restore target {pgdata} holds a PostgreSQL data directory (PG_VERSION; "
            f"{shown}): pgvdrill never restores over a cluster, not even with --force",
            f"stop its server if it runs, move it away (mv {pgdata} {pgdata}.old) and "
            "restore into the then empty or new directory")
    if not force:
        raise RestoreError(
            f"restore target {pgdata} is not empty ({shown})",
            "choose an empty or new directory; --force restores into it anyway when none "
            "of its files is one the backup restores (nothing is deleted or replaced)")
    return names


def restore_datadir(tools: ToolRunner, backup: BaseBackup, pgdata: Path,
                    existing: list[str]) -> list[str]:
    """Unpack `backup` into `pgdata` beside the `existing` names; the names restored."""
    if not existing:
        unpack(tools, backup, pgdata)
        return sorted(os.listdir(pgdata))
    staging = Path(tempfile.mkdtemp(prefix=".pgvdrill-restore-", dir=pgdata))
    try:
        unpack(tools, backup, staging)
        names = sorted(os.listdir(staging))
        clash = sorted(set(names) & set(existing))
        if clash:
            raise RestoreError(f"restore target {pgdata} already holds {', '.join(clash)}, "
                               "which the backup restores",
                               "pgvdrill replaces nothing: move those away, or restore into "
                               "an empty directory")
        for name in names:
            os.rename(staging / name, pgdata / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # what is left there was unpacked here
    return names


def server_user_for(pgdata: Path) -> str | None:
    """The OS user the restored server must run as: DIR's owner (its parent's when DIR is
    new) when we are root and that is not root; None: ourselves."""
    if os.geteuid() != 0:
        return None
    uid = (pgdata if pgdata.exists() else pgdata.parent).stat().st_uid
    if uid == 0:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def settle(pgdata: Path, existing: list[str], server_user: str | None) -> None:
    """Give DIR and everything in it but the `existing` names to `server_user`; DIR no
    wider than 0750, which PostgreSQL requires."""
    if server_user is not None:
        entry = pwd.getpwnam(server_user)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
        for name in sorted(set(os.listdir(pgdata)) - set(existing)):
            osuser.chown_tree(pgdata / name, server_user)
    if stat.S_IMODE(pgdata.stat().st_mode) & 0o027:
        pgdata.chmod(0o700)


def write_recovery(pgdata: Path, restore_command: str, target: Target, backup_id: str
                   ) -> list[str]:
    """Append restore_command and the target's recovery_target_* settings to
    postgresql.auto.conf and create recovery.signal; the lines written."""
    settings = {"restore_command": restore_command, **target.settings()}
    lines = [f"# pgvdrill restore pitr {backup_id} at {datetime.now(UTC).isoformat()}",
             *(f"{key} = {quote(value)}" for key, value in settings.items())]
    with open(pgdata / AUTO_CONF, "a", encoding="utf-8") as conf:
        conf.write("\n".join(lines) + "\n")
        conf.flush()
        os.fsync(conf.fileno())
    (pgdata / "recovery.signal").touch()
    return lines
