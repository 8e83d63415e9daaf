"""`pgvdrill sync` as an operator runs it (a subprocess) on a repository of real backups of
the stand-in production source: to S3 (moto on 127.0.0.1), to a local directory and to
host:path by rsync. Copies are verified; nothing remote is deleted or overwritten."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fixtures.cli import Cli
from fixtures.s3 import Bucket
from pgvdrill.cluster import Cluster
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.logical.dump import DUMP_SETTINGS, dump
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS
from pgvdrill.physical.backup import base_backup
from pgvdrill.repository import Entry, Repository, checksum_files
from pgvdrill.repository.catalog import read_entries, write_entry
from pgvdrill.repository.layout import restrict
from pgvdrill.wal.walcmd import archive_wal

Config = Callable[..., Path]


def take(repo: Repository, source: Cluster, kind: str) -> Entry:
    """A backup of `source` into `repo` with its catalog entry, as pgvdrill backup leaves it."""
    backup_id = repo.new_id(kind)
    directory = repo.backup_dir(kind, backup_id)
    started = datetime.now(UTC)
    if kind == "logical":
        seconds = dump(source, SOURCE_DB, DUMP_SETTINGS["custom-z1"], directory).seconds
    else:
        seconds = base_backup(source, BASE_BACKUP_SETTINGS["tar-stream"], directory,
                              fast_checkpoint=True).seconds
    restrict(directory)
    entry = Entry(backup_id, kind, started.isoformat(), datetime.now(UTC).isoformat(), seconds,
                  {"dbname": SOURCE_DB}, {}, {}, checksum_files(directory))
    write_entry(repo, entry)
    return entry


def archive_segment(repo: Repository, source: Cluster, tmp_path: Path) -> str:
    """Switch `source` to a new WAL segment and archive the finished one into `repo`."""
    name = str(source.query("SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0])
    source.query("SELECT pg_switch_wal()")
    copy = tmp_path / name
    copy.write_bytes(source.read_file(f"pg_wal/{name}"))
    archive_wal(copy, name, repo.wal)
    return name


@pytest.fixture
def repo(prod_source: Cluster, tmp_path: Path) -> Repository:
    """tmp_path/repo (where ops_config points) with a logical and a physical backup of the
    source and an archived WAL segment."""
    repo = Repository(tmp_path / "repo").ensure()
    take(repo, prod_source, "logical")
    take(repo, prod_source, "physical")
    archive_segment(repo, prod_source, tmp_path)
    return repo


def local_files(repo: Repository) -> dict[str, str]:
    """sha256 of every file sync should copy, by its path below the repository."""
    found = {f"{e.kind}/{e.id}/{f.path}": f.sha256 for e in read_entries(repo) for f in e.files}
    found.update({f"catalog/{p.name}": sha(p.read_bytes()) for p in repo.catalog.iterdir()})
    found.update({f"wal/{p.name}": sha(p.read_bytes()) for p in repo.wal.iterdir()})
    return found


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_sync_to_s3_uploads_verifies_and_then_skips_identical_files(
        repo: Repository, ops_config: Config, s3_bucket: Bucket, pgvdrill_cli: Cli) -> None:
    config = ops_config(**{"sync.s3": s3_bucket.section("prod")})
    expected = local_files(repo)

    dry = ok(pgvdrill_cli("sync", "--config", config, "--to", "s3", "--dry-run"))
    assert s3_bucket.objects() == {}
    assert f"{len(expected)} file(s) to upload, 0 skipped (identical)" in dry

    out = ok(pgvdrill_cli("sync", "--config", config, "--to", "s3"))

    objects = s3_bucket.objects("prod/")
    assert {key.removeprefix("prod/"): sha(data) for key, data in objects.items()} == expected
    assert all(s3_bucket.metadata(key) == {"sha256": sha(data)} for key, data in objects.items())
    for entry in read_entries(repo):
        assert (f"{entry.id} ({len(entry.files)} file(s) + catalog entry): "
                f"{len(entry.files) + 1} uploaded") in out
    assert f"verified {len(expected)} file(s) on the remote side\n" in out
    size = sum(p.stat().st_size for p in repo.root.rglob("*") if p.is_file())
    assert f"{len(expected)} file(s) uploaded, 0 skipped (identical), {size} bytes" in out

    again = ok(pgvdrill_cli("sync", "--config", config, "--verify-download"))
    assert f"0 file(s) uploaded, {len(expected)} skipped (identical), 0 bytes" in again


def test_sync_refuses_a_backup_whose_local_files_do_not_match_its_catalog_entry(
        repo: Repository, ops_config: Config, s3_bucket: Bucket, pgvdrill_cli: Cli) -> None:
    physical = next(e for e in read_entries(repo) if e.kind == "physical")
    base = repo.backup_dir("physical", physical.id) / "base.tar"
    data = bytearray(base.read_bytes())
    data[len(data) // 2] ^= 0xFF
    base.write_bytes(bytes(data))

    result = pgvdrill_cli("sync", "--config", ops_config(**{"sync.s3": s3_bucket.section()}))

    assert result.returncode == 4, result.stdout + result.stderr
    problem = f"{physical.id}: file base.tar changed (sha256 differs)"
    assert f"REFUSED {problem}: the backup is not copied" in result.stdout
    assert problem in result.stderr
    keys = set(s3_bucket.objects())
    assert not any(physical.id in key for key in keys)
    assert {k for k in local_files(repo) if physical.id not in k} == keys


def test_a_remote_object_changed_behind_our_back_is_reported_and_not_overwritten(
        repo: Repository, ops_config: Config, s3_bucket: Bucket, pgvdrill_cli: Cli) -> None:
    config = ops_config(**{"sync.s3": s3_bucket.section("prod/")})
    ok(pgvdrill_cli("sync", "--config", config))
    logical = next(e for e in read_entries(repo) if e.kind == "logical")
    key = f"logical/{logical.id}/{logical.files[0].path}"
    size, digest = logical.files[0].bytes, logical.files[0].sha256
    put = s3_bucket.client.put_object

    put(Bucket=s3_bucket.name, Key=f"prod/{key}", Body=b"x" * size,
        Metadata={"sha256": digest})  # the same size and a forged sha256
    assert ok(pgvdrill_cli("sync", "--config", config))  # only a download can tell
    result = pgvdrill_cli("sync", "--config", config, "--verify-download")
    assert result.returncode == 4, result.stdout + result.stderr
    assert (f"s3://{s3_bucket.name}/prod/: {key} downloaded has sha256 {sha(b'x' * size)}, "
            f"the local file {digest} after the upload (verification failed)") in result.stderr

    put(Bucket=s3_bucket.name, Key=f"prod/{key}", Body=b"changed")
    result = pgvdrill_cli("sync", "--config", config)
    assert result.returncode == 4, result.stdout + result.stderr
    assert (f"{key} has 7 bytes remotely, {size} locally: the remote and local copies "
            "diverged; the remote file was not overwritten") in result.stderr
    assert s3_bucket.objects("prod/")[f"prod/{key}"] == b"changed"


def test_sync_by_rsync_to_a_directory_verifies_and_never_deletes_remote_files(
        repo: Repository, ops_config: Config, prod_source: Cluster, tmp_path: Path,
        pgvdrill_cli: Cli) -> None:
    config = ops_config(**{"sync.rsync": {"dest": "offsite"}})
    offsite = tmp_path / "offsite"
    first = local_files(repo)

    out = ok(pgvdrill_cli("sync", "--config", config, "--to", "rsync"))

    assert {p.relative_to(offsite).as_posix(): sha(p.read_bytes())
            for p in offsite.rglob("*") if p.is_file()} == first
    assert f"offsite: verified {len(first)} file(s) on the remote side\n" in out

    # local retention removes the logical backup and the WAL; a new backup arrives
    old = next(e for e in read_entries(repo) if e.kind == "logical")
    shutil.rmtree(repo.backup_dir("logical", old.id))
    repo.entry_path(old.id).unlink()
    for wal in repo.wal.iterdir():
        wal.unlink()
    new = take(repo, prod_source, "logical")

    out = ok(pgvdrill_cli("sync", "--config", config, "--to", "rsync"))

    assert f"offsite: {new.id} (1 file(s) + catalog entry): 2 uploaded" in out
    assert all((offsite / key).is_file() for key in first)
    assert f"offsite: 2 file(s) uploaded, {len(local_files(repo)) - 2} skipped" in out


def test_sync_by_rsync_to_host_path_compares_by_checksum(
        repo: Repository, ops_config: Config, tmp_path: Path, pgvdrill_cli: Cli,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """host:path through rsync's remote-shell protocol; the remote shell is a local stand-in
    for ssh (it drops the host name and runs the remote rsync here)."""
    shell = tmp_path / "fake-ssh"
    shell.write_text('#!/bin/sh\nshift\nexec "$@"\n')
    shell.chmod(0o755)
    monkeypatch.setenv("RSYNC_RSH", str(shell))
    offsite = tmp_path / "offsite"
    config = ops_config(**{"sync.rsync": {"dest": f"backup-host:{offsite}"}})

    out = ok(pgvdrill_cli("sync", "--config", config))
    assert f"backup-host:{offsite}: verified {len(local_files(repo))} file(s)" in out

    wal = next(repo.wal.iterdir())
    (offsite / "wal" / wal.name).write_bytes(b"\0" * wal.stat().st_size)
    result = pgvdrill_cli("sync", "--config", config)

    assert result.returncode == 4, result.stdout + result.stderr
    assert (f"backup-host:{offsite}: wal/{wal.name} differs from the local file (rsync "
            "--checksum itemizes it as <fc") in result.stderr
    assert (offsite / "wal" / wal.name).read_bytes() == b"\0" * wal.stat().st_size


def test_sync_without_rsync_or_a_target_is_a_configuration_error(
        tmp_path: Path, pgvdrill_cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    Repository(tmp_path / "repo").ensure()
    config = tmp_path / "pgvdrill.toml"
    config.write_text('[repository]\npath = "repo"\n\n[sync.rsync]\ndest = "offsite"\n')

    result = pgvdrill_cli("sync", "--config", config, "--to", "s3")
    assert result.returncode == 2
    assert f"{config}: no [sync.s3] section to sync to" in result.stderr

    monkeypatch.setenv("PATH", str(tmp_path))
    result = pgvdrill_cli("sync", "--config", config)
    assert result.returncode == 2
    assert "[sync.rsync] needs the rsync program, which is not on PATH" in result.stderr
    assert "apt-get install rsync" in result.stderr
