"""The barman provider on the real Barman 3.19.1, backing up production stand-ins
(fixtures/production.py) as an operator sets it up (fixtures/provider_barman.py): its
backups listed with Barman's facts, one restored by `barman recover` and started by
pgvdrill's backend, WAL fetched by `barman get-wal` (a missing file told from a failure),
Barman's own check and verify-backup (a file removed from the backup named; no manifest:
unknown), and Barman's backups and WAL archive unchanged by all of it. On PostgreSQL 18.6
(the embedded installation) and 16.2 (fixtures/installed.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fixtures.clusters import shared_tmp
from fixtures.installed import PG16, installed
from fixtures.production import ADMIN, Production, build_production
from fixtures.provider_barman import BarmanSetup, barman_for
from pgvdrill.backends import default_workdir, make_backend
from pgvdrill.cluster import Backend
from pgvdrill.dataset import Dataset
from pgvdrill.errors import ToolError, cleanup
from pgvdrill.providers.barman import Barman
from pgvdrill.providers.base import ProviderBackup
from pgvdrill.wal.names import Segment, is_archive_name, parse_lsn

COUNT = "SELECT count(*) FROM public.events"


@dataclass
class Taken:
    """A Barman set-up with one backup, rows written after it and the segment holding them
    in Barman's archive."""

    setup: BarmanSetup
    backup_id: str
    events_at_backup: int
    after: str  # a segment written after the backup, in Barman's wals/

    @property
    def provider(self) -> Barman:
        return Barman(self.setup.provider())

    def newest(self) -> ProviderBackup:
        return self.provider.backups()[-1]


def _taken(setup: BarmanSetup) -> Taken:
    production = setup.production
    backup_id = setup.backup()
    events = int(production.admin(COUNT)[0][0])
    production.admin("INSERT INTO public.events (note) "
                     "SELECT 'after the barman backup' FROM generate_series(1, 50)")
    return Taken(setup, backup_id, events, setup.switch())


@pytest.fixture(scope="module")
def barman18(production: Production) -> Iterator[Taken]:
    with barman_for(default_workdir(), production) as setup:
        yield _taken(setup)


def _restored_counts(taken: Taken, backend: Backend) -> tuple[int, int]:
    """Restore the newest backup with the provider (no WAL in it), fetch the WAL from its
    first to its last segment into pg_wal as a drill does, start the copy with `backend`:
    its events count and its server_version_num."""
    into = Path(tempfile.mkdtemp(prefix="barman-restore-", dir=default_workdir()))
    backup = taken.newest()
    try:
        restored = taken.provider.restore(backup, into)
        assert restored.path == into and restored.seconds > 0
        assert (into / "PG_VERSION").is_file()
        assert not [p for p in (into / "pg_wal").iterdir() if is_archive_name(p.name)]
        first, last = (Segment.from_name(str(backup.details[k])) for k in ("begin_wal",
                                                                          "end_wal"))
        for number in range(first.number, last.number + 1):
            name = Segment(first.timeline, number).name
            assert taken.provider.fetch_wal(name, into / "pg_wal" / name), name
        cluster = backend.adopt("barman-restored", into, superuser=ADMIN)
    finally:
        shutil.rmtree(into, ignore_errors=True)
    with cleanup(cluster.destroy, "the restored copy"):
        cluster.start()
        rows = cluster.query(COUNT, "vector_db")[0][0]
        version = cluster.query("SHOW server_version_num")[0][0]
    assert isinstance(rows, int) and isinstance(version, str)
    return rows, int(version)


def test_lists_its_backup_with_barmans_facts(barman18: Taken) -> None:
    """Barman's version, the one DONE backup: its id, LSNs as backup_label records them,
    timeline, UTC times around the backup, size, the source's version."""
    provider = barman18.provider
    assert provider.version() == "barman 3.19.1"
    (backup,) = provider.backups()
    assert backup.id == barman18.backup_id and backup.kind == "physical"
    label = (barman18.setup.server_dir / "base" / backup.id / "data" / "backup_label"
             ).read_text()
    assert f"START WAL LOCATION: {backup.start_lsn} " in label
    assert backup.end_lsn is not None and backup.start_lsn is not None
    assert parse_lsn(backup.start_lsn) < parse_lsn(backup.end_lsn)
    assert backup.timeline == 1
    assert backup.started is not None and backup.finished is not None
    assert backup.started.tzinfo == UTC and backup.started <= backup.finished
    assert abs((datetime.now(UTC) - backup.finished).total_seconds()) < 3600
    assert backup.size_bytes is not None and backup.size_bytes > 10 * 2**20
    assert backup.source_version == barman18.setup.production.admin(
        "SHOW server_version")[0][0]
    assert backup.details["backup_method"] == "postgres"


def test_a_restored_backup_starts_with_what_it_held(barman18: Taken, backend: Backend
                                                    ) -> None:
    """`barman recover` into an empty directory, adopted and started by pgvdrill's backend:
    the rows of the backup's moment, not those written after it (no WAL past its end)."""
    if backend.major != 18:
        pytest.skip("the stand-in is 18.6: its copy starts on 18 (the 16.2 case is below)")
    before = barman18.setup.fingerprint()
    rows, version = _restored_counts(barman18, backend)
    assert rows == barman18.events_at_backup
    assert version // 10000 == 18
    assert barman18.setup.fingerprint() == before


def test_fetches_wal_and_tells_missing_from_failed(barman18: Taken, tmp_path: Path) -> None:
    """get-wal: a segment written after the backup arrives byte for byte; a name Barman
    does not have is False (no file left); an unknown server is an error, not 'missing'."""
    provider = barman18.provider
    kept = barman18.setup.server_dir / "wals" / barman18.after[:16] / barman18.after
    assert provider.fetch_wal(barman18.after, tmp_path / "got") is True
    assert _sha(tmp_path / "got") == _sha(kept)
    for absent in ("0000000100000000000000FE", "00000002.history"):
        assert provider.fetch_wal(absent, tmp_path / absent) is False
        assert not (tmp_path / absent).exists()
    wrong = Barman(dataclasses.replace(barman18.setup.provider(), server="no_such_server"))
    with pytest.raises(ToolError) as failed:
        wrong.fetch_wal(barman18.after, tmp_path / "wrong")
    assert "no_such_server" in str(failed.value)
    assert not (tmp_path / "wrong").exists()


def test_lists_the_wal_archive(barman18: Taken) -> None:
    """list-files --target wal: the backup's first segment and those after it."""
    names = barman18.provider.wal_names()
    assert names is not None and all(is_archive_name(name) for name in names)
    backup = barman18.newest()
    assert backup.details["begin_wal"] in names
    assert barman18.after in names


def test_barman_check_passes_and_names_what_failed(barman18: Taken) -> None:
    """`barman check`: pass while receive-wal runs; stopped, the check fails naming
    receive_wal_running."""
    (check,) = barman18.provider.checks()
    assert check.status == "pass", check.output
    assert "receive_wal_running: OK" in check.output
    barman18.setup.stop()
    try:
        (check,) = barman18.provider.checks()
    finally:
        barman18.setup.start_receiving()
    assert check.status == "fail"
    assert check.reason is not None and "receive_wal_running: FAILED" in check.reason


def test_verify_backup_names_a_removed_file_and_cannot_run_without_a_manifest(
        barman18: Taken, tmp_path: Path) -> None:
    """verify-backup: pass; a data file removed from Barman's backup: fail naming it; the
    backup_manifest removed: unknown (pg_verifybackup has nothing to check against)."""
    provider = barman18.provider
    backup = barman18.newest()
    assert provider.verify(backup).status == "pass"
    data = barman18.setup.server_dir / "base" / backup.id / "data"
    victim = next(p for p in sorted((data / "base").rglob("*")) if p.is_file()
                  and p.stat().st_size > 8192)
    for removed in (victim, data / "backup_manifest"):
        shutil.move(removed, tmp_path / "aside")
        try:
            result = provider.verify(backup)
        finally:
            shutil.move(tmp_path / "aside", removed)
        if removed == victim:
            assert result.status == "fail"
            assert str(victim.relative_to(data)) in result.output
        else:
            assert result.status == "unknown"
            assert result.reason is not None and "no backup_manifest" in result.reason
    assert provider.verify(backup).status == "pass"


@pytest.fixture(scope="module")
def barman16(dataset: Dataset) -> Iterator[Taken]:
    production = build_production(default_workdir(), dataset, installation=installed(PG16))
    with cleanup(production.destroy, "the 16.2 stand-in"), \
            barman_for(default_workdir(), production) as setup:
        yield _taken(setup)


def test_a_16_server_backed_up_by_barman_restores_on_16(
        barman16: Taken, tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> None:
    """PostgreSQL 16.2: the backup says 16.2, Barman's pg_verifybackup (16's) passes it,
    and its copy starts on 16.2 with the rows of the backup's moment."""
    backup = barman16.newest()
    assert backup.source_version == "16.2"
    assert barman16.provider.verify(backup).status == "pass"
    backend = make_backend("system", pg_bin=PG16, workdir=default_workdir(),
                           cache_dir=shared_tmp(tmp_path_factory, worker_id)
                           / f"pgvdrill-cache-barman16-{worker_id}")
    with cleanup(backend.close, "the 16.2 backend"):
        rows, version = _restored_counts(barman16, backend)
    assert rows == barman16.events_at_backup
    assert version == 160002


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
