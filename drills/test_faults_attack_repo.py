"""Attacks on issue 13 class 1 (the repository is untrusted input): catalog entries that
pass the schema check but break a command later. Each test copies a repository made as
production makes it (fixtures.ops `archived_repo`), plants one thing as whoever can write
the repository would, runs pgvdrill as an operator does (the CLI) and asserts what issue
13 requires: one clear error naming the entry, nothing deleted, no traceback.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fixtures.cli import Cli
from fixtures.ops import ArchivedRepo
from fixtures.repository_cli import repository_cli
from fixtures.repository_copy import copy_repository, state

OLD_ID = "logical-20200101T000000Z"
FUTURE = "2030-01-01T00:00:00+00:00"


@pytest.fixture
def repo(archived_repo: ArchivedRepo, tmp_path: Path) -> Path:
    return copy_repository(archived_repo.repo, tmp_path / "repo")


@pytest.fixture
def run(pgvdrill_cli: Cli, tmp_path: Path, repo: Path) -> Cli:
    return repository_cli(pgvdrill_cli, tmp_path, repo)


def planted_copy(repo: Path, entry: ArchivedRepo, finished: str) -> None:
    """A second logical backup (a faithful copy of the real one) whose entry says it
    finished at `finished`: a valid ISO 8601 time with a zone, so it passes the schema."""
    original = entry.logical
    shutil.copytree(repo / "logical" / original.id, repo / "logical" / OLD_ID, symlinks=True)
    data = json.loads((repo / "catalog" / f"{original.id}.json").read_text())
    data.update(id=OLD_ID, started=finished, finished=finished)
    (repo / "catalog" / f"{OLD_ID}.json").write_text(json.dumps(data))


@pytest.mark.parametrize("finished", [
    "9999-12-20T00:00:00+00:00",  # its monthly copy would be kept until year 10000
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
])
@pytest.mark.parametrize("command", ["retention", "verify"])
def test_fault_attack_an_edge_of_time_finished_is_named_not_a_traceback(
        archived_repo: ArchivedRepo, repo: Path, run: Cli, finished: str, command: str
        ) -> None:
    """The schema takes any ISO 8601 time with a zone; retention's monthly rule then computes
    `finished` + monthly_months and `finished` in UTC, which overflow Python's datetime at
    the ends of its range: a planted entry crashes retention (exit 1, a traceback) instead
    of one clear error naming the entry, and nothing may be deleted."""
    planted_copy(repo, archived_repo, finished)
    before = state(repo)

    result = run(command, *(("--now", FUTURE) if command == "retention" else ()))

    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode in (0, 4), output
    if result.returncode == 4:
        assert OLD_ID in output, output
    if command == "retention":
        assert state(repo).keys() >= {k for k in before if not k.startswith(f"logical/{OLD_ID}")
                                      and OLD_ID not in k}
