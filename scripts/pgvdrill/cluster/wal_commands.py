"""The archive_command and restore_command a local server runs: `python -m
pgvdrill.wal.walcmd` with an interpreter and package path its OS user can use (a
world-readable copy of walcmd and its standard-library-only imports where needed)."""

from __future__ import annotations

import functools
import hashlib
import shlex
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pgvdrill
from pgvdrill.errors import ConfigError
from pgvdrill.installation import SHARED_INSTALL_ROOT, world_traversable
from pgvdrill.proc import runner
from pgvdrill.restore_status import as_restore_command

WALCMD = "pgvdrill.wal.walcmd"
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")


@functools.cache
def python_for(server_user: str | None) -> tuple[str, str]:
    """(interpreter, PYTHONPATH) with which `server_user` can import pgvdrill.wal.walcmd:
    this interpreter, else a system python3 (walcmd needs only the standard library)."""
    package_root = str(Path(pgvdrill.__file__).resolve().parent.parent)
    if server_user is not None and not world_traversable(Path(package_root)):
        package_root = str(shared_walcmd())
    tried = []
    candidates = (sys.executable, shutil.which("python3"), *SYSTEM_PYTHONS)
    for python in dict.fromkeys(p for p in candidates if p):
        try:
            result = runner.run([python, "-c", f"import {WALCMD}"], user=server_user,
                                env={"PYTHONPATH": package_root}, check=False, timeout=60)
        except OSError as exc:  # not executable by that user
            tried.append(f"{python}: {exc.strerror}")
            continue
        if result.returncode == 0:
            return python, package_root
        tried.append(f"{python}: {result.stderr.strip().splitlines()[-1:] or 'failed'}")
    raise ConfigError(
        f"the server's OS user {server_user or '(current)'} cannot run {WALCMD} "
        f"from {package_root}; tried {'; '.join(tried)}",
        "install pgvdrill where that user can read it (e.g. into a system-wide Python)")


# walcmd and the standard-library-only modules it imports, relative to the package root
WALCMD_FILES = ("pgvdrill/__init__.py", "pgvdrill/errors.py", "pgvdrill/restore_status.py",
                "pgvdrill/files/__init__.py",
                "pgvdrill/files/hardlinks.py", "pgvdrill/wal/__init__.py",
                "pgvdrill/wal/names.py", "pgvdrill/wal/walcmd.py")


def shared_walcmd() -> Path:
    """A world-readable copy of walcmd and its imports, for a server user who cannot enter
    the directory pgvdrill is installed in (a checkout under /root, say)."""
    root = Path(pgvdrill.__file__).resolve().parent.parent
    digest = hashlib.sha256(b"".join((root / f).read_bytes() for f in WALCMD_FILES))
    target = SHARED_INSTALL_ROOT / f"walcmd-{digest.hexdigest()[:12]}"
    if not (target / WALCMD_FILES[-1]).is_file():
        staging = Path(tempfile.mkdtemp(prefix=".walcmd-", dir=SHARED_INSTALL_ROOT))
        for name in WALCMD_FILES:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / name, staging / name)
        for path in [staging, *staging.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        try:
            staging.rename(target)
        except OSError:  # another worker published the same copy first
            shutil.rmtree(staging, ignore_errors=True)
    return target


def archive_command(dest: Path, server_user: str | None) -> str:
    """An archive_command running `archive-wal` into `dest`, checked to work for the
    server's OS user: the interpreter and package are usable and `dest` is writable."""
    python, root = python_for(server_user)
    probe = runner.run(["test", "-d", dest, "-a", "-w", dest], user=server_user,
                       check=False, timeout=30)
    if probe.returncode != 0:
        raise ConfigError(f"the archive directory {dest} is not a directory the server's OS "
                          f"user {server_user or '(current)'} can write to",
                          "create it and give it to that user (chown), or choose another")
    return (f"PYTHONPATH={shlex.quote(root)} {shlex.quote(python)} -m {WALCMD} "
            f"archive-wal %p %f --dest {shlex.quote(str(dest))}")


def restore_command(source: Path, server_user: str | None, *, partial: bool = False,
                    expect: Sequence[str] = ()) -> str:
    """A restore_command running `restore-wal` from `source` (see walcmd.restore_wal), its
    every failure but "not in the archive" mapped to a stop (restore_status.as_restore_command);
    `expect`: FIRST:LAST ranges of segments that must be there (walcmd --expect)."""
    python, root = python_for(server_user)
    return as_restore_command(
        f"PYTHONPATH={shlex.quote(root)} {shlex.quote(python)} -m {WALCMD} "
        f"restore-wal %f %p --source {shlex.quote(str(source))}"
        + (" --partial" if partial else "")
        + "".join(f" --expect {shlex.quote(span)}" for span in expect))
