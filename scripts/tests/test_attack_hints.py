"""Hints are pasted into a shell: a path holding a space or a shell character (an operator's
"/srv/pg backups", a mount named by a date with `$`) must reach the command as one word."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from pgvdrill.ops.restore import _next_steps
from pgvdrill.ops.restore_datadir import make_safe
from pgvdrill.ops.verify_repo import timeline_findings
from pgvdrill.repository import Entry, Repository

TWO = b"1\t0/5000060\tno recovery target specified\n"
ENTRY = Entry(id="physical-1", kind="physical", started="2026-01-01T00:00:00+00:00",
              finished="2026-01-01T00:00:05+00:00", seconds=5.0, source={}, settings={},
              tools={}, files=[], start_lsn="0/1000028", end_lsn="0/3000100", timeline=1)


def test_the_set_aside_command_runs_as_printed_in_a_repository_with_spaces(
        tmp_path: Path) -> None:
    repo = Repository(tmp_path / "pg backups" / "repo $HOME;x")
    repo.wal.mkdir(parents=True)
    for name in ("000000010000000000000005", "000000010000000000000006",
                 "000000020000000000000005"):
        (repo.wal / name).write_bytes(b"")
    (repo.wal / "00000002.history").write_bytes(TWO)
    [problem] = timeline_findings(repo, 1, "its current WAL file").problems

    subprocess.run(["sh", "-c", problem[problem.index("mkdir -p"):]], check=True,
                   cwd=tmp_path)

    assert (repo.root / "set-aside" / "timeline-2" / "00000002.history").read_bytes() == TWO
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pg backups"]
    assert not timeline_findings(repo, 1, "its current WAL file").problems


def test_the_printed_start_command_is_one_word_per_argument_and_runs_nothing_else(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--pgdata with a space; a port in the backup's postgresql.conf that is not a number
    (the repository's writer made it `5499 $(touch pwned)`): pasted, it must not run."""
    pgdata = tmp_path / "restored copy"
    pgdata.mkdir()
    (pgdata / "postgresql.conf").write_text("port = '5499 $(touch pwned)'\n")
    safe = make_safe(pgdata, "physical-1", None)

    _next_steps(pgdata, ENTRY, None, "postgres", safe)

    line = next(line for line in capsys.readouterr().out.splitlines() if "pg_ctl" in line)
    argv = shlex.split(line[line.index("pg_ctl"):])
    assert argv[:3] == ["pg_ctl", "-D", str(pgdata)]
    assert "$(" not in line
