"""The one place that starts external programs.

argv lists only (never a shell), a timeout, the command logged, output captured to
temporary files (pipes can hang when a server daemonises and inherits them), and on
failure one exception, `ToolError`, with the exit code and the tail of stderr.
Passwords never appear here: libpq reads them from PGPASSFILE.

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

log = logging.getLogger("pgvdrill.runner")

DEFAULT_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Result:
    """What a finished program left behind."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str | None] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    user: str | None = None,
    stdin: str | os.PathLike[str] | None = None,
    stdout: str | os.PathLike[str] | None = None,
    check: bool = True,
    hint: str = "",
    tee_stderr: bool = False,
) -> Result:
    """Run `argv`, return its `Result`; raise `ToolError` on failure when `check`.

    `env` entries are added to the current environment (None: removed from it). `user`
    runs the program as that OS user (pgvdrill runs servers unprivileged). `stdin` is a
    file to read from, `stdout` a file to write standard output to instead of capturing
    it. `tee_stderr` also writes the program's stderr to ours as it arrives (progress of
    long runs).
    """
    args = [os.fspath(a) for a in argv]
    if not args:
        raise ValueError("empty argv")
    if shutil.which(args[0]) is None:
        raise ConfigError(
            f"program not found or not executable: {args[0]}",
            "install it or point pgvdrill at a PostgreSQL bin directory (--pg-bin)",
        )
    full_env = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    log.info("run: %s", " ".join(args))
    started = time.monotonic()
    with tempfile.TemporaryFile("w+b") as err, tempfile.TemporaryFile("w+b") as out:
        out_target = open(stdout, "wb") if stdout is not None else out  # noqa: SIM115
        in_source = open(stdin, "rb") if stdin is not None else subprocess.DEVNULL  # noqa: SIM115
        copier: threading.Thread | None = None
        try:
            proc = subprocess.Popen(
                args,
                stdin=in_source,
                stdout=out_target,
                stderr=subprocess.PIPE if tee_stderr else err,
                env=full_env,
                cwd=cwd,
                user=user,
            )
            if proc.stderr is not None:
                copier = threading.Thread(target=_tee, args=(proc.stderr, err), daemon=True)
                copier.start()
            returncode: int | None = _wait(proc, timeout)
        finally:
            if copier is not None:
                copier.join()
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
        raise ToolError(args, None, err_text, hint or f"it ran longer than {timeout:.0f}s")
    if check and returncode != 0:
        raise ToolError(args, returncode, err_text, hint)
    return Result(args, returncode, out_text, err_text, seconds)


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The exit code, or None after killing a program that ran longer than `timeout`."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None
    except BaseException:  # interrupted: do not leave the program running
        proc.kill()
        proc.wait()
        raise


def _tee(pipe: IO[bytes], capture: IO[bytes]) -> None:
    """Copy `pipe` into `capture` and to our stderr, chunk by chunk as it arrives (progress
    lines that end in a carriage return show up at once)."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    with pipe:
        while chunk := os.read(pipe.fileno(), 65536):
            capture.write(chunk)
            sys.stderr.write(decoder.decode(chunk))
            sys.stderr.flush()


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
