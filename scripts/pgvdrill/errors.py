"""The exceptions pgvdrill raises: every one says what failed and what to do."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg


class DrillError(Exception):
    """A failure the user can act on: `hint` says what to do about it."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.message}\n  hint: {self.hint}" if self.hint else self.message
        return "\n".join([text, *(f"  note: {n}" for n in getattr(self, "__notes__", ()))])


@contextmanager
def cleanup(action: Callable[[], object], what: str) -> Iterator[None]:
    """Run `action` (`what` it cleans up) after the block, also when the block failed; a
    failure of `action` then becomes a note on the block's exception, never replaces it."""
    try:
        yield
    except BaseException as first:
        clean_after(first, action, what)
        raise
    action()


def clean_after(first: BaseException | None, action: Callable[[], object], what: str
                ) -> None:
    """Run `action`; while `first` is being handled, a failure of `action` is added to it
    as a note (the caller goes on raising `first`) instead of replacing it."""
    if first is None:
        action()
        return
    try:
        action()
    except Exception as late:
        first.add_note(f"cleaning up {what} afterwards failed too: "
                       f"{type(late).__name__}: {late}")


class ConfigError(DrillError):
    """Bad input: a missing binary, an unusable directory, a bad option value."""


class ToolError(DrillError):
    """An external program failed (non-zero exit or timeout)."""

    exit_code = 3

    def __init__(
        self, argv: list[str], returncode: int | None, stderr: str, hint: str = ""
    ) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
        status = "timed out" if returncode is None else f"exited with code {returncode}"
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        message = f"{' '.join(argv)} {status}"
        if tail:
            message += "\n" + "\n".join("  | " + line for line in tail.splitlines())
        super().__init__(message, hint)


class BackupError(DrillError):
    """A backup artifact is missing, empty, truncated or corrupt."""

    exit_code = 4


class RestoreError(DrillError):
    """A restore cannot succeed or failed; the hint says what the target or dump lacks."""

    exit_code = 5


class EnvironmentFailure(DrillError):
    """The machine failed, not the backup or the restored data: a full disk, a permission,
    a read-only file system, a server that died or cannot be reached."""

    exit_code = 8


ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM,
                                errno.EROFS})
# how a tool reports the machine failing: the last words of a line it wrote itself (a C
# tool's strerror, libpq's connection messages); a name quoted in a line never ends it
TOOL_ENDINGS = (
    ": No space left on device", ": Disk quota exceeded", ": Permission denied",
    ": Read-only file system", ": Connection refused", ": Connection timed out",
    ": No route to host", "timeout expired", "server closed the connection unexpectedly",
    "terminating connection due to administrator command",
    "the database system is shutting down",
)  # case matters: SQL's "permission denied for table" is a grant, not the machine
# a server's answer that says it went away or has no room (class 08: the connection,
# 57P0x: shut down or not yet up, 53100: disk full, 58030: an I/O error)
ENVIRONMENT_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53100", "58030")
ENVIRONMENT_HINT = ("the machine failed, not the backup: free space, fix the permission or "
                    "start the server, then run the command again")


def environment_cause(exc: BaseException) -> str | None:
    """What in the machine made `exc` happen, from structured causes only: an
    EnvironmentFailure, an OSError's errno, a psycopg connection loss (its SQLSTATE, or
    libpq's own failure to connect), a tool's stderr line that ends as the machine failing.
    Follows `exc`'s causes (a ConfigError "cannot connect to source" to libpq's "Connection
    refused") but stops at a judgement of the data (JUDGEMENTS): a broken backup, a failed
    verification or a restore that cannot succeed stays what it is, whatever its text or
    its causes mention (its text can hold repository names; the point where the machine
    failed raises EnvironmentFailure itself). None when the machine did not fail."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        cause = _own_cause(current)
        if cause is not None or isinstance(current, JUDGEMENTS):
            return cause
        current = current.__cause__ or (None if current.__suppress_context__
                                        else current.__context__)
    return None


def _own_cause(exc: BaseException) -> str | None:
    if isinstance(exc, EnvironmentFailure):
        return exc.message
    if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    if isinstance(exc, ToolError):
        return next((line.strip() for line in exc.stderr.splitlines()
                     if _tool_says_machine(exc.argv, line)), None)
    import psycopg  # here: walcmd, run by the server's OS user, has the standard library only

    if isinstance(exc, psycopg.OperationalError) and _connection_lost(exc):
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return None


def _tool_says_machine(argv: list[str], line: str) -> bool:
    """A line the tool itself wrote (`prog: ...`) ending as the machine failing. Not a
    server's ERROR (a function in a dump can RAISE any text), nor the SQL a tool echoes
    ("Command was:", a dump's own text), nor a continuation line (a name with a newline)."""
    prog = PurePath(str(argv[0])).name if argv else ""
    return (bool(prog) and line.startswith(f"{prog}:") and "ERROR:" not in line
            and "Command was:" not in line and line.rstrip().endswith(TOOL_ENDINGS))


def _connection_lost(exc: psycopg.OperationalError) -> bool:
    """A server that went away, has no room, or cannot be reached; not one that refused a
    password, a role or a database (libpq gives no SQLSTATE for a failed connection: its
    message then says FATAL when the server answered)."""
    if exc.sqlstate is not None:
        return exc.sqlstate.startswith(ENVIRONMENT_SQLSTATES)
    text = str(exc)
    return "FATAL:" not in text or "the database system is" in text


def classified(exc: BaseException, doing: str, hint: str = ENVIRONMENT_HINT
               ) -> EnvironmentFailure | None:
    """`exc` as an `EnvironmentFailure` saying what was being done, when the machine caused
    it; None otherwise (the caller then reports it as what it is)."""
    cause = environment_cause(exc)
    if cause is None:
        return None
    if isinstance(exc, EnvironmentFailure):
        return exc
    failure = EnvironmentFailure(f"{doing}: {cause}", hint)
    failure.__cause__ = exc
    return failure


class VerificationError(DrillError):
    """A restored database differs from its source; `problems` names every difference."""

    exit_code = 1

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"verification failed ({len(problems)} problem(s)):\n{listed}",
            "the restored database does not match its source: the backup or restore is broken",
        )


# what pgvdrill found wrong with a backup, a restore or restored data: never reclassified
JUDGEMENTS = (BackupError, RestoreError, VerificationError)
