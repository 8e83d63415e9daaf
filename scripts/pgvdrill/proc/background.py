"""Long-running external programs (pg_receivewal): the one place besides `runner` that
starts a process. argv only, output to a log file, the command logged; like `runner`'s, it
runs in a process group of its own (`procgroup`), and stopping it ends the whole group."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

from pgvdrill.errors import DrillError, ToolError
from pgvdrill.proc import group as procgroup
from pgvdrill.proc.runner import which

log = logging.getLogger("pgvdrill.proc.background")


class Process:
    """A program running in the background until `stop()`; a context manager."""

    def __init__(self, argv: Sequence[str | os.PathLike[str]], logfile: Path, *,
                 env: Mapping[str, str | None] | None = None) -> None:
        self.argv = [os.fspath(a) for a in argv]
        self.logfile = logfile
        self.env = {k: v for k, v in {**os.environ, **(env or {})}.items()
                    if v is not None}  # None: removed from the environment
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise DrillError(f"{self.argv[0]} was never started")
        return self._popen.pid

    def start(self) -> Self:
        which(self.argv[0])
        log.info("start: %s (log %s)", " ".join(self.argv), self.logfile)
        with self.logfile.open("ab") as out:
            self._popen = procgroup.spawn(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, env=self.env, cwd=None,
                                          user=None)
        return self

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def check_running(self) -> None:
        """Raise `ToolError` with the log's tail if the program has exited."""
        if self._popen is not None and self._popen.poll() is not None:
            raise ToolError(self.argv, self._popen.returncode, self.log_tail())

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM to its process group, SIGKILL after `timeout`; the exit code (None if
        never started). Signal deaths are negative, as in `subprocess`."""
        if self._popen is None:
            return None
        if self._popen.poll() is None:
            log.info("stop: pid %d (%s)", self._popen.pid, self.argv[0])
        procgroup.end(self._popen, grace=timeout)
        return self._popen.returncode

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
