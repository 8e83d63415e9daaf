"""What the providers of backups on local disk share (`files`, `pgvdrill`): copying a
dump or a base backup into the drill's directory without following a link, fetching a WAL
file from an archive directory, and reading a backup with PostgreSQL's own tools
(pg_restore, pg_verifybackup of the backup's major) as the provider's verification; and
what the tools that fetch WAL as another OS user share (`pgbackrest`, `barman-cloud`): a
staging directory of that user's, delivered into the drill's own directory.

Everything found there is untrusted input: a symbolic link, FIFO or device is refused,
never followed; a WAL name is checked before it names a file.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pgvdrill import installation, osuser
from pgvdrill.backends import default_workdir
from pgvdrill.errors import BackupError, ConfigError, DrillError, ToolError
from pgvdrill.installation import Installation
from pgvdrill.logical.archive import inspect
from pgvdrill.physical.unpack import extract_backup
from pgvdrill.physical.verifybackup import backup_format, backup_major, check_backup
from pgvdrill.providers.base import ToolCheck
from pgvdrill.repository.paths import copy_regular, what_is
from pgvdrill.wal.names import is_archive_name

Installations = Callable[[], Sequence[Installation]]


def embedded_only() -> Sequence[Installation]:
    """The tools a local provider reads backups with by default: the embedded PostgreSQL's
    (its pg_restore reads dumps of every older major; its pg_verifybackup only its own)."""
    return [installation.embedded(osuser.server_user())]


def copy_tree(source: Path, dest: Path) -> None:
    """Copy the file or directory `source` to `dest` (which must not exist), following no
    link: a symbolic link, FIFO, socket or device anywhere in it is a `BackupError`."""
    odd = what_is(source)
    if odd is not None:
        raise BackupError(f"{source} is {odd}: never followed or read",
                          "a backup holds regular files and directories only: find out who "
                          "put it there")
    if not source.is_dir():
        copy_regular(source, dest)
        return
    dest.mkdir(mode=0o700)
    for top, dirs, files in os.walk(source, followlinks=False):
        below = dest / Path(top).relative_to(source)
        for name in dirs + files:
            odd = what_is(Path(top, name))
            if odd is not None:
                raise BackupError(f"{Path(top, name)} is {odd}: never followed or read",
                                  "a backup holds regular files and directories only "
                                  "(pgvdrill drills base backups without tablespaces)")
        for name in dirs:
            (below / name).mkdir(mode=0o700)
        for name in files:
            copy_regular(Path(top, name), below / name)


def restore_base_backup(path: Path, into: Path) -> None:
    """The base backup at `path` (tar: base.tar[.gz] + pg_wal.tar[.gz]; plain: a data
    directory) as a data directory in the empty directory `into`."""
    if backup_format(path) == "tar":
        extract_backup(path, into)
        return
    into.rmdir()
    copy_tree(path, into)
    into.chmod(0o700)


def fetch_wal(archive: Path | None, name: str, dest: Path) -> bool:
    """Copy WAL file `name` from the directory `archive` to `dest`; False when it has none
    (or no archive is configured); a symbolic link or other non-regular file is refused."""
    if not is_archive_name(name):
        raise ConfigError(f"{name!r} is not a WAL file name", "ask for a segment, .history, "
                          ".backup or .partial file by its bare name")
    if archive is None:
        return False
    source = archive / name
    try:
        mode = os.lstat(source).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(mode):
        raise BackupError(f"WAL archive {archive}: {name} is {what_is(source) or 'no file'}: "
                          "never followed or read",
                          "an archive holds regular files only: find out who put it there")
    copy_regular(source, dest)
    return True


def wal_names(archive: Path | None) -> list[str] | None:
    """The WAL file names in the directory `archive` (others left out); None without one."""
    if archive is None:
        return None
    try:
        return sorted(n for n in os.listdir(archive) if is_archive_name(n))
    except FileNotFoundError:
        raise BackupError(f"WAL archive {archive} is missing",
                          "mount it, or correct the provider's wal setting") from None


def check_dump(tools: Installations, path: Path, name: str = "pg_restore") -> ToolCheck:
    """A dump read back in full: its table of contents (pg_restore --list) and every data
    block (pg_restore --file /dev/null); fail naming the damage."""
    argv = ("pg_restore", "--list", str(path))
    return _run_check(name, argv, lambda: inspect(tools()[0], path).format)


def check_base_backup(tools: Installations, path: Path, name: str = "pg_verifybackup"
                      ) -> ToolCheck:
    """pg_verifybackup of the backup's major on the base backup at `path` (its WAL parsed);
    unknown, saying why, without a backup_manifest or an installation of its major."""
    argv = ("pg_verifybackup", str(path))
    started = time.monotonic()
    try:
        if not (path / "backup_manifest").is_file():
            return ToolCheck(name, "unknown", argv, reason=(
                f"{path} has no backup_manifest (pg_basebackup writes one from PostgreSQL "
                "13 on): pg_verifybackup cannot check its files; the restore and recovery "
                "are the only check"))
        major = backup_major(path)
        found = next((i for i in tools() if i.major == major), None)
        if found is None:
            return ToolCheck(name, "unknown", argv, reason=(
                f"it is a PostgreSQL {major} backup and only PostgreSQL {major}'s "
                "pg_verifybackup reads it; no installation of that major is configured"))
    except DrillError as exc:
        return ToolCheck(name, "fail", argv, exc.message, seconds=time.monotonic() - started)
    return _run_check(name, argv, lambda: f"{check_backup(found, path).format} backup "
                      f"verified by PostgreSQL {found.version}'s pg_verifybackup")


def _run_check(name: str, argv: tuple[str, ...], check: Callable[[], str]) -> ToolCheck:
    """`check` run as a ToolCheck: pass with what it returns, fail with a BackupError's
    message, unknown with any other error's (the check could not run)."""
    started = time.monotonic()
    try:
        said = check()
    except BackupError as exc:
        return ToolCheck(name, "fail", argv, f"{exc.message}\n{exc.hint or ''}".strip(),
                         seconds=time.monotonic() - started)
    except DrillError as exc:
        return ToolCheck(name, "unknown", argv, reason=exc.message,
                         seconds=time.monotonic() - started)
    return ToolCheck(name, "pass", argv, said, seconds=time.monotonic() - started)


@contextmanager
def staging(user: str | None, prefix: str) -> Iterator[Path]:
    """A private directory (below the drill's work directory, owned by `user`; None: the
    caller) for a tool run as `user` to write a WAL file into: the drill's own directory
    may be closed to it. Removed afterwards."""
    made = Path(tempfile.mkdtemp(prefix=prefix, dir=default_workdir()))
    try:
        if user:
            entry = pwd.getpwnam(user)
            os.chown(made, entry.pw_uid, entry.pw_gid)
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


def deliver(staged: Path, dest: Path, argv: Sequence[str]) -> None:
    """Copy the regular file a tool (`argv`) left at `staged`, never through a symlink,
    to `dest` through a partial file; ToolError when it left none."""
    part = dest.with_name(f".{dest.name}.part")
    try:
        copy_regular(staged, part)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise ToolError(list(argv), 0, str(exc), f"{argv[0]} left no regular file "
                        f"{staged.name}") from None
    part.replace(dest)
