"""The archive_command and restore_command programs: `archive-wal` and `restore-wal`.

    archive_command = 'pgvdrill archive-wal %p %f --dest /backup/wal'
    restore_command = 'pgvdrill restore-wal %f %p --source /backup/wal'

Also runnable as `python -m pgvdrill.wal.walcmd ...` with only the standard library (this
module imports nothing else), which is how pgvdrill's own servers call it.

archive-wal never acknowledges a file it has not stored durably and never replaces one:
it copies into an unnamed file in the archive (O_TMPFILE: a killed archive-wal leaves
nothing, and nobody listing the archive ever sees a temporary), fsyncs it, links it to its
final name (atomic, and unlike rename it fails instead of replacing a file that appeared
meanwhile) and fsyncs the directory. Where the file system has no unnamed files, a
temporary `.NAME.PID.tmp` is used, and one a killed attempt left is removed by the next.
An identical file already archived is success (PostgreSQL retries after a crash between
copy and acknowledgement); a different one is a failure.
Every failure exits non-zero, so PostgreSQL keeps the segment and retries.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from pgvdrill.errors import BackupError, ConfigError, DrillError
from pgvdrill.wal.names import SEGMENT_RE, is_archive_name

CHUNK = 1024 * 1024
UNNAMED_UNSUPPORTED = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL}  # no O_TMPFILE here
NOT_FOUND = 1  # restore-wal: the file is not in the archive (PostgreSQL expects non-zero)


def archive_wal(path: Path, name: str, dest: Path) -> str:
    """Store the WAL file `path` as `dest/name`; what happened, as one line."""
    _check_name(name)
    if not dest.is_dir():
        raise ConfigError(f"archive directory {dest} does not exist or is not a directory",
                          "create it (writable by the server's OS user) or fix --dest")
    target = dest / name
    try:
        return _store(path, target)
    except OSError as exc:
        raise BackupError(f"cannot archive {path} into {dest}: {exc.strerror or exc}",
                          "check that the file exists, the archive has free space and the "
                          "server's OS user can write to it") from exc


def _store(path: Path, target: Path) -> str:
    if target.exists():
        if _same_content(path, target):
            return f"{target.name} is already archived with identical content"
        raise BackupError(
            f"{target} already exists with different content; refusing to overwrite it",
            "two servers may be archiving into one directory, or the archive holds an "
            "older timeline's file: give each cluster its own archive and inspect both files")
    _remove_stale(target)
    directory = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:  # a file without a name until it is whole: nothing to leave behind if killed
            fd = os.open(target.parent, os.O_TMPFILE | os.O_WRONLY, 0o666)
        except OSError as exc:
            if exc.errno not in UNNAMED_UNSUPPORTED:
                raise
            _store_named(path, target)
        else:
            with path.open("rb") as src, os.fdopen(fd, "wb") as out:
                _copy(src, out)
                _link(f"/proc/self/fd/{out.fileno()}", target, path, directory)
        os.fsync(directory)
    finally:
        os.close(directory)
    return f"archived {target.name} into {target.parent}"


def _store_named(path: Path, target: Path) -> None:
    """`_store` where the file system has no unnamed files (O_TMPFILE): a temporary name
    `.NAME.PID.tmp`, removed whatever happens (and by the next attempt if killed)."""
    tmp = target.parent / f".{target.name}.{os.getpid()}.tmp"
    try:
        with path.open("rb") as src, open(tmp, "xb") as out:
            _copy(src, out)
        _link(tmp, target, path, None)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _copy(src: IO[bytes], out: IO[bytes]) -> None:
    shutil.copyfileobj(src, out, CHUNK)
    out.flush()
    os.fsync(out.fileno())


def _link(stored: str | Path, target: Path, path: Path, directory: int | None) -> None:
    """Give the stored copy its final name (never replacing a file: link, not rename)."""
    try:
        if directory is None:
            os.link(stored, target)
        else:  # through /proc/self/fd: linkat with AT_SYMLINK_FOLLOW
            os.link(stored, target.name, dst_dir_fd=directory)
    except FileExistsError:
        if not _same_content(path, target):
            raise BackupError(f"{target} appeared meanwhile with different content",
                              "another archiver writes into this directory") from None


def _remove_stale(target: Path) -> None:
    """Remove `.NAME.PID.tmp` files an archive-wal of this file left when it was killed
    (its process is gone): PostgreSQL archives one file at a time, so none is in use."""
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        pid = stale.name.removeprefix(f".{target.name}.").removesuffix(".tmp")
        if pid.isdigit() and not _running(int(pid)) and not stale.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def restore_wal(name: str, path: Path, source: Path, *, partial: bool = False) -> bool:
    """Copy `source/name` to `path`; False when the archive has no such file.

    With `partial`, a segment that exists only as `name.partial` (pg_receivewal's unfinished
    segment, padded to full size) is served from that file; the archive is never changed.
    """
    _check_name(name)
    found = source / name
    if not found.is_file() and partial and SEGMENT_RE.fullmatch(name):
        found = source / f"{name}.partial"
    if not found.is_file():
        return False
    try:
        shutil.copyfile(found, path)
    except OSError as exc:
        raise BackupError(f"cannot restore {found} to {path}: {exc.strerror or exc}",
                          "check that the server's OS user can read the archive") from exc
    return True


def _check_name(name: str) -> None:
    if not is_archive_name(name):
        raise ConfigError(
            f"refusing WAL file name {name!r}: only WAL segment (24 hex digits), "
            "timeline .history, .backup and .partial names are accepted",
            "pass PostgreSQL's %f as the file name argument")


def _same_content(first: Path, second: Path) -> bool:
    if first.stat().st_size != second.stat().st_size:
        return False
    with first.open("rb") as a, second.open("rb") as b:
        while True:
            chunk = a.read(CHUNK)
            if chunk != b.read(CHUNK):
                return False
            if not chunk:
                return True


def fsync_dir(directory: Path) -> None:
    """Make renames, links and unlinks in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def add_archive_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "archive-wal", help="archive_command: store one WAL file durably, never overwrite",
        description="Copy a WAL file into an archive directory: unnamed file, fsync, "
                    "atomic link, directory fsync. Exit 0 only when the file is stored "
                    "(or an identical copy already is).",
        # an epilog is printed as it is (only help strings expand %%): pasteable
        epilog="example: archive_command = 'pgvdrill archive-wal %p %f --dest /backup/wal'",
    )
    parser.add_argument("path", type=Path, help="the file to archive (PostgreSQL's %%p)")
    parser.add_argument("name", help="its file name (PostgreSQL's %%f)")
    parser.add_argument("--dest", type=Path, required=True, help="the archive directory")


def add_restore_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "restore-wal", help="restore_command: fetch one WAL file from an archive directory",
        description="Copy a WAL file from an archive directory to where PostgreSQL asks. "
                    "Exit 1 without a message when the archive has no such file.",
        epilog="example: restore_command = 'pgvdrill restore-wal %f %p --source /backup/wal'",
    )
    parser.add_argument("name", help="the file wanted (PostgreSQL's %%f)")
    parser.add_argument("path", type=Path, help="where to put it (PostgreSQL's %%p)")
    parser.add_argument("--source", type=Path, required=True, help="the archive directory")
    parser.add_argument("--partial", action="store_true",
                        help="serve a segment from NAME.partial when NAME is absent "
                             "(pg_receivewal's unfinished newest segment)")


def cmd_archive(args: argparse.Namespace) -> int:
    print(f"pgvdrill archive-wal: {archive_wal(args.path, args.name, args.dest)}",
          file=sys.stderr)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    return 0 if restore_wal(args.name, args.path, args.source, partial=args.partial) \
        else NOT_FOUND


COMMANDS = {"archive-wal": cmd_archive, "restore-wal": cmd_restore}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pgvdrill.wal.walcmd",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    add_archive_parser(sub)
    add_restore_parser(sub)
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except DrillError as exc:
        print(f"pgvdrill {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
