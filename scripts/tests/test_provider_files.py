"""The `files` provider on real backups: a BackupManager-style directory (a pg_dump -Fc
dump, a pg_basebackup -Ft -X stream directory, wal/) made from a repository a real
source wrote; listed, verified, restored and its WAL fetched, and each kind of damage or
planted file refused or failed by name."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fixtures.ops import ArchivedRepo
from fixtures.provider_files import BASE, DUMP, backup_manager_dir
from pgvdrill.config import Provider as ProviderConf
from pgvdrill.errors import BackupError, ConfigError
from pgvdrill.providers.files import FilesProvider, _manifest_range, name_time
from pgvdrill.providers.registry import make


@pytest.fixture(scope="module")
def backup_dir(archived_repo: ArchivedRepo, wal_workdir: Path) -> Path:
    """/backup/postgres as BackupManager leaves it (read-only: copy it to damage it)."""
    return backup_manager_dir(archived_repo, wal_workdir / "backup-postgres")


def provider(root: Path, **keys: object) -> FilesProvider:
    conf = ProviderConf(name="cron", type="files",
                        dumps=str(root / "full_backup_*.dump"),
                        base_backups=str(root / "physical_backup_*"), wal=root / "wal")
    made = make(ProviderConf(**{**conf.__dict__, **keys}))
    assert isinstance(made, FilesProvider)
    return made


def damaged(backup_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "backup"
    shutil.copytree(backup_dir, copy)
    return copy


@pytest.mark.parametrize(("name", "when"), [
    ("full_backup_20251101_020000.dump", datetime(2025, 11, 1, 2, 0, 0).astimezone()),
    ("x-20251101T020000Z", datetime(2025, 11, 1, 2, 0, 0, tzinfo=UTC)),
    ("b_2025-11-01_02-00-00.dump", datetime(2025, 11, 1, 2, 0, 0).astimezone()),
    ("b_20251101020000", datetime(2025, 11, 1, 2, 0, 0).astimezone()),
    ("b_20251399_020000", None), ("nightly.dump", None), ("b_120251101_020000", None),
    # `date -Iseconds` and other zones: the instant the name says, wherever the drill runs
    ("full_backup_2026-12-07T07:06:12+14:00.dump",
     datetime(2026, 12, 6, 17, 6, 12, tzinfo=UTC)),
    ("b_20261207T070612,5-0530", datetime(2026, 12, 7, 12, 36, 12, tzinfo=UTC)),
    ("b_20261207_070612+0100", datetime(2026, 12, 7, 6, 6, 12, tzinfo=UTC)),
    ("b_20261207_070612+2500", None),  # no zone: the mtime, never a guess
    # no seconds, or a date alone: the end of that minute or day (the youngest reading)
    ("full_backup_20251101_0200.dump", datetime(2025, 11, 1, 2, 0, 59).astimezone()),
    ("full_backup_2025-11-01.dump", datetime(2025, 11, 1, 23, 59, 59).astimezone()),
    ("b_20251101", datetime(2025, 11, 1, 23, 59, 59).astimezone()),
    ("b_2025110102", None)])
def test_the_time_in_a_file_name(name: str, when: datetime | None) -> None:
    assert name_time(name) == when


def test_backups_are_listed_with_their_times_and_lsns(backup_dir: Path) -> None:
    files = provider(backup_dir)
    dump, base = files.backups()

    assert (dump.id, dump.kind, dump.path) == (DUMP, "logical", backup_dir / DUMP)
    assert dump.finished == datetime(2025, 11, 1, 2, 0).astimezone()
    assert dump.details["finished_from"] == "file name"
    assert dump.size_bytes == (backup_dir / DUMP).stat().st_size
    assert (base.id, base.kind, base.timeline) == (BASE, "physical", 1)
    assert base.finished == datetime(2025, 11, 2, 1, 0, tzinfo=UTC)
    assert base.start_lsn and base.end_lsn and base.source_version == "18"
    assert "problem" not in base.details
    assert files.version().startswith("files (read with PostgreSQL 18")


def test_a_name_without_a_time_takes_the_mtime(backup_dir: Path, tmp_path: Path) -> None:
    root = damaged(backup_dir, tmp_path)
    (root / DUMP).rename(root / "full_backup_nightly.dump")
    os.utime(root / "full_backup_nightly.dump", (1_700_000_000, 1_700_000_000))

    dump = provider(root).backups()[0]

    assert dump.finished == datetime.fromtimestamp(1_700_000_000, UTC)
    assert dump.details["finished_from"] == "mtime"


def test_a_name_with_a_date_is_aged_by_it_whatever_its_mtime(backup_dir: Path,
                                                             tmp_path: Path) -> None:
    """Last year's dump copied back (`cp` sets a new mtime): the name says its age."""
    root = damaged(backup_dir, tmp_path)
    (root / DUMP).rename(root / "full_backup_2025-11-01.dump")

    dump = provider(root).backups()[0]

    assert dump.finished == datetime(2025, 11, 1, 23, 59, 59).astimezone()
    assert dump.details["finished_from"] == "file name"
    assert "later than the name's time" in str(dump.details["mtime"])


def test_good_backups_verify_restore_and_fetch_their_wal(backup_dir: Path,
                                                         tmp_path: Path) -> None:
    files = provider(backup_dir)
    dump, base = files.backups()
    assert [files.verify(b).status for b in (dump, base)] == ["pass", "pass"]
    assert {c.name: c.status for c in files.checks()} == {
        "dumps found": "pass", "base_backups found": "pass",
        "wal archive": "pass"}

    (tmp_path / "d").mkdir()
    restored = files.restore(dump, tmp_path / "d")
    assert restored.path == tmp_path / "d" / DUMP
    assert restored.path.read_bytes() == (backup_dir / DUMP).read_bytes()
    (tmp_path / "p").mkdir()
    assert files.restore(base, tmp_path / "p").path == tmp_path / "p"
    assert (tmp_path / "p" / "PG_VERSION").read_text().strip() == "18"
    assert (tmp_path / "p" / "backup_label").is_file()

    names = files.wal_names()
    assert names and names == sorted(os.listdir(backup_dir / "wal"))
    assert files.fetch_wal(names[0], tmp_path / "seg")
    assert (tmp_path / "seg").read_bytes() == (backup_dir / "wal" / names[0]).read_bytes()
    assert not files.fetch_wal("0000000100000000000000FF", tmp_path / "none")


def test_a_truncated_dump_fails_its_verification_naming_it(backup_dir: Path,
                                                           tmp_path: Path) -> None:
    root = damaged(backup_dir, tmp_path)
    with (root / DUMP).open("r+b") as dump:
        dump.truncate((root / DUMP).stat().st_size // 2)
    files = provider(root)

    check = files.verify(files.backups()[0])

    assert check.status == "fail"
    assert DUMP in check.output


def test_a_base_backup_with_a_file_removed_fails(backup_dir: Path, tmp_path: Path) -> None:
    root = damaged(backup_dir, tmp_path)
    next((root / BASE).glob("pg_wal.tar*")).unlink()
    files = provider(root)

    check = files.verify(files.backups()[1])

    assert check.status == "fail"
    assert f"{BASE} is broken" in check.output and "pg_wal" in check.output


def test_a_base_backup_without_a_manifest_is_unknown(backup_dir: Path, tmp_path: Path
                                                     ) -> None:
    root = damaged(backup_dir, tmp_path)
    (root / BASE / "backup_manifest").unlink()
    files = provider(root)
    base = files.backups()[1]

    check = files.verify(base)

    assert check.status == "unknown"
    assert check.reason and "no backup_manifest" in check.reason
    assert base.start_lsn and base.timeline == 1  # from base.tar.gz's backup_label


def test_planted_files_are_refused(backup_dir: Path, tmp_path: Path) -> None:
    root = damaged(backup_dir, tmp_path)
    (root / "full_backup_20251103_020000.dump").symlink_to("/etc/passwd")
    with pytest.raises(ConfigError, match="a symbolic link"):
        provider(root).backups()

    (root / "full_backup_20251103_020000.dump").unlink()
    (root / DUMP).chmod(0o666)
    with pytest.raises(ConfigError, match="writable by other users"):
        provider(root).backups()

    (root / DUMP).chmod(0o600)
    segment = provider(root).wal_names()[0]  # type: ignore[index]
    (root / "wal" / segment).unlink()
    (root / "wal" / segment).symlink_to("/etc/passwd")
    with pytest.raises(BackupError, match="never followed"):
        provider(root).fetch_wal(segment, tmp_path / "seg")
    with pytest.raises(ConfigError, match="not a WAL file name"):
        provider(root).fetch_wal("../../etc/passwd", tmp_path / "seg")


def test_a_symlink_inside_a_plain_base_backup_is_never_copied(tmp_path: Path) -> None:
    base = tmp_path / "physical_backup_20251102_010000"
    base.mkdir()
    (base / "PG_VERSION").write_text("18\n")
    (base / "backup_label").write_text("START WAL LOCATION: 0/2000028 (file x)\n"
                                       "START TIMELINE: 1\n")
    (base / "global").mkdir()
    (base / "global" / "pg_control").symlink_to("/etc/shadow")
    files = provider(tmp_path, dumps="")
    (into := tmp_path / "into").mkdir()

    with pytest.raises(BackupError, match="symlink"):
        files.restore(files.backups()[0], into)
    assert not (into / "global" / "pg_control").exists()


def test_a_glob_matching_nothing_fails_the_check(tmp_path: Path) -> None:
    checks = provider(tmp_path, base_backups="", wal=None).checks()
    assert [(c.name, c.status) for c in checks] == [("dumps found", "fail")]


def test_a_missing_wal_archive_fails_the_check(backup_dir: Path, tmp_path: Path) -> None:
    checks = provider(backup_dir, wal=tmp_path / "unmounted").checks()

    wal = {c.name: c for c in checks}["wal archive"]
    assert wal.status == "fail" and "unmounted is missing" in wal.output


@pytest.mark.parametrize(("ranges", "said"), [
    ([{"Timeline": 2**32, "Start-LSN": "0/2000028", "End-LSN": "0/3000000"}], "timeline"),
    ([{"Timeline": 0, "Start-LSN": "0/2000028", "End-LSN": "0/3000000"}], "timeline"),
    ([{"Timeline": 1, "Start-LSN": 5, "End-LSN": "0/3000000"}], "not an LSN"),
    ([{"Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "zz"}], "not an LSN"),
    ([], "no WAL range")])
def test_a_damaged_manifest_range_is_named_not_listed(tmp_path: Path, ranges: object,
                                                      said: str) -> None:
    manifest = tmp_path / "backup_manifest"
    manifest.write_text(json.dumps({"WAL-Ranges": ranges}))
    with pytest.raises(BackupError, match=said):
        _manifest_range(manifest)
