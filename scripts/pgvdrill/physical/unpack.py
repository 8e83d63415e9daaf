"""Safe tar extraction of base backups, the same on every Python 3.11+.

tarfile's own `filter="data"` needs Python 3.11.4 (Debian 12's python3 is 3.11.2), so
every member is checked and written here, one code path everywhere: no absolute path, no
`..`, nothing through or to a link leading out of the directory, no device, FIFO or other
special file, no setuid/setgid/sticky bits or group/other write, no ownership taken from
the archive (files belong to the caller), and no existing file overwritten.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from pgvdrill.errors import BackupError

_OUT = ("refusing to extract it: a base backup only holds relative paths and files inside "
        "its directory; this archive was not written by pg_basebackup or has been tampered "
        "with")


def extract(archive: Path, dest: Path, *, members: Callable[[str], bool] | None = None
            ) -> list[str]:
    """Extract `archive` (.tar or .tar.gz) into `dest` after checking every chosen member
    (see the module docstring); `members` selects by name. Returns the names extracted. A
    truncated or corrupt archive is a `BackupError` naming it."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            chosen = [m for m in tar.getmembers() if members is None or members(m.name)]
            for member in chosen:
                unsafe(archive, member)
            root = dest.resolve()
            for member in chosen:
                try:
                    _write(tar, member, root, archive)
                except FileExistsError as exc:
                    raise BackupError(f"cannot extract {archive} into {dest}: {exc.filename} "
                                      "exists already",
                                      "extract into an empty directory") from exc
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError) and exc.filename == str(archive):
            raise BackupError(f"{archive} is missing", "the backup is incomplete") from exc
        raise BackupError(f"cannot extract {archive}: {exc}",
                          "the archive is truncated or corrupt: do not restore from this "
                          "backup, use another one") from exc
    return [m.name for m in chosen]


def unsafe(archive: Path, member: tarfile.TarInfo) -> None:
    """Raise `BackupError` if `member` is no plain relative file, directory or link that
    stays inside the extraction directory."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or "\0" in member.name:
        raise BackupError(f"{archive} holds {member.name!r}, a path outside the data "
                          "directory", _OUT)
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        raise BackupError(f"{archive} holds {member.name!r}, a special file (device, FIFO "
                          "or unknown type)", _OUT)
    if member.issym() or member.islnk():
        target = PurePosixPath(member.linkname)
        inside = (path.parent / target) if member.issym() else target
        depth = 0
        for part in inside.parts:
            depth += -1 if part == ".." else 0 if part == "." else 1
            if depth < 0:
                break
        if target.is_absolute() or depth < 0 or not member.linkname:
            raise BackupError(f"{archive} holds {member.name!r}, a link to "
                              f"{member.linkname!r} outside the data directory", _OUT)


def _mode(member: tarfile.TarInfo) -> int:
    """The member's permissions without special bits or group/other write; owner rw."""
    mode = member.mode & 0o755
    if not mode & 0o100:
        mode &= ~0o111
    return mode | 0o600


def _write(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path, archive: Path) -> None:
    """Create one checked member below `root`, never through a link leading out of it."""
    target = root / member.name
    parent = target.parent
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not parent.resolve().is_relative_to(root):
        raise BackupError(f"{archive} holds {member.name!r}, below a link leading outside "
                          "the data directory", _OUT)
    if member.isdir():
        if not target.is_dir() or target.is_symlink():
            target.mkdir(mode=0o700)
        return
    if member.issym():
        if not (parent.resolve() / member.linkname).resolve().is_relative_to(root):
            raise BackupError(f"{archive} holds {member.name!r}, a link to "
                              f"{member.linkname!r} outside the data directory", _OUT)
        os.symlink(member.linkname, target)
        return
    if member.islnk():
        source = root / member.linkname
        if source.is_symlink() or not source.resolve().is_relative_to(root):
            raise BackupError(f"{archive} holds {member.name!r}, a hard link to "
                              f"{member.linkname!r}, which is no file of the archive", _OUT)
        os.link(source, target)
        return
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        data = tar.extractfile(member)
        if data is None:
            raise tarfile.ReadError(f"no data for {member.name}")
        shutil.copyfileobj(data, out, 1 << 20)
        os.fchmod(out.fileno(), _mode(member))
    os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
