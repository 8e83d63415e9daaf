"""The `pgvdrill` provider on a real repository (a source archiving into it, a logical and a
physical backup taken by `pgvdrill backup`'s own function): listed from its catalog,
verified, restored, its WAL fetched; a changed file, a missing WAL segment and an
unreadable catalog entry each fail by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fixtures.ops import ArchivedRepo
from pgvdrill.config import Provider as ProviderConf
from pgvdrill.errors import BackupError
from pgvdrill.providers.registry import make
from pgvdrill.providers.repository import RepositoryProvider


def provider(root: Path) -> RepositoryProvider:
    made = make(ProviderConf(name="offsite", type="pgvdrill", repository=root))
    assert isinstance(made, RepositoryProvider)
    return made


@pytest.fixture
def copy(archived_repo: ArchivedRepo, tmp_path: Path) -> Path:
    """A copy of the repository to damage."""
    shutil.copytree(archived_repo.repo, tmp_path / "repo")
    return tmp_path / "repo"


def test_backups_come_from_the_catalog(archived_repo: ArchivedRepo) -> None:
    offsite = provider(archived_repo.repo)
    logical, physical = offsite.backups()

    assert (logical.id, logical.kind) == (archived_repo.logical.id, "logical")
    assert logical.path is not None and logical.path.parent.name == logical.id
    assert logical.size_bytes == archived_repo.logical.size_bytes
    assert (physical.id, physical.kind) == (archived_repo.physical.id, "physical")
    assert physical.start_lsn == archived_repo.physical.start_lsn
    assert physical.timeline == 1 and physical.source_version
    assert offsite.version().startswith("pgvdrill ")


def test_good_backups_check_verify_restore_and_fetch(archived_repo: ArchivedRepo,
                                                     tmp_path: Path) -> None:
    offsite = provider(archived_repo.repo)
    logical, physical = offsite.backups()

    assert {c.name: c.status for c in offsite.checks()} == {
        "catalog": "pass", f"files of {logical.id}": "pass", f"files of {physical.id}": "pass",
        "wal continuity": "pass"}
    assert [offsite.verify(b).status for b in (logical, physical)] == ["pass", "pass"]
    (tmp_path / "p").mkdir()
    offsite.restore(physical, tmp_path / "p")
    assert (tmp_path / "p" / "PG_VERSION").is_file()
    (tmp_path / "d").mkdir()
    assert offsite.restore(logical, tmp_path / "d").path.is_file()
    names = offsite.wal_names()
    assert names and offsite.fetch_wal(names[-1], tmp_path / "seg")


def test_a_changed_file_fails_verification_and_restore(copy: Path, tmp_path: Path) -> None:
    offsite = provider(copy)
    physical = offsite.backups()[1]
    assert physical.path is not None
    manifest = physical.path / "backup_manifest"
    manifest.write_bytes(manifest.read_bytes()[:-10])

    check = offsite.verify(physical)

    assert check.status == "fail"
    assert "file backup_manifest has" in check.output
    assert {c.name: c.status for c in offsite.checks()}[f"files of {physical.id}"] == "fail"
    (tmp_path / "p").mkdir()
    with pytest.raises(BackupError, match="differs from its catalog entry"):
        offsite.restore(physical, tmp_path / "p")
    assert list((tmp_path / "p").iterdir()) == []


def test_a_missing_wal_segment_fails_the_continuity_check(copy: Path) -> None:
    offsite = provider(copy)
    segments = [n for n in offsite.wal_names() or [] if len(n) == 24]
    (copy / "wal" / segments[-2]).unlink()

    check = {c.name: c for c in offsite.checks()}["wal continuity"]

    assert check.status == "fail"
    assert f"segment {segments[-2]} is missing" in check.output


def test_an_unreadable_catalog_entry_fails(copy: Path) -> None:
    (copy / "catalog" / "logical-20990101T000000Z.json").write_text("{not json")
    offsite = provider(copy)

    assert {c.name: c.status for c in offsite.checks()}["catalog"] == "fail"
    with pytest.raises(BackupError, match="unreadable"):
        offsite.backups()
