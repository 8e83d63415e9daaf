"""The subprocess runner: argv only, captured output, one exception type."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pgvdrill.errors import ConfigError, ToolError
from pgvdrill.proc import runner


def test_captures_stdout_and_stderr() -> None:
    result = runner.run(["sh", "-c", "echo out; echo err >&2"])
    assert (result.returncode, result.stdout, result.stderr) == (0, "out\n", "err\n")


def test_failure_raises_tool_error_with_exit_code_and_stderr_tail() -> None:
    script = "for i in $(seq 1 40); do echo line$i >&2; done; exit 3"
    with pytest.raises(ToolError) as caught:
        runner.run(["sh", "-c", script], hint="do this")
    error = caught.value
    assert error.returncode == 3
    assert "exited with code 3" in str(error)
    assert "line40" in str(error) and "line1\n" not in str(error)  # only the tail
    assert str(error).endswith("hint: do this")


def test_check_false_returns_the_failure() -> None:
    assert runner.run(["sh", "-c", "exit 5"], check=False).returncode == 5


def test_timeout_is_a_tool_error() -> None:
    with pytest.raises(ToolError, match="timed out"):
        runner.run(["sleep", "5"], timeout=0.2)


def test_missing_program_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not found"):
        runner.run(["/nonexistent/pg_dump", "--version"])


def test_stdin_and_stdout_files(tmp_path: Path) -> None:
    (tmp_path / "in").write_text("hello\n")
    runner.run(["cat"], stdin=tmp_path / "in", stdout=tmp_path / "out")
    assert (tmp_path / "out").read_text() == "hello\n"


def test_env_is_added_and_command_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "pgvdrill.proc.runner")
    result = runner.run(["sh", "-c", "echo $PGVDRILL_X"], env={"PGVDRILL_X": "42"})
    assert result.stdout == "42\n"
    assert "sh -c echo $PGVDRILL_X" in caplog.text


def test_which_names_the_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"pg_dump not found in {tmp_path}"):
        runner.which("pg_dump", tmp_path)
