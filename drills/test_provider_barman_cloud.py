"""The barman-cloud provider on the real barman-cloud (Barman 3.19.1) against a local S3:
a production stand-in archiving with barman-cloud-wal-archive, a base backup taken with
barman-cloud-backup; the provider lists it, checks it, fetches its WAL, restores it, and
the restored copy replays to the archive's end without ever writing to the bucket."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import Cli
from fixtures.production import ADMIN, assert_untouched, check_results, read_report
from fixtures.provider_barman_cloud import SERVER, CloudProduction
from fixtures.provider_command import documents_file
from pgvdrill import osuser
from pgvdrill.cluster.base import Backend
from pgvdrill.errors import ToolError
from pgvdrill.providers import registry
from pgvdrill.providers.base import Provider, ProviderBackup
from pgvdrill.wal.names import SEGMENT_RE, parse_lsn
from pgvdrill.wal.pitr import BackupPoint, Target, recover

# the module's stand-in and tool set-up are built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("provider-barman-cloud")


TABLES = ("public.documents", "public.events")


@pytest.fixture(scope="module")
def provider(cloud_production: CloudProduction) -> Provider:
    return registry.make(cloud_production.provider())


@pytest.fixture(scope="module")
def backup(provider: Provider) -> ProviderBackup:
    (only,) = provider.backups()
    return only


@pytest.fixture
def tampered(cloud_production: CloudProduction) -> Iterator[CloudProduction]:
    """A copy of the server's objects under another prefix, for a test to break."""
    copy = cloud_production.copy()
    yield copy
    copy.remove()


def test_the_tool_lists_the_backup_it_took(cloud_production: CloudProduction,
                                           provider: Provider, backup: ProviderBackup) -> None:
    assert provider.version() == "barman-cloud 3.19.1"
    (info,) = cloud_production.keys("/backup.info")
    assert info == f"{cloud_production.prefix}/{SERVER}/base/{backup.id}/backup.info"
    version = cloud_production.production.admin("SHOW server_version")[0][0]
    assert (backup.kind, backup.timeline, backup.source_version) == ("physical", 1, version)
    assert backup.start_lsn and backup.end_lsn
    assert parse_lsn(backup.start_lsn) < parse_lsn(backup.end_lsn)
    assert backup.started and backup.finished and backup.started <= backup.finished
    assert backup.size_bytes and backup.size_bytes > 1 << 20


def test_its_checks_and_verification_pass_on_a_good_bucket(provider: Provider,
                                                           backup: ProviderBackup) -> None:
    listed, archive = provider.checks()
    assert (listed.status, archive.status) == ("pass", "pass"), (listed, archive)
    assert archive.argv[1:3] == ("--timeline", "2")
    verified = provider.verify(backup)
    assert verified.status == "pass", verified


def test_wal_names_are_the_buckets(cloud_production: CloudProduction,
                                   provider: Provider) -> None:
    names = provider.wal_names()
    assert names is not None and sorted(names) == sorted(cloud_production.wal_keys())
    assert any(name.endswith(".backup") for name in names)


def test_fetch_wal_found_and_not_found(cloud_production: CloudProduction, provider: Provider,
                                       backup: ProviderBackup, tmp_path: Path) -> None:
    begin = str(backup.details["begin_wal"])
    key = cloud_production.wal_keys()[begin]
    assert provider.fetch_wal(begin, tmp_path / "found")
    stored = cloud_production.client.get_object(Bucket=cloud_production.bucket, Key=key)
    assert (tmp_path / "found").read_bytes() == stored["Body"].read()
    for absent in ("0000000100000000000000FE", "00000009.history"):
        assert provider.fetch_wal(absent, tmp_path / absent) is False
        assert not (tmp_path / absent).exists()


def test_a_gap_in_the_bucket_fails_verification_naming_it(tampered: CloudProduction,
                                                          backup: ProviderBackup) -> None:
    provider = registry.make(tampered.provider())
    end = str(backup.details["end_wal"])
    tampered.delete(tampered.wal_keys()[end])
    verified = provider.verify(backup)
    assert verified.status == "fail" and end in verified.output, verified
    data = f"{tampered.prefix}/{SERVER}/base/{backup.id}/data.tar"
    tampered.delete(data)
    verified = provider.verify(backup)
    assert verified.status == "fail", verified
    assert f"base/{backup.id}/data.*" in verified.output and end in verified.output


def test_a_restored_copy_replays_and_never_writes_to_the_bucket(
        cloud_production: CloudProduction, provider: Provider, backup: ProviderBackup,
        backend: Backend, record_property: pytest.RecordProperty) -> None:
    """Restore with barman-cloud-restore, fetch its WAL with barman-cloud-wal-restore into
    a directory of the drill's own, adopt (neutralise) and recover to the archive's end:
    the same rows as production; archive_mode off, no .ready file and nothing archived
    after a WAL switch (seen at once, without waiting on an archiver); the bucket's
    objects (keys, ETags) unchanged although the copy was promoted onto a new timeline
    and switched WAL."""
    production = cloud_production.production
    before = cloud_production.listing()
    work = Path(tempfile.mkdtemp(prefix="cloud-restore-", dir=backend.workdir))
    work.chmod(0o711)  # the server's OS user reaches wal/
    (into := work / "data").mkdir(mode=0o700)
    restored = provider.restore(backup, into)
    record_property("barman_cloud_restore_seconds", round(restored.seconds, 2))
    wal = work / "wal"
    wal.mkdir()
    names = provider.wal_names() or []
    for name in sorted(n for n in names if SEGMENT_RE.fullmatch(n)
                       and n >= str(backup.details["begin_wal"])):
        assert provider.fetch_wal(name, wal / name)
    osuser.chown_tree(wal, backend.server_user)
    cluster = backend.adopt("cloud-restored", restored.path, superuser=ADMIN)
    with cluster:
        assert backup.start_lsn and backup.end_lsn
        point = BackupPoint(parse_lsn(backup.start_lsn), 1, parse_lsn(backup.end_lsn), None)
        recover(cluster, Target("end"), cluster.restore_command(wal), point, timeout=300)
        for table in TABLES:
            count = f"SELECT count(*) FROM {table}"
            assert cluster.query(count, "vector_db") == production.admin(count)
        assert cluster.query("SHOW archive_mode") == [("off",)]
        cluster.query("SELECT pg_switch_wal()")
        cluster.query("CHECKPOINT")
        # what an archiving copy shows at once (no waiting on its archiver): a .ready file
        # for the segment it just completed, or that segment already archived
        assert cluster.query("SELECT count(*) FROM pg_ls_archive_statusdir() "
                             "WHERE name LIKE '%.ready'") == [(0,)]
        assert cluster.query("SELECT archived_count, failed_count FROM pg_stat_archiver"
                             ) == [(0, 0)]
    assert cloud_production.listing() == before


# the DR drill as an operator runs it: `pgvdrill dr-drill --config` with [provider.cloud]

def _drill(cli: Cli, cli_cache: Path, tmp_path: Path, cloud: CloudProduction, *args: str
           ) -> tuple[int, str, dict[str, Any]]:
    result = cli("dr-drill", "--config", cloud.config(tmp_path), "--cache-dir", cli_cache,
                 "--reports-dir", "reports", *args)
    output = result.stdout + result.stderr
    assert list(tmp_path.glob("reports/*/report.json")), output
    assert "Traceback" not in output, output
    return result.returncode, output, read_report(tmp_path)


def _problems(drill: dict[str, Any]) -> str:
    return "\n".join([drill.get("error") or "", *(drill.get("problems") or [])])


def test_the_dr_drill_passes_on_a_good_backup_and_only_reads(
        cloud_production: CloudProduction, backup: ProviderBackup, pgvdrill_cli: Cli,
        cli_cache: Path, tmp_path: Path, record_property: pytest.RecordProperty) -> None:
    production = cloud_production.production
    production.quiesce()
    bucket, before = cloud_production.listing(), production.fingerprint()

    code, output, report = _drill(pgvdrill_cli, cli_cache, tmp_path, cloud_production)

    assert code == 0, output
    (drill,) = report["drills"]
    assert drill["drill"] == f"provider:cloud:{backup.id}" and drill["ok"] is True, \
        _problems(drill)
    assert all(check_results(drill).values()), check_results(drill)
    assert (drill["backup"]["provider_type"], drill["backup"]["tool_version"]) == \
        ("barman-cloud", "barman-cloud 3.19.1")
    assert drill["backup"]["tool_verify"]["status"] == "pass"
    assert drill["restore"]["wal"]["segments"] >= 1
    (provider,) = report["provider"]
    assert [c["status"] for c in provider["checks"]] == ["pass", "pass"]
    timings = {k: drill["restore"][k] for k in (
        "seconds", "tool_seconds", "recovery_seconds", "verify_seconds")}
    record_property("barman_cloud_restore", timings)
    print(f"barman-cloud dr-drill restore: {timings}")
    assert cloud_production.listing() == bucket
    assert_untouched(before, production.fingerprint())


def test_a_file_missing_from_the_base_backup_fails_naming_it(
        tampered: CloudProduction, backup: ProviderBackup, pgvdrill_cli: Cli,
        cli_cache: Path, tmp_path: Path) -> None:
    """data.tar rewritten without the documents table's first data file: the tool
    restores what is left; the drill fails naming the file."""
    missing = documents_file(tampered.production)
    tampered.drop_from_backup(backup.id, missing)

    code, output, report = _drill(pgvdrill_cli, cli_cache, tmp_path, tampered)

    assert code == 1, output
    (drill,) = report["drills"]
    assert drill["ok"] is False and missing in _problems(drill), _problems(drill)


def test_a_base_backup_object_deleted_fails_the_restore_naming_it(
        tampered: CloudProduction, backup: ProviderBackup, backend: Backend) -> None:
    """data.tar gone from the bucket (backup.info left): the backup is still listed, the
    restore fails naming the object. (The DR drill's report of a restore that failed
    before any server ran names no backend, which the lane check refuses: see the
    report to the lead; the drill's exit and message are the provider's error.)"""
    provider = registry.make(tampered.provider())
    tampered.delete(f"{tampered.prefix}/{SERVER}/base/{backup.id}/data.tar")
    assert [b.id for b in provider.backups()] == [backup.id]
    into = Path(tempfile.mkdtemp(prefix="cloud-broken-", dir=backend.workdir))
    try:
        with pytest.raises(ToolError, match=f"base/{backup.id}/data"):
            provider.restore(backup, into)
    finally:
        shutil.rmtree(into)


def test_a_wal_object_after_the_backup_deleted_fails_naming_it(
        cloud_production: CloudProduction, pgvdrill_cli: Cli, cli_cache: Path,
        tmp_path: Path) -> None:
    """Three segments of writes after the backup; the middle one gone from a copy of the
    bucket: recovery would stop there, short of what the source archived."""
    production = cloud_production.production
    production.admin("CREATE TABLE IF NOT EXISTS public.after_backup (x int)")
    segments = []
    for _ in range(3):
        production.admin("INSERT INTO public.after_backup VALUES (1)")
        segments.append(production.quiesce())
    tampered = cloud_production.copy()
    try:
        tampered.delete(tampered.wal_keys()[segments[1]])

        code, output, report = _drill(pgvdrill_cli, cli_cache, tmp_path, tampered)
    finally:
        tampered.remove()

    assert code == 1, output
    (drill,) = report["drills"]
    assert drill["ok"] is False
    assert segments[1] in _problems(drill), _problems(drill)
