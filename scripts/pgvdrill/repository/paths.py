"""The one way into a repository: paths below its root that never leave it.

Whoever can write the repository (the server's OS user owns wal/) can plant names and
symlinks there, so a name from the catalog or from a listing is joined to the root only
by `inside`, which refuses an absolute path, an empty, `.` or `..` part, and a symlink at
any existing component, the root included (a symlink is reported, never followed). Files
are listed without following links (`listing`: links, FIFOs, sockets and devices are named
as problems) and opened with O_NOFOLLOW, component by component (`open_below`), as regular
files only, never one with a hard link outside its directory (hardlinks.py).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from pgvdrill.errors import BackupError
from pgvdrill.files.hardlinks import hard_link_problem


class UnsafePath(BackupError):
    """A repository path that would leave the repository or follow a symlink."""


def parts_of(relative: str) -> tuple[str, ...]:
    """The components of a relative '/'-separated path; ValueError for an absolute path,
    an empty, '.' or '..' component, a NUL or a backslash."""
    if not relative or relative.startswith("/") or "\0" in relative or "\\" in relative:
        raise ValueError(f"{relative!r} is not a relative path")
    parts = tuple(relative.split("/"))
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"{relative!r} has an empty, '.' or '..' component")
    return parts


def what_is(path: Path) -> str | None:
    """How `path` is not a plain directory or regular file (a symlink and its target, a
    FIFO, a socket, a device, a hard link with names outside its directory), or None."""
    info = os.lstat(path)
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        return f"a symlink (to {os.readlink(path)})"
    if stat.S_ISREG(mode):
        return hard_link_problem(info, path.parent)
    if stat.S_ISDIR(mode):
        return None
    return {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device",
            stat.S_IFBLK: "a device"}.get(stat.S_IFMT(mode), "not a regular file")


def inside(root: Path, *relative: str) -> Path:
    """`root` joined with each '/'-separated `relative` path; UnsafePath when a part is
    absolute, empty, '.' or '..', or an existing component (the root too) is a symlink.
    Components that do not exist (yet) are fine."""
    parts: list[str] = []
    for text in relative:
        try:
            parts += parts_of(text)
        except ValueError as exc:
            raise UnsafePath(f"refusing repository path {root}/{'/'.join(relative)}: {exc}",
                             "a catalog entry or file name in the repository was tampered "
                             "with: run pgvdrill verify, restore the entry from an off-site "
                             "copy (pgvdrill sync keeps one) or move it away") from None
    path = root
    for part in ["", *parts]:
        path = path / part if part else path
        try:
            if not os.path.islink(path):
                continue
            target = os.readlink(path)
        except OSError:
            break  # missing (or unreadable): nothing below it is followed either
        if path == root:
            raise UnsafePath(f"backup repository {root} is a symlink (to {target})",
                             f"set [repository] path to the real directory "
                             f"({os.path.realpath(root)}): pgvdrill follows no symlink in a "
                             "repository")
        raise UnsafePath(f"{path} in backup repository {root} is a symlink (to {target}): "
                         "pgvdrill never follows a symlink in a repository",
                         f"find out who made it; move it out of the repository (mv {path} "
                         "SOMEWHERE) and put the real directory or file there if it belongs")
    return path


@dataclass
class Listing:
    """What a directory below the repository holds: regular files (relative '/'-separated
    paths, sorted) and everything else that is not a directory (relative path -> what)."""

    files: list[str] = field(default_factory=list)
    odd: dict[str, str] = field(default_factory=dict)


def listing(directory: Path) -> Listing:
    """The files below `directory`, following no symlink."""
    found = Listing()
    for top, dirs, files in os.walk(directory, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(top, name)
            relative = path.relative_to(directory).as_posix()
            odd = what_is(path)
            if odd is not None:
                found.odd[relative] = odd
            elif name in files:
                found.files.append(relative)
    found.files.sort()
    return found


def open_below(directory: Path, relative: str) -> int:
    """A read-only descriptor of the regular file `directory/relative`, opened component by
    component without following any symlink; OSError (ELOOP for a symlink) otherwise."""
    parts = parts_of(relative)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(directory, flags | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            inner = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        return open_regular(parts[-1], dir_fd=fd)
    finally:
        os.close(fd)


def open_regular(path: str | Path, dir_fd: int | None = None) -> int:
    """A read-only descriptor of `path` when it is a regular file (never through a symlink
    as its last component; a FIFO is not waited on); OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                 dir_fd=dir_fd)
    info = os.fstat(fd)
    linked = stat.S_ISREG(info.st_mode) and hard_link_problem(
        info, Path(path).parent if dir_fd is None else dir_fd)
    if not stat.S_ISREG(info.st_mode) or linked:
        os.close(fd)
        raise OSError(errno.EMLINK if linked else errno.EINVAL, linked or "not a regular file",
                      str(path))
    return fd


def copy_regular(source: Path, target: Path) -> None:
    """Copy the regular file `source` (never through a symlink) to `target`."""
    with os.fdopen(open_regular(source), "rb") as src, target.open("wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
