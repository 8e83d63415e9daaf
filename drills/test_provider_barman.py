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
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from drills.test_provider_command import _problems
from drills.test_provider_command import _run as _drill
from fixtures.cli import Cli
from fixtures.clusters import shared_tmp
from fixtures.installed import PG16, installed
from fixtures.ops import _toml
from fixtures.production import (
    ADMIN,
    BACKUP_ROLE,
    Fingerprint,
    Production,
    build_production,
    check_results,
    connection_problems,
)
from fixtures.provider_barman import BarmanSetup, barman_for, barman_or_skip
from pgvdrill.backends import default_workdir, make_backend
from pgvdrill.cluster import Backend
from pgvdrill.dataset import Dataset
from pgvdrill.errors import ToolError, cleanup
from pgvdrill.installation import from_bindir
from pgvdrill.providers.barman import Barman
from pgvdrill.providers.base import ProviderBackup
from pgvdrill.wal.names import Segment, is_archive_name, parse_lsn

# the module's stand-in and tool set-up are built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("provider-barman")


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
def barman18(backend: Backend, request: pytest.FixtureRequest) -> Iterator[Taken]:
    """The 18.6 stand-in's Barman; skipped in a lane of another major (the 16.2 lane runs
    the 16.2 drills only: the 18.6 stand-in's copies restore on 18)."""
    if backend.major != 18:
        pytest.skip(f"the lane's PostgreSQL is {backend.major}: the 18.6 drills run in the "
                    "embedded lane")
    barman_or_skip()
    production: Production = request.getfixturevalue("production")  # only when it runs
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
    barman_or_skip()
    production = build_production(default_workdir(), dataset,
                                  installation=from_bindir(installed(PG16)))
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


# --- the DR drill of Barman's backups: `pgvdrill dr-drill --config` with [provider.barman] ---

def _fails_without(victim: Path, taken: Taken, cli: Cli, cli_cache: Path, tmp_path: Path
                   ) -> str:
    """The drill with `victim` moved out of Barman's home (back afterwards): it must fail;
    its problems."""
    shutil.move(victim, tmp_path / "aside")
    try:
        code, output, report = _drill(cli, cli_cache, tmp_path,
                                      taken.setup.drill_config(tmp_path))
    finally:
        shutil.move(tmp_path / "aside", victim)
    assert code == 1, output
    (drill,) = report["drills"]
    assert drill["ok"] is False
    return _problems(drill)


def _only_read(production: Production, before: Fingerprint, setup: BarmanSetup,
               barman_before: dict[str, str]) -> None:
    """Production's archive, configuration and ownership unchanged, its connections the
    configured role's (Barman's own check connects as it too, as application 'barman'),
    Barman's backups and WAL archive byte for byte the same."""
    after = production.fingerprint()
    assert after.archive_problems(before) == []
    assert after.unchanged_problems(before) == []
    assert [line for line in connection_problems(after, before)
            if not re.search(rf"user={BACKUP_ROLE} .*application_name=barman", line)] == []
    assert setup.fingerprint() == barman_before


def _assert_passed(code: int, output: str, report: dict[str, Any], taken: Taken,
                   major: int) -> dict[str, Any]:
    assert code == 0, output
    (drill,) = report["drills"]
    assert drill["drill"] == f"provider:barman:{taken.backup_id}", drill["drill"]
    assert drill["ok"] is True, _problems(drill)
    assert all(check_results(drill).values()), check_results(drill)
    assert drill["restore"]["source_major"] == major
    assert drill["restore"]["wal"]["segments"] >= 2  # the backup's own and those after it
    backup = drill["backup"]
    assert (backup["provider"], backup["provider_type"]) == ("barman", "barman")
    assert backup["tool_version"] == "barman 3.19.1"
    assert backup["tool_verify"]["status"] == "pass"
    (provider,) = report["provider"]
    assert [c["status"] for c in provider["checks"]] == ["pass"]
    return dict(drill)


def test_dr_drill_of_a_good_barman_backup_passes_and_only_reads(
        barman18: Taken, production: Production, pgvdrill_cli: Cli,
        cli_cache: Path, tmp_path: Path) -> None:
    """18.6: the newest Barman backup restored, the WAL Barman archived after it replayed,
    verified against the source; production and Barman's archive only read."""
    production.quiesce()
    barman18.setup.switch()
    config = barman18.setup.drill_config(tmp_path)
    before, barman_before = production.fingerprint(), barman18.setup.fingerprint()

    code, output, report = _drill(pgvdrill_cli, cli_cache, tmp_path, config)

    drill = _assert_passed(code, output, report, barman18, 18)
    assert drill["restore"]["tool_seconds"] > 0
    _only_read(production, before, barman18.setup, barman_before)


def test_dr_drill_fails_naming_a_file_removed_from_barmans_backup(
        barman18: Taken, production: Production, pgvdrill_cli: Cli,
        cli_cache: Path, tmp_path: Path) -> None:
    """documents' first data file gone from Barman's copy of the backup: verify-backup
    names it and the drill fails."""
    relative = str(production.admin("SELECT pg_relation_filepath('public.documents')")[0][0])
    victim = barman18.setup.server_dir / "base" / barman18.backup_id / "data" / relative
    problems = _fails_without(victim, barman18, pgvdrill_cli, cli_cache, tmp_path)
    assert f'"{relative}" is present in the manifest but not on disk' in problems, problems


def test_dr_drill_fails_naming_a_wal_file_removed_from_barmans_archive(
        barman18: Taken, production: Production, pgvdrill_cli: Cli,
        cli_cache: Path, tmp_path: Path) -> None:
    """Three segments of writes after the backup; the middle one gone from Barman's wals/
    (its xlog.db still lists it): recovery would stop short, the drill fails naming it."""
    production.admin("CREATE TABLE IF NOT EXISTS public.after_barman (x int)")
    segments = []
    for _ in range(3):
        production.admin("INSERT INTO public.after_barman VALUES (1)")
        segments.append(barman18.setup.switch())
    victim = barman18.setup.server_dir / "wals" / segments[1][:16] / segments[1]
    problems = _fails_without(victim, barman18, pgvdrill_cli, cli_cache, tmp_path)
    assert f"WAL segment {segments[1]} is missing" in problems, problems


def test_dr_drill_reports_a_failing_barman_check(
        barman18: Taken, pgvdrill_cli: Cli, cli_cache: Path, tmp_path: Path) -> None:
    """receive-wal stopped: `barman check` fails; the report records it naming the check,
    and the drill fails."""
    barman18.setup.stop()
    try:
        code, output, report = _drill(pgvdrill_cli, cli_cache, tmp_path,
                                      barman18.setup.drill_config(tmp_path))
    finally:
        barman18.setup.start_receiving()
    (provider,) = report["provider"]
    (check,) = provider["checks"]
    assert check["status"] == "fail" and "receive_wal_running: FAILED" in check["reason"]
    assert code == 1, output
    assert "receive_wal_running: FAILED" in output


@pytest.mark.installations("the DR drill restores the 16.2 stand-in's Barman backup on "
                           "the 16.2 installation [drill] installations names")
def test_dr_drill_of_a_16_barman_backup_passes(
        barman16: Taken, pgvdrill_cli: Cli, cli_cache: Path, tmp_path: Path) -> None:
    """16.2: the same drill, on 16.2's programs, `[drill] installations` naming them."""
    production = barman16.setup.production
    production.quiesce()
    barman16.setup.switch()
    config = barman16.setup.drill_config(tmp_path, f"installations = [{_toml(PG16)}]")
    before, barman_before = production.fingerprint(), barman16.setup.fingerprint()

    code, output, report = _drill(pgvdrill_cli, cli_cache, tmp_path, config)

    drill = _assert_passed(code, output, report, barman16, 16)
    assert drill["server"]["postgresql"] == "16.2", drill["server"]
    _only_read(production, before, barman16.setup, barman_before)
