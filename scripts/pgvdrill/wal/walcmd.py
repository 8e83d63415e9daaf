"""The archive_command and restore_command programs: `archive-wal` and `restore-wal`.

    archive_command = 'pgvdrill archive-wal %p %f --dest /backup/wal'
    restore_command = 'pgvdrill restore-wal %f %p --source /backup/wal; case $? in 0) ;;
                       99) exit 1 ;; *) exit 126 ;; esac'   (on one line)

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

restore-wal exits NOT_IN_ARCHIVE (99) only for "the archive has no such file", which
PostgreSQL takes as the end of the archived WAL. Every other failure (an unreadable file
or archive directory, an I/O error, a refused name, a mistake in its arguments, a crash)
exits 126: PostgreSQL's startup process takes an exit status above 125 as fatal and stops
instead of ending recovery there and promoting (a non-zero status of 125 or less would be
"not available": a silent early end). With --expect FIRST:LAST (what `restore pitr` saw
in the archive), a missing segment in that range is such a failure too. A program that
cannot even start (an interpreter that cannot import pgvdrill exits 1, a shell that cannot
find it 127) is caught by the `case` that follows it in restore_command (as_restore_command):
only 99 becomes PostgreSQL's "not found" (1), every other failure 126.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import shutil
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from pgvdrill.errors import BackupError, ConfigError, DrillError
from pgvdrill.files.hardlinks import hard_link_problem
from pgvdrill.restore_status import ABORT_RECOVERY, NOT_IN_ARCHIVE, as_restore_command
from pgvdrill.wal.names import LONG_HEADER, SEGMENT_RE, is_archive_name, recorded_segment_size

CHUNK = 1024 * 1024
UNNAMED_UNSUPPORTED = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL}  # no O_TMPFILE here


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
    if not os.path.lexists(found) and partial and SEGMENT_RE.fullmatch(name):
        found = source / f"{name}.partial"
    try:
        fd = os.open(found, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise BackupError(f"cannot restore {found} to {path}: {exc.strerror or exc}"
                          + (" (a symlink: never followed)" if os.path.islink(found) else ""),
                          "check that the server's OS user can read the archive, and move "
                          "a symlink out of it") from exc
    with open(fd, "rb") as src:
        _refuse_odd(src.fileno(), found)
        try:
            with open(path, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
        except OSError as exc:
            raise BackupError(f"cannot restore {found} to {path}: {exc.strerror or exc}",
                              "check that the server's OS user can write pg_wal") from exc
    return True


def expected_range(text: str) -> tuple[str, str]:
    """--expect FIRST:LAST: two segment names of one timeline, in order."""
    first, _, last = text.partition(":")
    if not (SEGMENT_RE.fullmatch(first) and SEGMENT_RE.fullmatch(last)
            and first[:8] == last[:8] and first <= last):
        raise argparse.ArgumentTypeError(f"{text!r}: give FIRST:LAST, two WAL segment names "
                                         "of one timeline, the first not after the last")
    return first, last


def refuse_expected(name: str, source: Path, expected: Sequence[tuple[str, str]]) -> None:
    """BackupError when the missing `name` is in one of the `expected` ranges: the archive
    held it when the restore was prepared, so "not found" would end recovery early."""
    for first, last in expected:
        if SEGMENT_RE.fullmatch(name) and name[:8] == first[:8] and first <= name <= last:
            raise BackupError(
                f"{name} is missing from {source}, which held {first} to {last} when this "
                "restore was prepared: recovery would end early here",
                "put the segment back from another copy of the archive (pgvdrill sync), "
                "then start the server again")


def _refuse_odd(fd: int, found: Path) -> None:
    """BackupError for an archive file that is not a regular file, has a hard link outside
    the archive, or is a segment whose size is not the segment size its own long page
    header records."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise BackupError(f"refusing to restore {found}: not a regular file",
                          "move it out of the archive")
    linked = hard_link_problem(info, found.parent)
    if linked:
        raise BackupError(f"refusing to restore {found}: {linked}",
                          "find out who linked it; move it out of the archive and restore "
                          "the segment from an off-site copy (pgvdrill verify names every "
                          "such file)")
    if SEGMENT_RE.fullmatch(found.name):
        recorded = recorded_segment_size(os.pread(fd, LONG_HEADER.size, 0))
        if info.st_size != recorded:
            raise BackupError(f"refusing to restore {found}: {info.st_size} bytes, not the "
                              f"segment size its header records ({recorded})",
                              "a truncated or foreign file: restore the segment from the "
                              "server's pg_wal or an off-site copy (pgvdrill verify names "
                              "every such file)")


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
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the example on one line
        description=(
            "Copy a WAL file from an archive directory to where PostgreSQL asks.\n"
            f"Exit {NOT_IN_ARCHIVE} without a message when the archive has no such file; "
            f"exit {ABORT_RECOVERY} with the reason\non any other failure (a wrong "
            "argument too), which makes PostgreSQL stop recovery instead\nof promoting "
            "early. A symlink, a non-regular file, a file with a hard link outside the\n"
            "archive and a segment whose size is not the segment size its header records\n"
            "are refused, never served. Write restore_command as in the example: its case "
            "turns "
            f"{NOT_IN_ARCHIVE} into\nPostgreSQL's \"not found\" (1) and every other "
            f"failure into {ABORT_RECOVERY}, also when the program cannot\nstart (Python "
            "exits 1 when it cannot import pgvdrill: alone, PostgreSQL would take\nthat "
            "for the end of the archive and promote)."),
        epilog="example: restore_command = '" + as_restore_command(
            "pgvdrill restore-wal %f %p --source /backup/wal") + "'",
    )
    parser.add_argument("name", help="the file wanted (PostgreSQL's %%f)")
    parser.add_argument("path", type=Path, help="where to put it (PostgreSQL's %%p)")
    parser.add_argument("--source", type=Path, required=True, help="the archive directory")
    parser.add_argument("--partial", action="store_true",
                        help="serve a segment from NAME.partial when NAME is absent "
                             "(pg_receivewal's unfinished newest segment)")
    parser.add_argument("--expect", type=expected_range, action="append", default=[],
                        metavar="FIRST:LAST",
                        help="segments the archive must hold (restore pitr writes the ones "
                             "it saw): one of them missing stops recovery instead of "
                             "ending it there")


def cmd_archive(args: argparse.Namespace) -> int:
    print(f"pgvdrill archive-wal: {archive_wal(args.path, args.name, args.dest)}",
          file=sys.stderr)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """0, NOT_IN_ARCHIVE, or ABORT_RECOVERY for every other failure: whatever went wrong, the
    server must not take it for the end of the archive."""
    try:
        if not args.source.is_dir():
            raise ConfigError(f"archive directory {args.source} does not exist or is not a "
                              "directory", "fix restore_command's --source")
        found = restore_wal(args.name, args.path, args.source, partial=args.partial)
        if not found:
            refuse_expected(args.name, args.source, args.expect)
    except Exception as exc:  # a crash too must stop recovery, never look like "absent"
        print(f"pgvdrill restore-wal: cannot restore {args.name}: {type(exc).__name__}: "
              f"{exc}\n  recovery stops here (exit {ABORT_RECOVERY}) rather than end early",
              file=sys.stderr)
        return ABORT_RECOVERY
    return 0 if found else NOT_IN_ARCHIVE


def restore_wal_invoked(argv: Sequence[str]) -> bool:
    """Whether `argv` (a command line of walcmd or of pgvdrill, whose options before the
    command take no value) runs restore-wal."""
    words = [w for w in argv if not w.startswith("-")]
    return bool(words) and words[0] == "restore-wal"


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None
               ) -> argparse.Namespace:
    """`parser.parse_args`, except that a usage error of restore-wal exits ABORT_RECOVERY:
    argparse's 2 would be "not in the archive" to PostgreSQL, ending recovery early at a
    typo in restore_command."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:
        if exc.code not in (0, None) and \
                restore_wal_invoked(sys.argv[1:] if argv is None else argv):
            print(f"pgvdrill restore-wal: the command line is wrong (see above)\n  recovery "
                  f"stops here (exit {ABORT_RECOVERY}) rather than end early",
                  file=sys.stderr)
            raise SystemExit(ABORT_RECOVERY) from None
        raise


COMMANDS = {"archive-wal": cmd_archive, "restore-wal": cmd_restore}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pgvdrill.wal.walcmd",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    add_archive_parser(sub)
    add_restore_parser(sub)
    args = parse_args(parser, argv)
    try:
        return COMMANDS[args.command](args)
    except DrillError as exc:
        print(f"pgvdrill {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
