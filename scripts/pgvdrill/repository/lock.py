"""The repository's lock: retention deletes only while no other pgvdrill command uses it.

Backups, restores, verification, sync and the DR drill hold `<root>/.lock` shared (they
may run together, and wait while retention deletes); retention holds it alone and gives
up at once, deleting nothing, when a command is using the repository (an operator
restoring last week's backup during an incident must not see it vanish). archive-wal,
which the server runs for every segment, takes no lock: retention never deletes the WAL
that is arriving.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from pgvdrill.errors import DrillError
from pgvdrill.repository.layout import LOCK, Repository
from pgvdrill.repository.paths import inside


class RepositoryBusy(DrillError):
    """Another pgvdrill command is using the repository; nothing was changed."""

    exit_code = 7


@contextmanager
def shared(repo: Repository) -> Iterator[None]:
    """Hold the repository's lock shared, waiting while retention deletes (without a lock
    file, in a repository no backup of this version created yet: unlocked)."""
    try:
        fd = os.open(inside(repo.root, LOCK), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


@contextmanager
def exclusive(repo: Repository) -> Iterator[None]:
    """Hold the repository's lock alone; `RepositoryBusy` at once if another holds it
    (no repository: unlocked, the command says it is missing)."""
    try:
        fd = os.open(inside(repo.root, LOCK), os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except FileNotFoundError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RepositoryBusy(
                f"the backup repository {repo.root} is in use by another pgvdrill command "
                f"(a backup, restore, verify, sync or drill holds {repo.root / LOCK}): "
                "retention deleted nothing",
                "run retention again when that command has finished (the next scheduled "
                "run is fine)") from None
        yield
    finally:
        os.close(fd)
