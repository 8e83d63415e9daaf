"""Pure logic of `pgvdrill verify`: reading a damaged catalog, backup directories without
an entry, WAL gaps after a base backup, telling archive paths from backup ids (no
server: files made by hand)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from pgvdrill.cli.verify import is_path
from pgvdrill.config import load_config
from pgvdrill.errors import BackupError, ConfigError
from pgvdrill.ops.verify import VerifyRequest, verify_backups
from pgvdrill.ops.verify_repo import wal_problems
from pgvdrill.repository import Entry, Repository
from pgvdrill.repository.catalog import checksum_files, incomplete, read_catalog, write_entry


def entry(backup_id: str, kind: str = "physical", start_lsn: str | None = "0/3000028"
          ) -> Entry:
    return Entry(id=backup_id, kind=kind, started="2025-11-01T01:00:00+00:00",
                 finished="2025-11-01T01:00:05+00:00", seconds=5.0, source={}, settings={},
                 tools={}, files=[], start_lsn=start_lsn, end_lsn="0/3000120", timeline=1)


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return Repository(tmp_path / "repo").ensure()


def test_unreadable_entries_are_named_and_the_rest_read(repo: Repository) -> None:
    write_entry(repo, entry("physical-1"))
    (repo.catalog / "logical-2.json").write_text("{not json")
    (repo.catalog / "logical-3.json").write_text(json.dumps({**asdict(entry("x")),
                                                             "schema": "other/9"}))
    (repo.catalog / "logical-4.json").write_text(json.dumps(asdict(entry("logical-5"))))

    entries, unreadable = read_catalog(repo)

    assert [e.id for e in entries] == ["physical-1"]
    assert sorted(unreadable) == ["logical-2", "logical-3", "logical-4"]
    assert "logical-2.json is unreadable" in unreadable["logical-2"]
    assert "schema 'other/9'" in unreadable["logical-3"]
    assert "describes backup 'logical-5', not 'logical-4'" in unreadable["logical-4"]


def test_backup_directories_without_an_entry(repo: Repository) -> None:
    write_entry(repo, entry("physical-1"))
    for kind, name in [("physical", "physical-1"), ("physical", "physical-2"),
                       ("logical", "logical-3")]:
        repo.backup_dir(kind, name).mkdir()

    assert incomplete(repo, read_catalog(repo)[0]) == [
        repo.backup_dir("logical", "logical-3"), repo.backup_dir("physical", "physical-2")]


def test_a_wal_gap_after_the_backup_start_is_named(repo: Repository) -> None:
    assert wal_problems(repo, entry("physical-1")) == []  # no archiving: nothing to check
    for name in ("000000010000000000000002", "000000010000000000000003",
                 "000000010000000000000005"):
        (repo.wal / name).touch()

    assert wal_problems(repo, entry("physical-1")) == [
        f"physical-1: WAL archive {repo.wal}: segment 000000010000000000000004 is missing: "
        "recovery beyond 0/4000000 is impossible"]
    (repo.wal / "000000010000000000000004").touch()
    assert wal_problems(repo, entry("physical-1")) == []
    assert "no start LSN" in wal_problems(repo, entry("physical-2", start_lsn=None))[0]


@pytest.mark.parametrize(("argument", "path"), [
    ("logical-20251101T020000Z", False), ("physical-20251101T020000Z-2", False),
    ("/backup/full.dump", True), ("full_backup.dump", True), ("dumps/x", True)])
def test_archive_paths_and_backup_ids(argument: str, path: bool) -> None:
    assert is_path(argument) is path


PG16 = Path("/opt/pgvdrill-installations/pg16.2/pgserver/pginstall/bin")


def _fake_base_backup(repo: Repository, backup_id: str, major: int) -> None:
    """A catalogued plain base backup of PostgreSQL `major` holding only PG_VERSION (no
    manifest: the pg_verifybackup of its major calls it broken)."""
    directory = repo.backup_dir("physical", backup_id)
    directory.mkdir()
    (directory / "PG_VERSION").write_text(f"{major}\n")
    write_entry(repo, replace(entry(backup_id), files=checksum_files(directory)))


@pytest.mark.skipif(not (PG16 / "pg_verifybackup").is_file(),
                    reason=f"no PostgreSQL 16.2 installation in {PG16} "
                           "(scripts/install-installations.sh installs it)")
def test_verify_reads_each_base_backup_with_its_majors_tools_and_goes_on(
        repo: Repository, tmp_path: Path) -> None:
    """A 16 base backup is read by the configured 16.2 installation's pg_verifybackup (not
    refused by the embedded 18's); a 17 one, of no installation configured, is listed as
    not checked, naming what to configure, and the others are checked all the same."""
    _fake_base_backup(repo, "physical-16", 16)
    _fake_base_backup(repo, "physical-17", 17)
    path = tmp_path / "pgvdrill.toml"
    path.write_text(f'[repository]\npath = "{repo.root}"\n'
                    f'[drill]\ninstallations = ["{PG16}"]\n')
    said: list[str] = []

    code = verify_backups(load_config(path), VerifyRequest((), True, False, False, None),
                          said.append)

    text = "\n".join(said)
    assert code == BackupError.exit_code, text  # the 16 one is broken: no manifest
    [problem] = [line for line in said if line.startswith("problem: physical-16")]
    assert "backup_manifest" in problem, text  # 16's pg_verifybackup read it
    [unknown] = [line for line in said if line.startswith("unknown: physical-17")]
    assert "PostgreSQL 17" in unknown and "[drill] installations" in unknown, text
    assert not any(line.startswith("ok: physical-17") for line in said), text
    assert "1 not checked" in said[-1] and said[-1].startswith("FAILED"), text


def test_a_backup_no_installation_reads_is_unknown_not_verified(repo: Repository,
                                                                 tmp_path: Path) -> None:
    """Only a base backup of a major no installation offers: verify says `unknown` (not
    ok), exits 2 (configure an installation), never calls it broken."""
    _fake_base_backup(repo, "physical-17", 17)
    path = tmp_path / "pgvdrill.toml"
    path.write_text(f'[repository]\npath = "{repo.root}"\n')
    said: list[str] = []

    code = verify_backups(load_config(path), VerifyRequest((), True, False, False, None),
                          said.append)

    text = "\n".join(said)
    assert code == ConfigError.exit_code, text
    assert said[-1].startswith("unknown: 0 backup(s) ok, 1 not checked"), text
    assert not any(line.startswith("problem:") for line in said), text
