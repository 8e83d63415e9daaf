"""Safe tar extraction of base backups, the same on every Python 3.11+.

tarfile's own `filter="data"` needs Python 3.11.4 (Debian 12's python3 is 3.11.2), so
every member is checked and written here, one code path everywhere: no absolute path, no
`..`, nothing created through any link (each directory is opened component by component
without following links), symbolic links made last and each judged where it finally
points (a later link cannot turn an inside link outward), no device, FIFO or other
special file, no setuid/setgid/sticky bits or group/other write, no ownership taken from
the archive (files belong to the caller), and no existing file overwritten.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from pgvdrill.errors import BackupError, RestoreError, classified

ARCHIVES = ("base.tar", "base.tar.gz", "pg_wal.tar", "pg_wal.tar.gz")

_OUT = ("refusing to extract it: a base backup only holds relative paths and files inside "
        "its directory; this archive was not written by pg_basebackup or has been tampered "
        "with")


def extract(archive: Path, dest: Path, *, members: Callable[[str], bool] | None = None
            ) -> list[str]:
    """Extract `archive` (.tar or .tar.gz) into `dest` after checking every chosen member
    (see the module docstring); `members` selects by name. Returns the names extracted. A
    truncated or corrupt archive is a `BackupError` naming it; a full disk or a permission
    where it is extracted an `EnvironmentFailure`."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            chosen = [m for m in tar.getmembers() if members is None or members(m.name)]
            for member in chosen:
                unsafe(archive, member)
            _below_no_link(archive, chosen)
            try:
                _write_all(tar, chosen, dest.resolve(), archive)
            except FileExistsError as exc:
                raise BackupError(f"cannot extract {archive} into {dest}: {exc.filename} "
                                  "exists already",
                                  "extract into an empty directory") from exc
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError) and exc.filename == str(archive):
            raise BackupError(f"{archive} is missing", "the backup is incomplete") from exc
        failure = classified(exc, f"cannot extract {archive} into {dest}")
        if failure is not None:
            raise failure from exc
        raise BackupError(f"cannot extract {archive}: {exc}",
                          "the archive is truncated or corrupt: do not restore from this "
                          "backup, use another one") from exc
    return [m.name for m in chosen]


def extract_backup(path: Path, datadir: Path) -> None:
    """A tar-format base backup at `path` as a data directory: base.tar(.gz) into
    `datadir`, pg_wal.tar(.gz) into its pg_wal."""
    others = sorted(p.name for p in path.iterdir()
                    if p.name.endswith((".tar", ".tar.gz")) and p.name not in ARCHIVES)
    if others:
        raise RestoreError(f"{path} holds tablespace archives ({', '.join(others)})",
                           "pgvdrill restores backups without tablespaces: restore those "
                           "by hand, mapping each with tablespace_map")
    base = base_archive(path)
    extract(base, datadir)
    for name in ("pg_wal.tar", "pg_wal.tar.gz"):
        if (path / name).is_file():
            extract(path / name, datadir / "pg_wal")
    if not (datadir / "PG_VERSION").is_file():
        raise BackupError(f"{base} holds no PG_VERSION", "it is not a base backup archive")


def base_archive(path: Path) -> Path:
    """The base.tar or base.tar.gz of the tar-format backup at `path`."""
    return path / "base.tar" if (path / "base.tar").is_file() else path / "base.tar.gz"


def read_member(archive: Path, name: str) -> bytes | None:
    """The content of the regular file `name` of `archive` (read as a stream, up to that
    member), or None if it holds none; a corrupt archive is a `BackupError`."""
    try:
        with tarfile.open(archive, "r|*") as tar:
            for member in tar:
                if member.name == name and member.isreg():
                    data = tar.extractfile(member)
                    return None if data is None else data.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupError(f"cannot read {archive}: {exc}",
                          "the archive is truncated or corrupt: do not restore from this "
                          "backup, use another one") from exc
    return None


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


def _below_no_link(archive: Path, chosen: list[tarfile.TarInfo]) -> None:
    """Raise `BackupError` if a member lies below a symbolic link of the archive (nothing
    is written through a link: pg_basebackup writes no such member)."""
    links = {PurePosixPath(m.name) for m in chosen if m.issym()}
    for member in chosen:
        above = next((p for p in PurePosixPath(member.name).parents if p in links), None)
        if above is not None:
            raise BackupError(f"{archive} holds {member.name!r}, below its link {str(above)!r}",
                              _OUT)


def _mode(member: tarfile.TarInfo) -> int:
    """The member's permissions without special bits or group/other write; owner rw."""
    mode = member.mode & 0o755
    if not mode & 0o100:
        mode &= ~0o111
    return mode | 0o600


def _write_all(tar: tarfile.TarFile, chosen: list[tarfile.TarInfo], root: Path,
               archive: Path) -> None:
    """Write the checked members below `root`: directories, files and hard links first,
    each opened component by component from `root` without following any link (nothing
    is ever created through a link, so nothing outside); then the symbolic links, each
    checked where it finally points, once no member can change that any more."""
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        links = [m for m in chosen if m.issym()]
        for member in [m for m in chosen if not m.issym()] + links:
            try:
                _write(tar, member, root_fd, archive)
            except FileExistsError as exc:
                raise FileExistsError(errno.EEXIST, "exists", str(root / member.name)
                                      ) from exc
        outward = [m for m in links
                   if not Path(os.path.realpath(root / m.name)).is_relative_to(root)]
        for member in outward:
            os.unlink(root / member.name)
        if outward:
            raise BackupError(f"{archive} holds {outward[0].name!r}, a link to "
                              f"{outward[0].linkname!r} outside the data directory (through "
                              "the archive's other links)", _OUT)
    finally:
        os.close(root_fd)


def _directory(root_fd: int, parts: tuple[str, ...], name: str, archive: Path, *,
               create: bool = True) -> int:
    """A descriptor of directory `parts` below `root_fd`, opened (and made, 0700, if
    `create`) one component at a time without following links; member `name` is refused
    if a component is a link or a file."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o700, dir_fd=fd)
            try:
                below = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                    raise
                raise BackupError(f"{archive} holds {name!r}, below a link, a file or "
                                  f"nothing ({part!r})", _OUT) from exc
            os.close(fd)
            fd = below
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write(tar: tarfile.TarFile, member: tarfile.TarInfo, root_fd: int, archive: Path
           ) -> None:
    """Create one checked member below `root_fd` (see _write_all)."""
    parts = PurePosixPath(member.name).parts
    if member.isdir():
        os.close(_directory(root_fd, parts, member.name, archive))
        return
    parent_fd = _directory(root_fd, parts[:-1], member.name, archive)
    name = parts[-1]
    try:
        if member.issym():
            os.symlink(member.linkname, name, dir_fd=parent_fd)
        elif member.islnk():
            _hard_link(member, root_fd, parent_fd, archive)
        else:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                         dir_fd=parent_fd)
            with os.fdopen(fd, "wb") as out:
                data = tar.extractfile(member)
                if data is None:
                    raise tarfile.ReadError(f"no data for {member.name}")
                shutil.copyfileobj(data, out, 1 << 20)
                os.fchmod(out.fileno(), _mode(member))
                os.utime(out.fileno(), (member.mtime, member.mtime))
    finally:
        os.close(parent_fd)


def _hard_link(member: tarfile.TarInfo, root_fd: int, parent_fd: int, archive: Path) -> None:
    """Hard link `member` to a regular file already extracted (never through a link)."""
    parts = PurePosixPath(member.linkname).parts
    source_fd = _directory(root_fd, parts[:-1], member.name, archive, create=False)
    try:
        try:
            regular = stat.S_ISREG(os.stat(parts[-1], dir_fd=source_fd,
                                           follow_symlinks=False).st_mode)
        except FileNotFoundError:
            regular = False
        if not regular:
            raise BackupError(f"{archive} holds {member.name!r}, a hard link to "
                              f"{member.linkname!r}, which is no file of the archive", _OUT)
        os.link(parts[-1], PurePosixPath(member.name).name, src_dir_fd=source_fd,
                dst_dir_fd=parent_fd, follow_symlinks=False)
    finally:
        os.close(source_fd)
