"""Where a repository keeps things, and its permissions (directories 0700, files 0600).

    <root>/logical/<id>/        a pg_dump archive (custom file or directory format)
    <root>/physical/<id>/       a pg_basebackup target directory (tar or plain)
    <root>/wal/                 archived WAL (pgvdrill archive-wal %p %f --dest <root>/wal)
    <root>/catalog/<id>.json    one entry per complete backup, written last
    <root>/.lock                held by commands using the repository (see lock.py)

A backup directory without a catalog entry is incomplete (running, or it failed): it is
reported, never counted as a valid backup, and never deleted automatically.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pgvdrill.errors import ConfigError
from pgvdrill.repository.paths import inside

KINDS = ("logical", "physical")
LOCK = ".lock"
SUBDIRS = (*KINDS, "wal", "catalog")


@dataclass(frozen=True)
class Repository:
    """Every path below `root` is made by `paths.inside`: UnsafePath (a BackupError) for
    a name that would leave the repository or a symlink on the way, the root included."""

    root: Path

    def dir(self, name: str) -> Path:
        return inside(self.root, name)

    @property
    def wal(self) -> Path:
        return inside(self.root, "wal")

    @property
    def catalog(self) -> Path:
        return inside(self.root, "catalog")

    def backup_dir(self, kind: str, backup_id: str) -> Path:
        return inside(self.root, kind, backup_id)

    def entry_path(self, backup_id: str) -> Path:
        return inside(self.root, "catalog", f"{backup_id}.json")

    def ensure(self) -> Repository:
        """Create the layout (0700); ConfigError when the root cannot be written or is open
        to other users."""
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            for name in SUBDIRS:
                self.dir(name).mkdir(mode=0o700, exist_ok=True)
            os.close(os.open(inside(self.root, LOCK),
                             os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
        except OSError as exc:
            raise ConfigError(f"cannot create the backup repository {self.root}: "
                              f"{exc.strerror or exc}",
                              "choose a writable [repository] path, or create it for the "
                              "user pgvdrill runs as") from None
        mode = self.root.stat().st_mode
        if mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise ConfigError(f"backup repository {self.root} is writable by other users "
                              f"(mode {stat.filemode(mode)})",
                              f"chmod 700 {self.root}: backups hold every row of the database")
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise ConfigError(f"backup repository {self.root} is not writable",
                              "fix its owner or permissions, or choose another path")
        return self

    def new_id(self, kind: str, now: datetime | None = None) -> str:
        """`<kind>-<UTC time>`, unique in this repository (a counter if the second repeats)."""
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        backup_id, n = f"{kind}-{stamp}", 1
        while self.backup_dir(kind, backup_id).exists() or self.entry_path(backup_id).exists():
            n += 1
            backup_id = f"{kind}-{stamp}-{n}"
        return backup_id


def restrict(path: Path) -> None:
    """Make every file below `path` 0600 and every directory 0700 (a backup's contents)."""
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for p in paths:
        if not p.is_symlink():
            p.chmod(0o700 if p.is_dir() else 0o600)
