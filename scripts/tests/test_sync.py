"""pgvdrill sync's library on a made-up repository (no PostgreSQL): what is copied, and the
stores' rules (skip identical, never overwrite or delete, verify) against a local moto S3
server and the real rsync program."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from fixtures.s3 import Bucket
from fixtures.segments import segment_bytes
from pgvdrill.config import RsyncTarget, S3Target
from pgvdrill.errors import ConfigError
from pgvdrill.ops.sync import sync_to
from pgvdrill.ops.sync_plan import plan
from pgvdrill.ops.sync_rsync import RsyncStore, is_remote, itemized
from pgvdrill.ops.sync_s3 import S3Store, StorageError
from pgvdrill.ops.sync_store import push
from pgvdrill.repository import Entry, Repository, checksum_files
from pgvdrill.repository.catalog import write_entry

WAL = ("000000010000000000000001", "000000010000000000000002", "00000002.history")


def _backup(repo: Repository, kind: str, backup_id: str, files: dict[str, bytes]) -> Entry:
    directory = repo.backup_dir(kind, backup_id)
    for name, data in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(data)
    entry = Entry(backup_id, kind, "2025-11-01T02:00:00+00:00",
                  f"2025-11-01T02:00:{len(backup_id):02d}+00:00", 1.0, {}, {}, {},
                  checksum_files(directory))
    write_entry(repo, entry)
    return entry


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    """Two complete backups, an incomplete one, three WAL files and an archiver's temporary
    file (made-up bytes)."""
    repo = Repository(tmp_path / "repo").ensure()
    for name in WAL:
        (repo.wal / name).write_bytes(name.encode() * 1000 if name.endswith(".history")
                                      else segment_bytes())
    (repo.wal / f".{WAL[0]}.123.tmp").write_bytes(b"half")
    _backup(repo, "logical", "logical-1", {"vector_db.dump": os.urandom(5000)})
    _backup(repo, "physical", "physical-22", {"base.tar": os.urandom(9000),
                                              "pg_wal.tar": os.urandom(3000),
                                              "backup_manifest": b"{}"})
    (repo.backup_dir("logical", "logical-3")).mkdir()
    return repo


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_plan_copies_wal_then_complete_backups_each_entry_after_its_files(
        repo: Repository) -> None:
    the_plan = plan(repo)

    assert [g.name for g in the_plan.groups] == ["wal", "logical-1", "physical-22"]
    assert [i.key for i in the_plan.groups[0].files] == [f"wal/{n}" for n in sorted(WAL)]
    physical = the_plan.groups[2]
    assert sorted(i.key for i in physical.files) == [
        "physical/physical-22/backup_manifest", "physical/physical-22/base.tar",
        "physical/physical-22/pg_wal.tar"]
    assert physical.entry is not None and physical.entry.key == "catalog/physical-22.json"
    assert the_plan.items[-1] == physical.entry
    assert the_plan.incomplete == (str(repo.backup_dir("logical", "logical-3")),)
    assert the_plan.refused == ()


def test_plan_refuses_a_backup_whose_files_differ_from_its_entry(repo: Repository) -> None:
    (repo.backup_dir("physical", "physical-22") / "base.tar").write_bytes(b"corrupt")

    the_plan = plan(repo)

    assert [g.name for g in the_plan.groups] == ["wal", "logical-1"]
    assert the_plan.refused == ("physical-22: file base.tar has 7 bytes, the catalog says 9000: "
                                "the backup is not copied",)


@pytest.mark.parametrize(("dest", "remote"), [
    ("/srv/backups", False), ("backups/off-site", False), ("./a:b", False),
    ("backup-host:/srv/backups", True), ("user@host:backups", True),
    ("rsync://host/module", True), ("host::module", True)])
def test_rsync_destination_is_remote_by_rsyncs_rule(dest: str, remote: bool) -> None:
    assert is_remote(dest) is remote


def test_itemized_keeps_regular_files_and_their_codes() -> None:
    out = ("created directory /x\ncd+++++++++ wal/\n>f+++++++++ wal/0001\n"
           ".f          wal/0002\n<fc.t...... catalog/a b.json\n")

    assert itemized(out) == {"wal/0001": ">f+++++++++", "wal/0002": ".f         ",
                             "catalog/a b.json": "<fc.t......"}


def _local_store(repo: Repository, tmp_path: Path) -> RsyncStore:
    return RsyncStore(RsyncTarget("offsite"), repo.root, tmp_path)


def _s3_store(bucket: Bucket, *, download: bool = False, prefix: str = "prod") -> S3Store:
    return S3Store(S3Target(bucket.name, prefix, bucket.endpoint_url, "us-east-1",
                            "STANDARD_IA"), download=download)


def test_s3_uploads_with_sha256_metadata_then_skips_identical(repo: Repository,
                                                              s3_bucket: Bucket) -> None:
    store = _s3_store(s3_bucket)
    lines: list[str] = []

    assert sync_to(store, plan(repo), dry_run=False, say=lines.append) == []

    objects = s3_bucket.objects("prod/")
    assert sorted(objects) == sorted(f"prod/{i.key}" for i in plan(repo).items)
    key = "prod/logical/logical-1/vector_db.dump"
    assert s3_bucket.metadata(key) == {"sha256": _sha(objects[key])}
    head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key=key)
    assert head["StorageClass"] == "STANDARD_IA"
    assert lines[-2] == f"s3://{s3_bucket.name}/prod/: verified 9 file(s) on the remote side"
    assert lines[-1].startswith(f"s3://{s3_bucket.name}/prod/: 9 file(s) uploaded, "
                                "0 skipped (identical), ")

    again = push(store, plan(repo), dry_run=False, say=lines.append)
    assert (again.uploaded, again.skipped, again.bytes, again.problems) == (0, 9, 0, [])


def test_s3_never_overwrites_a_differing_object_and_holds_back_the_entry(
        repo: Repository, s3_bucket: Bucket) -> None:
    key = "prod/physical/physical-22/base.tar"
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=key, Body=b"someone else's")
    store = _s3_store(s3_bucket)

    totals = push(store, plan(repo), dry_run=False, say=print)

    assert totals.problems == [
        f"s3://{s3_bucket.name}/prod/: physical/physical-22/base.tar has 14 bytes remotely, "
        "9000 locally: the remote and local copies diverged; the remote file was not "
        "overwritten"]
    objects = s3_bucket.objects("prod/")
    assert objects[key] == b"someone else's"
    assert "prod/catalog/physical-22.json" not in objects
    assert "prod/physical/physical-22/pg_wal.tar" in objects
    assert "prod/catalog/logical-1.json" in objects


def test_s3_object_without_sha256_metadata_cannot_be_called_identical(
        repo: Repository, s3_bucket: Bucket) -> None:
    wal = repo.wal / WAL[0]
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=f"wal/{WAL[0]}",
                                Body=wal.read_bytes())
    store = _s3_store(s3_bucket, prefix="/")

    comparison = store.compare(plan(repo).groups[0].files)

    assert [(i.key, why) for i, why in comparison.differ] == [
        (f"wal/{WAL[0]}", "has no sha256 metadata (x-amz-meta-sha256) remotely, so it cannot "
                          "be compared: not written by pgvdrill sync")]
    assert len(comparison.new) == 2


def test_s3_verify_download_finds_bytes_changed_under_forged_metadata(
        repo: Repository, s3_bucket: Bucket) -> None:
    store = _s3_store(s3_bucket)
    the_plan = plan(repo)
    push(store, the_plan, dry_run=False, say=print)
    item = the_plan.groups[1].files[0]
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=f"prod/{item.key}",
                                Body=b"x" * item.bytes, Metadata={"sha256": item.sha256})

    assert store.verify(the_plan.items) == []
    assert _s3_store(s3_bucket, download=True).verify(the_plan.items) == [
        (item, f"downloaded has sha256 {_sha(b'x' * item.bytes)}, the local file "
               f"{item.sha256}")]


def test_s3_errors_say_what_to_do(repo: Repository, s3_bucket: Bucket,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    items = plan(repo).items
    missing = S3Target("no-such-bucket", "", s3_bucket.endpoint_url, "us-east-1")
    with pytest.raises(ConfigError, match="bucket no-such-bucket does not exist"):
        S3Store(missing).compare(items)

    closed = S3Target(s3_bucket.name, "", "http://127.0.0.1:9", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(StorageError, match=r"listing s3://.*Could not connect to the endpoint URL"):
        S3Store(closed).compare(items)

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ConfigError, match="no usable S3 credentials") as caught:
        _s3_store(s3_bucket).compare(items)
    assert "AWS_ACCESS_KEY_ID" in caught.value.hint


def test_rsync_to_a_local_directory_verifies_and_never_deletes_or_overwrites(
        repo: Repository, tmp_path: Path) -> None:
    store = _local_store(repo, tmp_path)
    lines: list[str] = []

    assert sync_to(store, plan(repo), dry_run=False, say=lines.append) == []
    copy = tmp_path / "offsite"
    for item in plan(repo).items:
        assert _sha((copy / item.key).read_bytes()) == item.sha256
        assert (copy / item.key).stat().st_mode & 0o777 == 0o600
    assert (copy / "logical").stat().st_mode & 0o777 == 0o700
    assert not (copy / "logical" / "logical-3").exists()
    assert not list((copy / "wal").glob(".*"))

    shutil.rmtree(repo.backup_dir("logical", "logical-1"))
    repo.entry_path("logical-1").unlink()
    (repo.wal / WAL[0]).unlink()
    (copy / "physical/physical-22/backup_manifest").write_bytes(b"[]")
    totals = push(store, plan(repo), dry_run=False, say=lines.append)

    assert (totals.uploaded, totals.skipped) == (0, 4)
    [problem] = totals.problems
    assert problem.startswith("offsite: physical/physical-22/backup_manifest differs from "
                              "the local file (rsync --checksum itemizes it as >fc")
    assert problem.endswith("the remote file was not overwritten")
    assert (copy / "physical/physical-22/backup_manifest").read_bytes() == b"[]"
    assert (copy / "logical/logical-1/vector_db.dump").is_file()
    assert (copy / "catalog/logical-1.json").is_file()
    assert (copy / "wal" / WAL[0]).is_file()


def test_rsync_verify_hashes_local_copies(repo: Repository, tmp_path: Path) -> None:
    store = _local_store(repo, tmp_path)
    items = plan(repo).items
    push(store, plan(repo), dry_run=False, say=print)
    (tmp_path / "offsite" / items[0].key).write_bytes(b"y" * items[0].bytes)
    (tmp_path / "offsite" / items[1].key).unlink()

    assert store.verify(items) == [
        (items[0], f"has sha256 {_sha(b'y' * items[0].bytes)}, {items[0].sha256} locally"),
        items[1]]


def test_dry_run_copies_nothing(repo: Repository, tmp_path: Path) -> None:
    lines: list[str] = []

    totals = push(_local_store(repo, tmp_path), plan(repo), dry_run=True, say=lines.append)

    assert (totals.uploaded, totals.skipped, totals.problems) == (9, 0, [])
    assert not (tmp_path / "offsite").exists()
    assert lines[1].startswith("offsite: logical-1 (1 file(s) + catalog entry): 2 to upload "
                               "(0.0 MiB), 0 identical [")


def test_rsync_missing_is_a_configuration_error(repo: Repository, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(ConfigError, match="needs the rsync program") as caught:
        _local_store(repo, tmp_path)
    assert "apt-get install rsync" in caught.value.hint
