"""How errors are classified, and that a cleanup failure never replaces the first error
(issue 13, class 6; the drills with real servers are in drills/test_faults_errors.py)."""

from __future__ import annotations

import errno
import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pgvdrill import report
from pgvdrill.cli import truthful
from pgvdrill.errors import (
    BackupError,
    EnvironmentFailure,
    ToolError,
    VerificationError,
    cleanup,
    environment_cause,
)
from pgvdrill.gzipped import gzip_problem
from pgvdrill.targets import load_targets


@pytest.mark.parametrize("exc", [
    OSError(errno.ENOSPC, "No space left on device", "/restore/base/1/2608"),
    OSError(errno.EACCES, "Permission denied", "/repo/wal"),
    OSError(errno.EROFS, "Read-only file system", "/restore"),
    ToolError(["pg_restore"], 1, "pg_restore: error: could not write to file: No space "
                                 "left on device"),
    ToolError(["pg_dump"], 1, "server closed the connection unexpectedly"),
])
def test_fault_the_machine_failing_is_an_environment_failure(exc: Exception) -> None:
    broken = BackupError("cannot extract base.tar", "do not restore from this backup")
    broken.__cause__ = exc

    failure = truthful(broken, "restore")

    assert isinstance(failure, EnvironmentFailure) and failure.exit_code == 8
    assert environment_cause(exc) is not None and environment_cause(exc) in failure.message
    assert "do not restore" not in str(failure)


@pytest.mark.parametrize("exc", [
    BackupError("backup x.dump cannot be read: pg_restore: error: unexpected end of file"),
    VerificationError(["table public.documents has 9 rows in the target, 10 in the source"]),
    OSError(errno.ENOENT, "No such file or directory", "/repo/logical/x"),
])
def test_fault_real_damage_keeps_its_own_class(exc: Exception) -> None:
    assert environment_cause(exc) is None
    assert truthful(exc, "verify") is exc


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
    assert environment_cause(ToolError(["pg_dump"], 1, 'connection to server at "db" '
                                       'failed: FATAL:  password authentication failed')) is None
    assert environment_cause(ToolError(["pg_restore"], 1, "ERROR:  permission denied for "
                                       "table documents")) is None
