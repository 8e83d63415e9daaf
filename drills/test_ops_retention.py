"""`pgvdrill retention` as an operator runs it, on a repository of real backups (a pg_dump
archive and a pg_basebackup of a real server, each under its own catalog entry) and real WAL
segment files named after the base backup's own start, with the time set by --now.

Compared with the runbook's BackupManager, whose cleanup_old_backups(days=7) and
cleanup_old_wal(days=3) delete every file older than that by modification time."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import Cli
from fixtures.clusters import source_copy
from pgvdrill.cluster import Cluster
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.logical.dump import DUMP_SETTINGS, dump
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS
from pgvdrill.physical.backup import base_backup
from pgvdrill.repository import Entry, Repository, checksum_files, file_problems, lock
from pgvdrill.repository.catalog import read_entries, write_entry
from pgvdrill.repository.layout import restrict
from pgvdrill.wal.names import DEFAULT_SEGMENT_SIZE, Segment, parse_lsn

NOW = datetime(2025, 11, 15, 3, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Taken:
    """A real dump and a real base backup of one server, and where the backup's WAL starts."""

    dump: Path
    base: Path
    start_lsn: str
    end_lsn: str
    timeline: int

    @property
    def start(self) -> Segment:
        return Segment.containing(parse_lsn(self.start_lsn), self.timeline)


retention_source = source_copy("retention", scope="module")


@pytest.fixture(scope="module")
def taken(retention_source: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Taken:
    """Backups of a copy of the dataset's source, after a few WAL switches (so that the
    archive can hold segments from before the base backup)."""
    outdir = tmp_path_factory.mktemp("retention-backups")
    cluster = retention_source
    for _ in range(4):
        cluster.query("SELECT pg_logical_emit_message(false, 'pgvdrill', 'retention')")
        cluster.query("SELECT pg_switch_wal()")
    archive = dump(cluster, SOURCE_DB, DUMP_SETTINGS["custom-z1"], outdir).archive
    base = base_backup(cluster, BASE_BACKUP_SETTINGS["tar-stream"], outdir / "base",
                       fast_checkpoint=True)
    backups = Taken(archive.path, base.path, base.start_lsn, base.end_lsn, base.timeline)
    assert backups.start.number >= 3, f"too little WAL before the base backup: {base.start_lsn}"
    return backups


class Repo:
    """A repository being built: backups copied from `taken`, finished and with file
    modification times as many days before NOW as asked."""

    def __init__(self, root: Path, taken: Taken) -> None:
        self.repo = Repository(root).ensure()
        self.taken = taken

    def backup(self, kind: str, days_old: float) -> Entry:
        finished = NOW - timedelta(days=days_old)
        backup_id = self.repo.new_id(kind, finished)
        directory = self.repo.backup_dir(kind, backup_id)
        if kind == "logical":
            directory.mkdir()
            shutil.copy(self.taken.dump, directory / self.taken.dump.name)
        else:
            shutil.copytree(self.taken.base, directory)
        restrict(directory)
        physical = kind == "physical"
        entry = Entry(backup_id, kind, (finished - timedelta(minutes=1)).isoformat(),
                      finished.isoformat(), 60.0, {"dbname": SOURCE_DB}, {}, {},
                      checksum_files(directory),
                      start_lsn=self.taken.start_lsn if physical else None,
                      end_lsn=self.taken.end_lsn if physical else None,
                      timeline=self.taken.timeline if physical else None)
        write_entry(self.repo, entry)
        for path in [*directory.rglob("*"), directory, self.repo.entry_path(backup_id)]:
            os.utime(path, (finished.timestamp(), finished.timestamp()))
        return entry

    def wal(self, offset: int, days_old: float) -> str:
        """A WAL segment `offset` segments after the base backup's start, full size."""
        name = Segment(self.taken.timeline, self.taken.start.number + offset).name
        path = self.repo.wal / name
        with path.open("wb") as handle:
            handle.truncate(DEFAULT_SEGMENT_SIZE)
        moment = (NOW - timedelta(days=days_old)).timestamp()
        os.utime(path, (moment, moment))
        return name

    def config(self, **retention: Any) -> Path:
        """A configuration with only [repository] and [retention]: retention never needs
        the source."""
        path = self.repo.root.parent / "pgvdrill.toml"
        lines = ["[repository]", f'path = "{self.repo.root}"', "", "[retention]",
                 *(f"{key} = {value}" for key, value in retention.items())]
        path.write_text("\n".join(lines) + "\n")
        return path

    def ids(self) -> list[str]:
        return [e.id for e in read_entries(self.repo)]

    def state(self) -> dict[str, tuple[int, int]]:
        """Every path in the repository with its size and modification time."""
        return {str(p.relative_to(self.repo.root)): (p.stat().st_size, p.stat().st_mtime_ns)
                for p in self.repo.root.rglob("*")}


@pytest.fixture
def repo(tmp_path: Path, taken: Taken) -> Repo:
    return Repo(tmp_path / "repo", taken)


def decisions(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The keep/delete lines of a run's output."""
    return [line.strip() for line in result.stdout.splitlines()
            if line.startswith(("  keep", "  delete"))]


def line_of(result: subprocess.CompletedProcess[str], name: str) -> str:
    [line] = [d for d in decisions(result) if d.split()[1] == name]
    return line


def test_dry_run_shows_the_plan_and_the_real_run_carries_it_out(
        repo: Repo, pgvdrill_cli: Cli) -> None:
    september = repo.backup("logical", 75)  # 2025-09-01: the month's first, a monthly copy
    october = [repo.backup("logical", days) for days in (45, 44)]  # Oct 1, Oct 2
    november = [repo.backup("logical", days) for days in (14, 10, 2, 1)]  # Nov 1, 5, 13, 14
    physical = repo.backup("physical", 40)  # the only physical backup
    old = [repo.wal(-3, 45), repo.wal(-2, 44)]
    young = repo.wal(-1, 1)
    needed = [repo.wal(n, 40 - n) for n in range(3)]
    in_progress = repo.repo.backup_dir("physical", "physical-20251115T025900Z")
    in_progress.mkdir()
    (in_progress / "base.tar").write_bytes(b"half a backup")
    (repo.repo.wal / "archive_status").mkdir()
    config = repo.config()
    before = repo.state()

    dry = pgvdrill_cli("retention", "--config", config, "--dry-run", "--now", NOW.isoformat())

    assert dry.returncode == 0, dry.stderr
    assert repo.state() == before  # nothing deleted, nothing touched
    assert "(dry run: nothing is deleted)" in dry.stdout
    assert line_of(dry, october[1].id).startswith(
        f"delete {october[1].id}  44.0 days old")
    assert line_of(dry, october[1].id).endswith(
        ": older than 7 days, not the newest valid logical backup, not a monthly copy")
    assert line_of(dry, november[1].id).startswith(f"delete {november[1].id}  10.0 days old")
    assert line_of(dry, september.id).endswith(
        "the first valid logical backup of 2025-09: a monthly copy, kept 12 months "
        "(until 2026-09-01)")
    assert line_of(dry, november[2].id).endswith(": within 7 days")
    assert "the newest valid physical backup, kept whatever its age" in \
        line_of(dry, physical.id)
    assert f"delete {old[0]} .. {old[1]} (2 files)  44.0-45.0 days old, 32.0 MiB: older " \
           "than 3 days and needed by no retained physical backup" in decisions(dry)
    assert line_of(dry, young).endswith(": younger than 3 days")
    assert f"keep   {needed[0]} .. {needed[2]} (3 files)  38.0-40.0 days old, 48.0 MiB: " \
           f"needed by {physical.id} to recover (from {needed[0]} onwards, on timeline " \
           f"{repo.taken.timeline} and its descendants)" in decisions(dry)
    assert f"{in_progress}: no catalog entry: a backup in progress" in dry.stdout
    assert f"{repo.repo.wal / 'archive_status'}: not an archived WAL file" in dry.stdout
    assert "dry run: would delete 2 backup(s)" in dry.stdout
    assert "and 2 WAL file(s) (32.0 MiB); nothing was deleted" in dry.stdout

    real = pgvdrill_cli("retention", "--config", config, "--now", NOW.isoformat())

    assert real.returncode == 0, real.stderr
    assert decisions(real) == decisions(dry)
    assert f"deleted logical backup {october[1].id}" in real.stdout
    gone = {october[1].id, november[1].id}
    assert sorted(repo.ids()) == sorted(e.id for e in [september, *october, *november,
                                                       physical] if e.id not in gone)
    for kind, backup_id in (("logical", i) for i in gone):
        assert not repo.repo.backup_dir(kind, backup_id).exists()
    assert sorted(p.name for p in repo.repo.catalog.iterdir()) == \
        sorted(f"{i}.json" for i in repo.ids())
    for entry in read_entries(repo.repo):
        assert file_problems(repo.repo, entry) == [], entry.id
    assert sorted(p.name for p in repo.repo.wal.iterdir()) == \
        sorted([young, *needed, "archive_status"])
    assert (in_progress / "base.tar").read_bytes() == b"half a backup"

    again = pgvdrill_cli("retention", "--config", config, "--now", NOW.isoformat())
    assert again.returncode == 0, again.stderr
    assert "deleted 0 backup(s) (0.0 MiB) and 0 WAL file(s) (0.0 MiB)" in again.stdout


def test_a_corrupt_newest_backup_does_not_count_and_the_only_valid_one_stays(
        repo: Repo, pgvdrill_cli: Cli) -> None:
    valid = repo.backup("logical", 40)
    broken = repo.backup("logical", 35)
    archive = repo.repo.backup_dir("logical", broken.id) / repo.taken.dump.name
    with archive.open("r+b") as handle:
        handle.seek(archive.stat().st_size // 2)
        handle.write(b"\0" * 16)
    physical = repo.backup("physical", 3 / 24)  # three hours old
    config = repo.config(logical_days=0, physical_days=0, monthly_months=0)

    result = pgvdrill_cli("retention", "--config", config, "--now", NOW.isoformat())

    assert result.returncode == 0, result.stderr
    assert f"checking {broken.id}" in result.stdout
    assert line_of(result, valid.id).endswith(
        f"the newest valid logical backup, kept whatever its age (newer: {broken.id} is "
        f"corrupt: {broken.id}: file {repo.taken.dump.name} changed (sha256 differs))")
    assert line_of(result, physical.id).endswith(
        "the newest valid physical backup, kept whatever its age")
    assert repo.ids() == [valid.id, physical.id]
    assert not repo.repo.backup_dir("logical", broken.id).exists()


def runbook_cleanup(root: Path, now: datetime) -> set[str]:
    """What the runbook's cleanup_old_backups(days=7) and cleanup_old_wal(days=3) would
    delete here: every backup file modified more than 7 days ago, every WAL file more than
    3 days ago (listed, not deleted)."""
    def older(path: Path, days: int) -> bool:
        return path.stat().st_mtime < (now - timedelta(days=days)).timestamp()

    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and older(
        p, 3 if p.parent.name == "wal" else 7)}


def test_unlike_the_runbook_the_only_valid_base_backup_and_its_wal_stay(
        repo: Repo, pgvdrill_cli: Cli) -> None:
    physical = repo.backup("physical", 40)
    before_it = repo.wal(-1, 41)
    its_wal = [repo.wal(n, 40 - n) for n in range(4)]  # 36 to 40 days old
    runbook = runbook_cleanup(repo.repo.root, NOW)
    backup_files = {f"physical/{physical.id}/{f.path}" for f in physical.files}
    assert backup_files | {f"wal/{n}" for n in [before_it, *its_wal]} <= runbook

    result = pgvdrill_cli("retention", "--config", repo.config(), "--now", NOW.isoformat())

    assert result.returncode == 0, result.stderr
    assert repo.ids() == [physical.id]
    assert file_problems(repo.repo, physical) == []
    assert sorted(p.name for p in repo.repo.wal.iterdir()) == its_wal
    assert "deleted 0 backup(s) (0.0 MiB) and 1 WAL file(s) (16.0 MiB)" in result.stdout


def test_an_interrupted_deletion_exits_non_zero_and_leaves_no_entry_without_files(
        repo: Repo, pgvdrill_cli: Cli) -> None:
    old, newest = repo.backup("logical", 20), repo.backup("logical", 1)
    stuck = repo.repo.backup_dir("logical", old.id) / repo.taken.dump.name
    if subprocess.run(["chattr", "+i", stuck], capture_output=True).returncode != 0:
        pytest.skip("chattr +i (an undeletable file) is not supported here")
    try:
        config = repo.config(monthly_months=0)
        result = pgvdrill_cli("retention", "--config", config, "--now", NOW.isoformat())
        again = pgvdrill_cli("retention", "--config", config, "--now", NOW.isoformat())
    finally:
        subprocess.run(["chattr", "-i", stuck], check=True)

    assert result.returncode == 1, result.stderr
    assert f"FAILED to delete logical backup {old.id}" in result.stdout
    assert "FAILED: 1 item(s) could not be deleted" in result.stdout
    assert repo.ids() == [newest.id]  # the entry went first: never an entry without files
    assert again.returncode == 0, again.stderr
    assert f"{repo.repo.backup_dir('logical', old.id)}: a deletion by retention was " \
           "interrupted" in again.stdout
    assert stuck.exists()


def test_an_unreadable_repository_exits_4_and_deletes_nothing(
        repo: Repo, pgvdrill_cli: Cli) -> None:
    old = repo.backup("logical", 20)
    repo.backup("logical", 1)
    (repo.repo.catalog / "logical-20251101T000000Z.json").write_text("{ not json")
    before = repo.state()

    result = pgvdrill_cli("retention", "--config", repo.config(), "--now", NOW.isoformat())

    assert result.returncode == 4
    assert "logical-20251101T000000Z.json is unreadable" in result.stderr
    assert repo.state() == before
    assert repo.repo.backup_dir("logical", old.id).is_dir()
    shutil.rmtree(repo.repo.root)
    missing = pgvdrill_cli("retention", "--config", repo.config(), "--dry-run")
    assert missing.returncode == 4
    assert f"backup repository {repo.repo.root} does not exist" in missing.stderr


def test_retention_deletes_nothing_while_another_command_uses_the_repository(
        repo: Repo, pgvdrill_cli: Cli) -> None:
    """A restore (or backup, verify, sync, drill) holds the repository's lock shared while
    it runs: retention then gives up at once, exit 7, deleting nothing; its dry run still
    reads; once the command is done, retention carries out the same plan."""
    repo.backup("logical", 20)  # October's monthly copy
    old = repo.backup("logical", 19)
    repo.backup("logical", 1)
    config = repo.config()
    before = repo.state()

    with lock.shared(repo.repo):  # as `pgvdrill restore` holds it
        busy = pgvdrill_cli("retention", "--config", config, "--now", NOW.isoformat())
        dry = pgvdrill_cli("retention", "--config", config, "--dry-run", "--now",
                           NOW.isoformat())

    assert busy.returncode == 7, busy.stdout + busy.stderr
    assert "is in use by another pgvdrill command" in busy.stderr
    assert "Traceback" not in busy.stderr
    assert repo.state() == before
    assert dry.returncode == 0 and f"delete {old.id}" in dry.stdout
    done = pgvdrill_cli("retention", "--config", config, "--now", NOW.isoformat())
    assert done.returncode == 0, done.stderr
    assert not repo.repo.backup_dir("logical", old.id).exists()
