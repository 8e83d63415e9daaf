"""The exceptions pgvdrill raises: every one says what failed and what to do."""

from __future__ import annotations


class DrillError(Exception):
    """A failure the user can act on: `hint` says what to do about it."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


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
