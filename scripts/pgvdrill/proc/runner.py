"""The one place that starts external programs.

argv lists only (never a shell), a timeout, the command logged, output captured to
temporary files (pipes can hang when a server daemonises and inherits them), and on
failure one exception, `ToolError`, with the exit code and the tail of stderr.
Passwords never appear here: libpq reads them from PGPASSFILE.

Each program runs in a process group of its own (`procgroup`): on a timeout, an
interrupt or any exception the whole group is ended (SIGTERM, then SIGKILL), and what is
left of a group after its leader exits (a daemon's helper, pg_basebackup's streaming
child) is ended too. Long-running tools (pg_dump, pg_restore, pg_basebackup, cp -a of a
data directory) run under the configured tool timeout, `[limits] tool_timeout`
(`set_tool_timeout`; 23 h by default, as long as the scheduled units may run); short
probes pass their own.

Long client-tool runs (pg_dump --verbose, pg_basebackup --progress) can show their
progress: `tee_stderr` copies stderr to our own stderr as it comes, through a pipe (so
only for programs that do not daemonise), while still capturing it for errors.
"""

from __future__ import annotations

import codecs
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pgvdrill.errors import ConfigError, ToolError
from pgvdrill.proc import group as procgroup

log = logging.getLogger("pgvdrill.proc.runner")

DEFAULT_TOOL_TIMEOUT = 23 * 3600.0  # the scheduled units' TimeoutStartSec=23h
MAX_TOOL_TIMEOUT = 31 * 86400.0
TEE_DRAIN = 5.0  # seconds to wait for the rest of a tee'd stderr once the group ended


@dataclass(frozen=True)
class ToolTimeout:
    """How long a long-running tool may run, and where that was set (for the message)."""

    seconds: float = DEFAULT_TOOL_TIMEOUT
    origin: str = "the default of [limits] tool_timeout"


_tool_timeout = [ToolTimeout()]


def set_tool_timeout(seconds: float, origin: str) -> None:
    """Long-running tools (those run without a `timeout` of their own) may run `seconds`;
    `origin` names the setting, for the message of a timeout."""
    _tool_timeout[0] = ToolTimeout(seconds, origin)


def tool_timeout() -> ToolTimeout:
    return _tool_timeout[0]


@dataclass(frozen=True)
class Result:
    """What a finished program left behind."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


@dataclass(frozen=True)
class ToolCall:
    """One run of a PostgreSQL client tool, as every `run_tool` takes it: the program's
    name and arguments, and `run`'s settings (`dbname`: the database it connects to, for
    tools that connect through the environment; `env` is added to the connection's)."""

    tool: str
    args: Sequence[str | os.PathLike[str]] = ()
    timeout: float | None = None
    dbname: str | None = None
    stdout: str | os.PathLike[str] | None = None
    check: bool = True
    env: Mapping[str, str] | None = None
    hint: str = ""

    def run(self, argv: Sequence[str | os.PathLike[str]], env: Mapping[str, str | None]
            ) -> Result:
        """`run` `argv` (the tool's path or the command that reaches it, then the call's
        arguments) with `env` and the call's own variables."""
        return run([*argv, *self.args], timeout=self.timeout, stdout=self.stdout,
                   env={**env, **(self.env or {})}, check=self.check, hint=self.hint)


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    timeout: float | None = None,
    env: Mapping[str, str | None] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    user: str | None = None,
    stdin: str | os.PathLike[str] | None = None,
    stdout: str | os.PathLike[str] | None = None,
    check: bool = True,
    hint: str = "",
    tee_stderr: bool = False,
    umask: int = -1,
) -> Result:
    """Run `argv`, return its `Result`; raise `ToolError` on failure when `check`.

    `timeout` in seconds (None: the configured tool timeout, for long-running tools).
    `env` entries are added to the current environment (None: removed from it). `user`
    runs the program as that OS user with its own groups (pgvdrill runs servers
    unprivileged). `stdin` is a file to read from, `stdout` a file to write standard
    output to instead of capturing it. `tee_stderr` also writes the program's stderr to
    ours as it arrives (progress of long runs). `umask` (e.g. 0o077: what the program
    creates is private) applies to the program only.
    """
    args = [os.fspath(a) for a in argv]
    if not args:
        raise ValueError("empty argv")
    if shutil.which(args[0]) is None:
        raise ConfigError(
            f"program not found or not executable: {args[0]}",
            "install it or point pgvdrill at a PostgreSQL bin directory (--pg-bin)",
        )
    limit = ToolTimeout(timeout, "") if timeout is not None else tool_timeout()
    full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    log.info("run: %s", " ".join(args))
    started = time.monotonic()
    with tempfile.TemporaryFile("w+b") as err, tempfile.TemporaryFile("w+b") as out:
        out_target = open(stdout, "wb") if stdout is not None else out  # noqa: SIM115
        in_source = open(stdin, "rb") if stdin is not None else subprocess.DEVNULL  # noqa: SIM115
        copier: threading.Thread | None = None
        proc: subprocess.Popen[bytes] | None = None
        try:
            proc = procgroup.spawn(
                args, stdin=in_source, stdout=out_target,
                stderr=subprocess.PIPE if tee_stderr else err, env=full_env, cwd=cwd,
                user=user, umask=umask)
            if proc.stderr is not None:
                copier = threading.Thread(target=_tee, args=(proc.stderr, err), daemon=True)
                copier.start()
            returncode = _wait(proc, limit.seconds)
        finally:
            if proc is not None and proc.pid in procgroup.live():  # raised before _wait
                procgroup.end(proc)
            if copier is not None:
                copier.join(TEE_DRAIN)  # a process outside the group may hold the pipe
            if stdout is not None:
                out_target.close()
            if stdin is not None and not isinstance(in_source, int):
                in_source.close()
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        out_text = out.read().decode("utf-8", "replace")
        err_text = err.read().decode("utf-8", "replace")
    log.debug("done in %.2fs: %s (exit %s)", seconds, args[0], returncode)
    if returncode is None:
        raise ToolError(args, None, err_text, _timeout_hint(hint, limit))
    if check and returncode != 0:
        raise ToolError(args, returncode, err_text, hint)
    return Result(args, returncode, out_text, err_text, seconds)


def _timeout_hint(hint: str, limit: ToolTimeout) -> str:
    said = f"it ran longer than {limit.seconds:.0f}s and was stopped (its whole process group)"
    if limit.origin:
        said += (f", the limit for long-running tools set by {limit.origin}; if it needs "
                 "longer, raise [limits] tool_timeout (seconds) in the configuration")
    return f"{hint}; {said}" if hint else said


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The leader's exit code once its whole group is gone, or None after ending a group
    whose leader ran longer than `timeout`. Interrupted (a signal, any exception), the
    group is ended before the exception goes on."""
    try:
        returncode: int | None = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        procgroup.end(proc)
        return None
    except BaseException:
        procgroup.end(proc)
        raise
    procgroup.end(proc)  # what the leader left behind in its group
    return returncode


def _tee(pipe: IO[bytes], capture: IO[bytes]) -> None:
    """Copy `pipe` into `capture` and to our stderr, chunk by chunk as it arrives (progress
    lines that end in a carriage return show up at once). Reads to the end whatever
    fails, so the program never blocks on a full pipe."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    targets = {"capture": True, "stderr": True}
    with pipe:
        while chunk := os.read(pipe.fileno(), 65536):
            if targets["capture"]:
                try:
                    capture.write(chunk)
                except (OSError, ValueError):  # run() gave up waiting and closed it
                    targets["capture"] = False
            if targets["stderr"]:
                try:
                    sys.stderr.write(decoder.decode(chunk))
                    sys.stderr.flush()
                except (OSError, ValueError):  # our own stderr is gone
                    targets["stderr"] = False


def which(name: str, bindir: Path | None = None) -> Path:
    """Find `name` in `bindir` (when given) or on PATH, or raise `ConfigError`."""
    if bindir is not None:
        path = bindir / name
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise ConfigError(
            f"{name} not found in {bindir}",
            "point --pg-bin at the bin directory of a PostgreSQL installation",
        )
    found = shutil.which(name)
    if found is None:
        raise ConfigError(f"{name} not found on PATH", f"install {name} or add it to PATH")
    return Path(found)
