"""The repository lock's own rules, with real flock(2) locks on a temporary repository."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pgvdrill.repository import Repository, lock


def test_retention_gives_up_while_a_command_holds_the_lock(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repo").ensure()
    with lock.shared(repo), lock.shared(repo), pytest.raises(  # commands side by side
            lock.RepositoryBusy, match="retention deleted nothing") as caught, \
            lock.exclusive(repo):
        pytest.fail("retention got the lock while a command held it")
    assert caught.value.exit_code == 7
    with lock.exclusive(repo):  # free again
        pass


def test_a_command_waits_while_retention_deletes(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repo").ensure()
    entered = threading.Event()

    def command() -> None:
        with lock.shared(repo):
            entered.set()

    with lock.exclusive(repo):
        waiting = threading.Thread(target=command)
        waiting.start()
        time.sleep(0.3)
        assert not entered.is_set()
    waiting.join(timeout=10)
    assert entered.is_set()


def test_no_repository_or_no_lock_file_is_not_an_error(tmp_path: Path) -> None:
    missing = Repository(tmp_path / "absent")
    with lock.shared(missing), lock.exclusive(missing):
        pass
    assert not missing.root.exists()
    old = Repository(tmp_path / "old")
    old.root.mkdir()  # made before repositories had a lock file
    with lock.shared(old):
        assert not (old.root / ".lock").exists()
    with lock.exclusive(old):
        assert (old.root / ".lock").is_file()
