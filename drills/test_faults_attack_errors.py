"""Attacks on issue 13 class 6 (errors classified truthfully): a broken backup must never be
reported as "the machine failed, not the backup" (exit 8), whatever its files are called.
A copy of a repository made as production makes it (fixtures.ops `archived_repo`), one
file planted in a backup as whoever can write the repository would, and the pgvdrill
command as an operator runs it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from fixtures.cli import Cli
from fixtures.ops import ArchivedRepo


@pytest.fixture
def repo(archived_repo: ArchivedRepo, tmp_path: Path) -> Path:
    return Path(shutil.copytree(archived_repo.repo, tmp_path / "repo", symlinks=True))


@pytest.fixture
def run(pgvdrill_cli: Cli, tmp_path: Path, repo: Path) -> Cli:
    config = tmp_path / "pgvdrill.toml"
    config.write_text(f'[repository]\npath = "{repo}"\n')
    config.chmod(0o600)

    def command(name: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return pgvdrill_cli(*name.split(), "--config", config, *args, timeout=300)

    return command


@pytest.mark.parametrize("name", ["No space left on device", "Permission denied",
                                  "could not connect"])
@pytest.mark.parametrize("kind", ["logical", "physical"])
def test_fault_attack_a_file_name_in_a_broken_backup_does_not_make_it_the_machines_fault(
        archived_repo: ArchivedRepo, repo: Path, run: Cli, tmp_path: Path, name: str,
        kind: str) -> None:
    """errors.environment_cause looks for "Permission denied", "No space left on device",
    "could not connect"... in the text of a BackupError: a file planted in the backup with
    such a name makes `restore` call a backup that does not match its catalog entry "the
    machine failed, not the backup" (exit 8), and the hint says to run it again, when the
    truth is exit 4, "do not restore from it"."""
    entry = archived_repo.logical if kind == "logical" else archived_repo.physical
    (repo / kind / entry.id / name).write_text("planted\n")
    where = ("--target-dsn", "host=127.0.0.1 port=1 dbname=x") if kind == "logical" \
        else ("--pgdata", tmp_path / "restored")

    result = run(f"restore {kind}", "latest", *where)

    assert result.returncode == 4, (result.returncode, result.stderr)
    assert f"file {name} is not in the catalog" in result.stderr, result.stderr
    assert "the machine failed" not in result.stderr
