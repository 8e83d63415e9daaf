"""The exceptions pgvdrill raises: every one says what failed and what to do."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from contextlib import contextmanager


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
ENVIRONMENT_MESSAGES = (
    "No space left on device", "Disk quota exceeded", "Permission denied",
    "Read-only file system", "could not connect", "Connection refused",
    "Connection timed out", "timeout expired", "No route to host",
    "server closed the connection", "terminating connection due to administrator command",
    "the database system is shutting down",
)  # case matters: SQL's "permission denied for table" is a grant, not the machine
ENVIRONMENT_HINT = ("the machine failed, not the backup: free space, fix the permission or "
                    "start the server, then run the command again")


def environment_cause(exc: BaseException) -> str | None:
    """What in the machine made `exc` happen (a full disk, a permission, a lost server),
    following its causes; None when it is not an environment failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, EnvironmentFailure):
            return current.message
        if isinstance(current, OSError) and current.errno in ENVIRONMENT_ERRNOS:
            where = f": {current.filename}" if current.filename else ""
            return f"{current.strerror or current}{where}"
        text = current.stderr if isinstance(current, ToolError) else str(current)
        for line in text.splitlines():
            if any(marker in line for marker in ENVIRONMENT_MESSAGES):
                return line.strip()
        current = current.__cause__ or current.__context__
    return None


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
