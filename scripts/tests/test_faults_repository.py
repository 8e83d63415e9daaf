"""Fault tests of an untrusted repository without a server (issue 13, class 1): the path
guard, the catalog writer and the DR drill's copy of the archive never follow a symlink
(or a hard link with a name outside its directory) someone planted in the repository. The
drills with real backups are in drills/test_faults_repository.py."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest

from fixtures.segments import segment_bytes
from pgvdrill.cli.retention import _when as retention_when
from pgvdrill.drill.archive_health import check_archive
from pgvdrill.drill.physical import ArchiveReplay
from pgvdrill.errors import BackupError
from pgvdrill.repository import Entry, Repository
from pgvdrill.repository.catalog import read_catalog, sha256_of, write_entry
from pgvdrill.repository.paths import UnsafePath, inside, listing
from pgvdrill.repository.wal_files import wal_file_problems
from pgvdrill.server import ExternalServer
from pgvdrill.wal.walcmd import restore_wal

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


# --- hard links: a name in the repository for a file elsewhere -------------------------------

def test_fault_a_hard_link_to_a_file_outside_the_archive_is_never_served_or_copied(
        tmp_path: Path, outside: Path) -> None:
    """What a symlink does, a hard link does too where fs.protected_hardlinks is 0 (and for
    any file the archive's owner can read and write): restore-wal, the DR drill's copy,
    verify's listing and sync's hashing (open_regular) refuse it; nothing is written."""
    wal = tmp_path / "wal"
    wal.mkdir()
    (outside / SEGMENT).write_bytes(segment_bytes())  # a valid segment, kept elsewhere
    os.link(outside / SEGMENT, wal / SEGMENT)
    into = tmp_path / "copy"
    into.mkdir()

    with pytest.raises(BackupError, match=r"refusing to restore .*: a hard link \(1 of its 2 "
                       r"names outside this directory"):
        restore_wal(SEGMENT, into / "RECOVERYXLOG", wal)
    with pytest.raises(OSError, match="a hard link"):
        ArchiveReplay(wal, 0, segments=(SEGMENT,)).copied(into, None)
    with pytest.raises(OSError, match="a hard link"):
        sha256_of(wal / SEGMENT)
    problems = wal_file_problems(wal)

    assert f"{SEGMENT} is a hard link (1 of its 2 names outside" in problems[SEGMENT]
    assert not (into / "RECOVERYXLOG").exists() and not (into / SEGMENT).exists()


def test_fault_a_hard_link_inside_a_backup_to_a_file_outside_is_named(
        repo: Repository, outside: Path) -> None:
    backup = repo.backup_dir("logical", "logical-1")
    backup.mkdir()
    os.link(outside / "secret", backup / "extra.sql")

    found = listing(backup)

    assert found.files == []
    assert found.odd == {"extra.sql": "a hard link (1 of its 2 names outside this directory: "
                                      "a file from elsewhere)"}


def test_fault_a_crash_between_link_and_unlink_leaves_no_false_alarm(tmp_path: Path) -> None:
    """archive-wal (and the catalog writer) link a temporary to the final name, then unlink
    the temporary: killed in between, both names are in the same directory. That segment
    is served, hashed and not named (a hard link is counted only with a name elsewhere)."""
    wal = tmp_path / "wal"
    wal.mkdir()
    (wal / f".{SEGMENT}.4242.tmp").write_bytes(segment_bytes())
    os.link(wal / f".{SEGMENT}.4242.tmp", wal / SEGMENT)

    assert restore_wal(SEGMENT, tmp_path / "RECOVERYXLOG", wal)
    assert sha256_of(wal / SEGMENT) and wal_file_problems(wal) == {}
    assert (tmp_path / "RECOVERYXLOG").read_bytes() == (wal / SEGMENT).read_bytes()


# --- times and numbers at the edge of their range -------------------------------------------

@pytest.mark.parametrize(("field", "value"), [
    ("finished", "9999-12-20T00:00:00+00:00"),  # + monthly_months: past year 9999
    ("finished", "0001-01-01T00:00:00+01:00"),  # in UTC: before year 1
    ("started", "1969-12-31T23:59:59+00:00"),  # before anything pgvdrill wrote
    ("seconds", 1e300), ("seconds", 1e-300), ("seconds", -0.0001),
])
def test_fault_a_catalog_time_or_duration_at_the_edge_of_its_range_is_invalid(
        repo: Repository, field: str, value: object) -> None:
    data = {**entry("logical-1").as_dict(), field: value}
    (repo.catalog / "logical-1.json").write_text(json.dumps(data))

    entries, unreadable = read_catalog(repo)

    assert entries == []
    assert f"is invalid: field {field}: {value!r} is not a" in unreadable["logical-1"]


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00",
                                  "9500-01-01T00:00:00+00:00"])
def test_fault_retention_now_at_the_edge_of_time_is_a_usage_error(text: str) -> None:
    """`retention --now` is converted to UTC and compared with entries' months: before, a
    traceback (OverflowError) instead of exit 2."""
    with pytest.raises(argparse.ArgumentTypeError, match="not a time between 1970-01-01 and "
                       "9000-01-01"):
        retention_when(text)


def test_fault_the_dr_drill_names_a_missing_wal_directory(repo: Repository) -> None:
    """wal/ gone: before, taken for "archiving not in use" and the physical drill passed
    without a word. The source is not asked (the check ends before it)."""
    repo.wal.rmdir()

    replay, problems = check_archive(repo, entry("physical-1"), cast(ExternalServer, None))

    assert replay is None
    assert problems == [f"WAL archive {repo.wal} is missing: an unmounted disk or a directory "
                        "moved away (recovery cannot go past the backup's end)"]
