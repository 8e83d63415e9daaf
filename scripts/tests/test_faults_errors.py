"""How errors are classified, and that a cleanup failure never replaces the first error
(issue 13, class 6; the drills with real servers are in drills/test_faults_errors.py)."""

from __future__ import annotations

import errno
import gzip
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from pgvdrill.cli.main import truthful
from pgvdrill.errors import (
    BackupError,
    ConfigError,
    EnvironmentFailure,
    ToolError,
    VerificationError,
    cleanup,
    environment_cause,
)
from pgvdrill.files.gzipped import gzip_problem
from pgvdrill.policy.targets import load_targets
from pgvdrill.report import run_dir as report
from pgvdrill.verify.compare import index_requirement


@pytest.mark.parametrize("exc", [
    OSError(errno.ENOSPC, "No space left on device", "/restore/base/1/2608"),
    OSError(errno.EACCES, "Permission denied", "/repo/wal"),
    OSError(errno.EROFS, "Read-only file system", "/restore"),
    psycopg.OperationalError("consuming input failed: server closed the connection "
                             "unexpectedly"),
    psycopg.errors.lookup("57P01")("terminating connection due to administrator command"),
])
def test_fault_the_machine_failing_that_nothing_caught_is_an_environment_failure(
        exc: Exception) -> None:
    failure = truthful(exc, "restore")

    assert isinstance(failure, EnvironmentFailure) and failure.exit_code == 8
    assert "the machine failed, not the backup" in str(failure)


@pytest.mark.parametrize("exc", [
    ToolError(["pg_restore"], 1, "pg_restore: error: could not write to file: No space "
                                 "left on device"),
    ToolError(["/usr/lib/postgresql/18/bin/pg_dump"], 1, "pg_dump: error: query failed: "
              "server closed the connection unexpectedly\n\tThis probably means ..."),
    ToolError(["cp", "-a"], 1, "cp: error writing '/w/data/base/1/1259': No space left on "
                               "device"),
    EnvironmentFailure("cannot extract base.tar into /restore: No space left on device"),
])
def test_fault_a_tool_saying_the_machine_failed_is_named(exc: Exception) -> None:
    broken = ToolError(["pg_ctl", "start"], 1, "")
    broken.__cause__ = exc  # a tool's failure caused by another: the chain is followed

    assert environment_cause(exc) is not None
    assert environment_cause(broken) == environment_cause(exc)


@pytest.mark.parametrize("name", ["No space left on device", "Permission denied",
                                  "x: Connection refused", "could not connect"])
def test_fault_a_broken_backup_stays_broken_whatever_its_text_or_cause_says(
        name: str) -> None:
    """E1: a file name planted in a backup, or one machine-like line among mismatches, never
    makes a broken backup the machine's fault; nor does a cause below it (the point where
    the machine failed raises EnvironmentFailure itself)."""
    broken = BackupError(f"backup x does not match its catalog entry:\n  - x: file {name} "
                         "is not in the catalog\n  - x: file base.tar changed", "do not "
                         "restore from it")
    broken.__cause__ = OSError(errno.ENOSPC, "No space left on device", name)
    failed = VerificationError([f"table public.\"{name}\" has 9 rows, the source 10"])

    for exc in (broken, failed):
        assert environment_cause(exc) is None
        assert truthful(exc, "restore") is exc


@pytest.mark.parametrize("stderr", [
    # a dump's function RAISEs any text; the SQL pg_restore echoes is the dump's own
    "pg_restore: error: COPY failed for table \"t\": ERROR:  x: No space left on device",
    "pg_restore: detail: Command was: COMMENT ON TABLE t IS 'a: Permission denied",
    # a name with a newline: its second half is a line of its own
    'pg_verifybackup: error: "a\nb: No space left on device',
    # another program's text
    "tar: x: Cannot open: Permission denied",
])
def test_fault_text_a_tool_quotes_is_not_the_machine(stderr: str) -> None:
    assert environment_cause(ToolError(["pg_restore"], 1, stderr)) is None


@pytest.mark.parametrize("exc", [
    BackupError("backup x.dump cannot be read: pg_restore: error: unexpected end of file"),
    VerificationError(["table public.documents has 9 rows in the target, 10 in the source"]),
    OSError(errno.ENOENT, "No such file or directory", "/repo/logical/x"),
    psycopg.OperationalError('connection failed: connection to server at "127.0.0.1", port '
                             '5432 failed: FATAL:  password authentication failed for user '
                             '"x"'),
    psycopg.errors.lookup("28P01")("password authentication failed"),
])
def test_fault_real_damage_keeps_its_own_class(exc: Exception) -> None:
    assert environment_cause(exc) is None
    assert truthful(exc, "verify") is exc


@pytest.mark.parametrize(("source", "samples", "required"), [
    (None, 200, 0.9),            # the source's figure unknown: the threshold
    (0.97, 200, 0.81),           # min(0.9, 0.97) - 3 sd (0.09)
    (0.43, 200, 0.2815),         # 0.43 - 3 sd (0.1485)
    (0.07, 200, 0.0175),         # E2: the margin (0.077) is wider than the figure
    (0.05, 200, 0.0125),
    (0.07, 20_000, 0.02),        # enough samples: 0.07 - the tolerance
])
def test_fault_index_requirement_is_never_zero_however_low_the_source(
        source: float | None, samples: int, required: float) -> None:
    assert index_requirement(0.9, source, samples, 0.05)[0] == pytest.approx(required)
    assert index_requirement(0.9, source, samples, 0.05)[0] > 0


def test_fault_a_cleanup_failure_is_a_note_on_the_first_error() -> None:
    def stop() -> None:
        raise ToolError(["pg_ctl", "stop"], 1, "pg_ctl: server does not shut down")

    with pytest.raises(BackupError) as raised, cleanup(stop, "server dr-logical"):
        raise BackupError("restore failed: server closed the connection unexpectedly")

    text = str(raised.value)
    assert text.startswith("restore failed")
    assert "note: cleaning up server dr-logical afterwards failed too: ToolError: pg_ctl " \
           "stop exited with code 1" in text


def test_a_cleanup_failure_after_success_is_raised() -> None:
    def stop() -> None:
        raise ToolError(["pg_ctl", "stop"], 1, "")

    with pytest.raises(ToolError), cleanup(stop, "server x"):
        pass


def test_fault_a_run_failed_only_by_the_machine_exits_8(tmp_path: Path) -> None:
    def drill(name: str, environment: str | None) -> dict[str, object]:
        return {"drill": name, "kind": "logical", "ok": False, "error": "x",
                "problems": ["x"], "evidence": {},
                **({"environment": environment} if environment else {})}

    said: list[str] = []
    finish = [report.finish("test", report.new_run_dir(tmp_path, rid), datetime.now(UTC),
                            drills, load_targets(None, None), "fail", said.append)
              for rid, drills in (("machine", [drill("a", "No space left on device")]),
                                  ("both", [drill("a", "No space left on device"),
                                            drill("b", None)]))]

    assert finish == [8, 1]
    assert "(1 by the machine, not the backup)" in said[0]
    assert (tmp_path / "machine" / "report.json").is_file()


def test_fault_gzip_cut_before_its_trailer_is_named(tmp_path: Path) -> None:
    path = tmp_path / "base.tar.gz"
    path.write_bytes(gzip.compress(b"x" * 100_000) + gzip.compress(b"second member"))
    assert gzip_problem(path) is None
    whole = path.read_bytes()
    path.write_bytes(whole[:-8])
    assert "not an intact gzip file" in (gzip_problem(path) or "")
    corrupt = bytearray(whole)
    corrupt[-6] ^= 0xFF  # the second member's CRC-32
    path.write_bytes(bytes(corrupt))
    assert "CRC check failed" in (gzip_problem(path) or "")


def test_a_refused_password_or_grant_is_not_the_machine() -> None:
    assert environment_cause(ToolError(["pg_dump"], 1, 'pg_dump: error: connection to '
                                       'server at "db" failed: FATAL:  password '
                                       'authentication failed')) is None
    assert environment_cause(ToolError(["pg_restore"], 1, "pg_restore: error: ERROR:  "
                                       "permission denied for table documents")) is None


def test_fault_the_chain_followed_is_the_one_python_prints() -> None:
    """A cause named with `from exc` is followed (a ConfigError "cannot connect to source"
    to libpq's "Connection refused"); a context hidden with `from None` is not: it can be
    any exception that was being handled somewhere up the stack."""
    refused = psycopg.OperationalError('connection failed: connection to server at '
                                       '"127.0.0.1", port 1 failed: Connection refused')
    named = ConfigError("cannot connect to source 127.0.0.1:1/vector_db")
    named.__cause__ = refused
    hidden = ConfigError("unknown mode x")
    hidden.__context__ = OSError(errno.EACCES, "Permission denied", "/repo/.lock")
    hidden.__suppress_context__ = True

    assert "Connection refused" in (environment_cause(named) or "")
    assert environment_cause(hidden) is None


def test_walcmd_still_imports_the_standard_library_only() -> None:
    """errors.py is one of the files walcmd's server-user copy holds (wal_commands.WALCMD_FILES):
    classifying psycopg errors must not import psycopg there (restore_command would fail on
    a system python3 without it)."""
    probe = "import sys, pgvdrill.wal.walcmd; print(sorted(m for m in sys.modules " \
            "if m.split('.')[0] in ('psycopg', 'numpy')))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
