"""Free TCP ports on 127.0.0.1, leased with a file lock so parallel workers never share one.

The locks live in one directory shared by every user of the host, `<tmp>/pgvdrill-ports`
(mode 1777, like /tmp: whoever creates it sets that mode explicitly, umask or not, and
root repairs a mode another version left). It is used only when it is a real directory
(not a symlink) owned by root or the caller, or by another user with mode 1777 when the
caller is not root; lock files are opened relative to it without following symlinks and
never written, so a planted link or hard link cannot make pgvdrill touch another file.
When it cannot be used, a private `<tmp>/pgvdrill-ports-<uid>` (0700) is (the locks then
no longer coordinate with other users; the bind check still catches a port in use).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import stat
import sys
import tempfile
from pathlib import Path
from typing import IO

from pgvdrill.errors import ConfigError

LOCK_DIR = Path(tempfile.gettempdir()) / "pgvdrill-ports"
SHARED_MODE = 0o1777


class PortLease:
    """A port nobody else in pgvdrill holds, until `release()`."""

    def __init__(self, port: int, lock: IO[str]) -> None:
        self.port = port
        self._lock = lock

    def release(self) -> None:
        if not self._lock.closed:
            self._lock.close()


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def lease(port: int | None = None) -> PortLease:
    """Lease `port` (error if taken) or a free ephemeral one."""
    directory, where = lock_dir()
    try:
        for _ in range(50):
            candidate = port or _ephemeral()
            lock = _open_lock(directory, where, candidate)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                if port is not None:
                    break
                continue
            if port_is_free(candidate):
                return PortLease(candidate, lock)
            lock.close()
            if port is not None:
                break
    finally:
        os.close(directory)
    raise ConfigError(
        f"port {port} on 127.0.0.1 is already in use" if port else "no free port on 127.0.0.1",
        "choose another port or stop the program listening there (ss -ltnp)",
    )


def _ephemeral() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lock_dir() -> tuple[int, Path]:
    """A file descriptor of the lock directory, and its path (see the module docstring)."""
    try:
        return _shared_dir(LOCK_DIR), LOCK_DIR
    except _Unusable as exc:
        private = LOCK_DIR.with_name(f"{LOCK_DIR.name}-{os.geteuid()}")
        print(f"pgvdrill: warning: not using the shared port-lock directory {LOCK_DIR}: "
              f"{exc}; using {private}", file=sys.stderr)
        return _private_dir(private), private


class _Unusable(Exception):
    """The shared lock directory cannot be used safely."""


def _open_dir(path: Path) -> tuple[int, os.stat_result]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    return fd, os.fstat(fd)


def _shared_dir(path: Path) -> int:
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)  # its mode is set below, on the opened directory
    try:
        fd, st = _open_dir(path)
    except OSError as exc:  # a symlink (ELOOP), not a directory, unreadable
        raise _Unusable(f"it is not a directory pgvdrill can open ({exc.strerror})") from None
    mode, me = stat.S_IMODE(st.st_mode), os.geteuid()
    if st.st_uid == me and mode != SHARED_MODE:
        os.fchmod(fd, SHARED_MODE)  # new, or 1755 left by a version that trusted the umask
        mode = SHARED_MODE
    trusted_owner = st.st_uid in (0, me) or (me != 0 and mode == SHARED_MODE)
    if trusted_owner and mode == SHARED_MODE:
        return fd
    os.close(fd)
    raise _Unusable(f"owner uid {st.st_uid}, mode {mode:04o} (it must be owned by root, "
                    f"mode {SHARED_MODE:04o}: as root, rm -r {path} or chmod "
                    f"{SHARED_MODE:o} {path})")


def _private_dir(path: Path) -> int:
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        fd, st = _open_dir(path)
    except OSError as exc:
        raise ConfigError(f"cannot use the port-lock directory {path}: {exc.strerror}",
                          f"remove {path} (it must be a directory of your own)") from None
    if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o022:
        os.close(fd)
        raise ConfigError(f"the port-lock directory {path} is not yours alone (owner uid "
                          f"{st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o})",
                          f"remove {path}: pgvdrill creates it again, mode 0700")
    return fd


def _open_lock(directory: int, where: Path, port: int) -> IO[str]:
    """The lock file of `port` in `directory`, opened read-only (flock needs no more) and
    never through a symlink; readable by everyone (other users lease the same port later)."""
    name = f"{port}.lock"
    try:
        fd = os.open(name, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                     dir_fd=directory)
    except OSError as exc:  # ELOOP: a symlink; EACCES: unreadable
        raise ConfigError(f"cannot open the port lock {where / name}: {exc.strerror} "
                          "(planted by someone?)", f"remove it: rm {where / name}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        os.close(fd)
        raise ConfigError(f"the port lock {where / name} is not a plain lock file (a hard "
                          "link or a special file: planted by someone)",
                          f"remove it: rm {where / name}")
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != 0o644:
        os.fchmod(fd, 0o644)
    return os.fdopen(fd, "r")
