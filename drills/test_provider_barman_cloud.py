"""The barman-cloud provider on the real barman-cloud (Barman 3.19.1) against a local S3:
a production stand-in archiving with barman-cloud-wal-archive, a base backup taken with
barman-cloud-backup; the provider lists it, checks it, fetches its WAL, restores it, and
the restored copy replays to the archive's end without ever writing to the bucket."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.production import ADMIN
from fixtures.provider_barman_cloud import SERVER, CloudProduction
from pgvdrill import osuser
from pgvdrill.cluster.base import Backend
from pgvdrill.providers import registry
from pgvdrill.providers.base import Provider, ProviderBackup
from pgvdrill.wal.names import SEGMENT_RE, parse_lsn
from pgvdrill.wal.pitr import BackupPoint, Target, recover

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
    """A copy of the server's objects under another prefix of the bucket, for a test to
    break; production's own objects are left alone."""
    copy = CloudProduction(cloud_production.production, cloud_production.endpoint_url,
                           cloud_production.bucket, f"tampered-{time.monotonic_ns()}",
                           cloud_production.client)
    client, bucket = cloud_production.client, cloud_production.bucket
    for key in cloud_production.keys(f"{cloud_production.prefix}/{SERVER}/"):
        client.copy_object(Bucket=bucket, CopySource={"Bucket": bucket, "Key": key},
                           Key=copy.prefix + key.removeprefix(cloud_production.prefix))
    yield copy
    for key in copy.keys(f"{copy.prefix}/"):
        client.delete_object(Bucket=bucket, Key=key)


def _wal_keys(cloud: CloudProduction) -> dict[str, str]:
    """WAL name -> key, as the bucket holds them."""
    return {key.rsplit("/", 1)[1]: key for key in cloud.keys(f"{cloud.prefix}/{SERVER}/wals/")}


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
    assert names is not None and sorted(names) == sorted(_wal_keys(cloud_production))
    assert any(name.endswith(".backup") for name in names)


def test_fetch_wal_found_and_not_found(cloud_production: CloudProduction, provider: Provider,
                                       backup: ProviderBackup, tmp_path: Path) -> None:
    begin = str(backup.details["begin_wal"])
    key = _wal_keys(cloud_production)[begin]
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
    tampered.client.delete_object(Bucket=tampered.bucket, Key=_wal_keys(tampered)[end])
    verified = provider.verify(backup)
    assert verified.status == "fail" and end in verified.output, verified
    data = f"{tampered.prefix}/{SERVER}/base/{backup.id}/data.tar"
    tampered.client.delete_object(Bucket=tampered.bucket, Key=data)
    verified = provider.verify(backup)
    assert verified.status == "fail", verified
    assert f"base/{backup.id}/data.*" in verified.output and end in verified.output


def test_a_restored_copy_replays_and_never_writes_to_the_bucket(
        cloud_production: CloudProduction, provider: Provider, backup: ProviderBackup,
        backend: Backend, record_property: pytest.RecordProperty) -> None:
    """Restore with barman-cloud-restore, fetch its WAL with barman-cloud-wal-restore into
    a directory of the drill's own, adopt (neutralise) and recover to the archive's end:
    the same rows as production; archive_mode off; the bucket's objects (keys, ETags)
    unchanged although the copy was promoted onto a new timeline and switched WAL."""
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
    assert cloud_production.listing() == before
