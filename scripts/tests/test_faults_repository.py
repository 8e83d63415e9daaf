"""Fault tests of an untrusted repository without a server (issue 13, class 1): the path
guard, the catalog writer and the DR drill's copy of the archive never follow a symlink
someone planted in the repository. The drills with real backups are in
drills/test_faults_repository.py."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from fixtures.segments import segment_bytes
from pgvdrill.errors import BackupError
from pgvdrill.physical.drill import ArchiveReplay
from pgvdrill.repository import Entry, Repository
from pgvdrill.repository.catalog import read_catalog, write_entry
from pgvdrill.repository.paths import UnsafePath, inside

SEGMENT = "000000010000000000000003"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret").write_text("root's own file\n")
    (path / "secret").chmod(0o600)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository(tmp_path / "repo").ensure()


def entry(backup_id: str) -> Entry:
    return Entry(id=backup_id, kind="logical", started="2025-11-01T01:00:00+00:00",
                 finished="2025-11-01T01:00:05+00:00", seconds=5.0, source={}, settings={},
                 tools={}, files=[])


@pytest.mark.parametrize("parts", [("..",), ("logical", ".."), ("/etc",), ("a//b",),
                                   ("logical", "x/../../..")])
def test_fault_a_path_leaving_the_repository_is_refused(repo: Repository,
                                                        parts: tuple[str, ...]) -> None:
    with pytest.raises(UnsafePath, match="refusing repository path"):
        inside(repo.root, *parts)


def test_fault_a_symlink_at_any_component_is_refused(repo: Repository, outside: Path) -> None:
    (repo.root / "logical" / "b").symlink_to(outside)

    with pytest.raises(UnsafePath, match=r"logical/b in backup repository .* is a symlink"):
        repo.backup_dir("logical", "b")
    with pytest.raises(UnsafePath, match="is a symlink"):
        inside(repo.root, "logical", "b/secret")
    assert inside(repo.root, "logical", "not-yet") == repo.root / "logical" / "not-yet"


def test_fault_a_planted_temporary_entry_symlink_is_never_written_through(
        repo: Repository, outside: Path) -> None:
    (repo.catalog / ".logical-1.json.tmp").symlink_to(outside / "secret")

    with pytest.raises(BackupError, match="a file planted in the catalog"):
        write_entry(repo, entry("logical-1"))

    assert (outside / "secret").read_text() == "root's own file\n"
    assert not (repo.catalog / "logical-1.json").exists()


def test_fault_entries_sort_by_their_moment_not_their_text(repo: Repository) -> None:
    """A zone other than UTC must not make an older backup `latest`."""
    write_entry(repo, entry("logical-1"))  # 01:00:05 UTC
    later = replace(entry("logical-2"), finished="2025-11-01T00:30:00-01:00")  # 01:30 UTC
    write_entry(repo, later)

    entries, _ = read_catalog(repo)

    assert [e.id for e in entries] == ["logical-1", "logical-2"]


def test_fault_a_catalog_entry_that_is_a_fifo_is_named_without_hanging(
        repo: Repository) -> None:
    os.mkfifo(repo.catalog / "logical-9.json")

    entries, unreadable = read_catalog(repo)

    assert entries == [] and "not a regular file" in unreadable["logical-9"]


def test_fault_the_dr_drill_never_copies_a_symlinked_segment(tmp_path: Path, outside: Path
                                                             ) -> None:
    wal = tmp_path / "wal"
    wal.mkdir()
    (wal / "000000010000000000000002").write_bytes(segment_bytes())
    (wal / SEGMENT).symlink_to(outside / "secret")
    into = tmp_path / "copy"
    into.mkdir()
    replay = ArchiveReplay(wal, 0, segments=("000000010000000000000002", SEGMENT))

    with pytest.raises(OSError, match="symbolic links"):
        replay.copied(into, None)

    assert not (into / SEGMENT).exists()


def test_fault_an_entry_id_with_a_dot_is_invalid(repo: Repository) -> None:
    data = {**entry("x").as_dict(), "id": "..", "schema": "pgvdrill.catalog/1"}
    (repo.catalog / "...json").write_text(json.dumps(data))

    entries, unreadable = read_catalog(repo)

    assert entries == []
    assert "is invalid: field id: '..' is not a plain name" in unreadable[".."]
