"""Free TCP ports on 127.0.0.1, leased with a file lock so parallel workers never share one."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
from pathlib import Path
from typing import IO

from pgvdrill.errors import ConfigError

LOCK_DIR = Path(tempfile.gettempdir()) / "pgvdrill-ports"


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
    LOCK_DIR.mkdir(mode=0o1777, exist_ok=True)
    for _ in range(50):
        candidate = port or _ephemeral()
        lock = open(LOCK_DIR / f"{candidate}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            if port is not None:
                break
            continue
        if port_is_free(candidate):
            with contextlib.suppress(PermissionError):  # other users may lease it later
                os.chmod(lock.name, 0o666)  # noqa: S103
            return PortLease(candidate, lock)
        lock.close()
        if port is not None:
            break
    raise ConfigError(
        f"port {port} on 127.0.0.1 is already in use" if port else "no free port on 127.0.0.1",
        "choose another port or stop the program listening there (ss -ltnp)",
    )


def _ephemeral() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
