"""Hints are pasted into a shell: a path holding a space or a shell character (an operator's
"/srv/pg backups", a mount named by a date with `$`) must reach the command as one word."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pgvdrill.ops.verify_repo import timeline_findings
from pgvdrill.repository import Repository

TWO = b"1\t0/5000060\tno recovery target specified\n"


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
