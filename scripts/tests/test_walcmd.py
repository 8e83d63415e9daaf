"""archive-wal and restore-wal run as PostgreSQL runs them: as programs, on real files."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import pgvdrill as pgvdrill_package
from fixtures.segments import segment_bytes
from pgvdrill import osuser
from pgvdrill.cluster.wal_commands import WALCMD_FILES, python_for
from pgvdrill.proc import runner
from pgvdrill.restore_status import NOT_IN_ARCHIVE

SEGMENT = "000000010000000000000003"


def pgvdrill(*args: str | Path, user: str | None = None) -> runner.Result:
    """walcmd as a server's archive_command runs it (as `user`, None: as ourselves)."""
    python, root = python_for(user)
    return runner.run([python, "-m", "pgvdrill.wal.walcmd", *args], user=user,
                      env={"PYTHONPATH": root}, check=False)


@pytest.fixture
def wal(tmp_path: Path) -> Path:
    path = tmp_path / "pg_wal" / SEGMENT
    path.parent.mkdir()
    path.write_bytes(segment_bytes())
    return path


def test_archives_a_segment_and_restores_it(wal: Path, archive: Path, tmp_path: Path) -> None:
    done = runner.run([sys.executable, "-m", "pgvdrill.cli", "archive-wal", wal, SEGMENT,
                       "--dest", archive], check=False)  # the `pgvdrill` command

    assert done.returncode == 0, done.stderr
    assert (archive / SEGMENT).read_bytes() == wal.read_bytes()
    assert sorted(p.name for p in archive.iterdir()) == [SEGMENT]  # no temporary left
    restored = tmp_path / "RECOVERYXLOG"
    assert pgvdrill("restore-wal", SEGMENT, restored, "--source", archive).returncode == 0
    assert restored.read_bytes() == wal.read_bytes()


def test_identical_file_already_archived_is_success(wal: Path, archive: Path) -> None:
    assert pgvdrill("archive-wal", wal, SEGMENT, "--dest", archive).returncode == 0

    again = pgvdrill("archive-wal", wal, SEGMENT, "--dest", archive)

    assert again.returncode == 0
    assert "identical" in again.stderr


def test_different_file_is_refused_and_the_archived_one_kept(wal: Path, archive: Path) -> None:
    stored = os.urandom(64 * 1024)
    (archive / SEGMENT).write_bytes(stored)

    refused = pgvdrill("archive-wal", wal, SEGMENT, "--dest", archive)

    assert refused.returncode != 0
    assert "different content" in refused.stderr and "refusing to overwrite" in refused.stderr
    assert (archive / SEGMENT).read_bytes() == stored


@pytest.mark.parametrize("name", ["../000000010000000000000003", "/etc/passwd", "postgresql.conf",
                                  "00000001000000000000000g", "000000010000000000000003/..",
                                  "00000002.history.bak", ".000000010000000000000003", ""])
def test_hostile_or_foreign_names_are_refused(wal: Path, archive: Path, name: str) -> None:
    refused = pgvdrill("archive-wal", wal, name, "--dest", archive)

    assert refused.returncode != 0
    assert "refusing WAL file name" in refused.stderr
    assert list(archive.iterdir()) == []
    assert pgvdrill("restore-wal", name, archive / "x", "--source", archive).returncode != 0


@pytest.mark.parametrize("name", ["00000002.history", "000000010000000000000003.00000028.backup",
                                  "000000010000000000000003.partial"])
def test_history_backup_and_partial_names_are_accepted(wal: Path, archive: Path, name: str
                                                       ) -> None:
    assert pgvdrill("archive-wal", wal, name, "--dest", archive).returncode == 0
    assert (archive / name).is_file()


def test_missing_source_file_fails(archive: Path, tmp_path: Path) -> None:
    failed = pgvdrill("archive-wal", tmp_path / "gone", SEGMENT, "--dest", archive)

    assert failed.returncode != 0
    assert "cannot archive" in failed.stderr
    assert list(archive.iterdir()) == []


def test_missing_archive_directory_fails(wal: Path, tmp_path: Path) -> None:
    failed = pgvdrill("archive-wal", wal, SEGMENT, "--dest", tmp_path / "nowhere")

    assert failed.returncode != 0
    assert "does not exist" in failed.stderr


@pytest.fixture
def readonly_archive() -> Iterator[tuple[Path, Path, str | None]]:
    """(segment, archive, user): an archive `user` may read but not write (as root: the
    server user, since root writes anywhere)."""
    user = osuser.server_user()
    base = Path(tempfile.mkdtemp(dir="/var/tmp" if user else None))
    base.chmod(0o755)
    (base / "archive").mkdir(mode=0o555)
    segment = base / SEGMENT
    segment.write_bytes(segment_bytes())
    segment.chmod(0o644)
    yield segment, base / "archive", user
    (base / "archive").chmod(0o755)
    runner.run(["rm", "-rf", "--", base])


def test_unwritable_archive_fails_non_zero(readonly_archive: tuple[Path, Path, str | None]
                                          ) -> None:
    segment, archive, user = readonly_archive

    failed = pgvdrill("archive-wal", segment, SEGMENT, "--dest", archive, user=user)

    assert failed.returncode != 0
    assert "cannot archive" in failed.stderr and "Permission denied" in failed.stderr
    assert list(archive.iterdir()) == []


def test_restore_of_an_absent_file_is_quiet_not_in_archive(archive: Path, tmp_path: Path) -> None:
    absent = pgvdrill("restore-wal", SEGMENT, tmp_path / "RECOVERYXLOG", "--source", archive)

    assert absent.returncode == NOT_IN_ARCHIVE
    assert absent.stderr == ""
    assert not (tmp_path / "RECOVERYXLOG").exists()


def test_restore_serves_a_partial_segment_only_when_asked(archive: Path, tmp_path: Path
                                                         ) -> None:
    (archive / f"{SEGMENT}.partial").write_bytes(b"partial")
    target = tmp_path / "RECOVERYXLOG"

    assert pgvdrill("restore-wal", SEGMENT, target, "--source", archive).returncode == \
        NOT_IN_ARCHIVE
    assert pgvdrill("restore-wal", SEGMENT, target, "--source", archive,
                    "--partial").returncode == 0
    assert target.read_bytes() == b"partial"
    assert sorted(p.name for p in archive.iterdir()) == [f"{SEGMENT}.partial"]


def test_the_server_user_copy_of_walcmd_holds_every_module_it_imports(tmp_path: Path) -> None:
    """shared_walcmd copies WALCMD_FILES only: walcmd must run from exactly those files,
    without site-packages (a server's own python3 has neither pgvdrill nor psycopg)."""
    root = Path(pgvdrill_package.__file__).resolve().parent.parent
    for name in WALCMD_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((root / name).read_bytes())
    for command in ("archive-wal", "restore-wal"):
        result = runner.run([sys.executable, "-S", "-m", "pgvdrill.wal.walcmd", command,
                             "--help"], env={"PYTHONPATH": str(tmp_path)}, check=False)
        assert result.returncode == 0, result.stderr
