"""`pgvdrill backup logical|physical` as an operator runs it: against a running source
through its conninfo, into a repository, with a catalog entry that says exactly what is on
disk."""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import Cli
from pgvdrill.cluster import Cluster

PG15 = Path("/usr/lib/postgresql/15/bin")


def catalog(repo: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((repo / "catalog").glob("*.json"))]


def assert_entry_matches_disk(repo: Path, entry: dict[str, Any]) -> None:
    """Every file listed with its size and sha256, nothing else on disk; files 0600,
    directories 0700 (the entry itself too)."""
    directory = repo / entry["kind"] / entry["id"]
    on_disk = {str(p.relative_to(directory)): p for p in directory.rglob("*") if p.is_file()}
    assert sorted(on_disk) == [f["path"] for f in entry["files"]]
    for listed in entry["files"]:
        data = on_disk[listed["path"]].read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == \
            (listed["bytes"], listed["sha256"]), listed["path"]
    assert entry["size_bytes"] == sum(f["bytes"] for f in entry["files"])
    for path in [directory, *directory.rglob("*"), repo / "catalog" / f"{entry['id']}.json"]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path


def assert_source_facts(entry: dict[str, Any], source: Cluster) -> None:
    ident, version = source.query("SELECT system_identifier::text, "
                                  "current_setting('server_version') FROM pg_control_system()")[0]
    assert entry["source"]["system_identifier"] == ident
    assert entry["source"]["server_version"] == version
    assert entry["source"]["dbname"] == "vector_db"
    assert entry["source"]["pgvector"] == source.query(
        "SELECT extversion FROM pg_extension WHERE extname = 'vector'", "vector_db")[0][0]
    assert entry["started"] < entry["finished"] and entry["seconds"] > 0


@pytest.mark.parametrize(("logical", "artifact"), [
    ({"format": "custom", "compress": "9"}, "vector_db.dump"),  # the runbook's -F c -Z 9
    ({"format": "directory", "compress": "gzip:1", "jobs": 2}, "vector_db.dir")],
    ids=["custom-z9", "directory-j2"])
def test_backup_logical(prod_source: Cluster, ops_config: Callable[..., Path],
                        pgvdrill_cli: Cli, tmp_path: Path, logical: dict[str, Any],
                        artifact: str) -> None:
    config = ops_config(logical=logical)

    result = pgvdrill_cli("backup", "logical", "--config", config)

    assert result.returncode == 0, result.stderr
    assert "pg_dump: dumping contents of table" in result.stderr  # progress, streamed
    [entry] = catalog(tmp_path / "repo")
    assert entry["kind"] == "logical" and entry["id"] in result.stdout
    assert {f["path"].split("/")[0] for f in entry["files"]} == {artifact, "globals.sql"}
    assert entry["extra"]["globals"] == "globals.sql"  # the roles, beside the dump
    assert_entry_matches_disk(tmp_path / "repo", entry)
    assert_source_facts(entry, prod_source)
    assert entry["tools"]["pg_dump"].startswith(f"pg_dump (PostgreSQL) {prod_source.major}.")
    assert "pg_restore" in entry["tools"] and "pg_dumpall" in entry["tools"]
    assert {k: entry["settings"][k] for k in logical} == logical
    dump = tmp_path / "repo" / "logical" / entry["id"] / artifact
    assert entry["settings"]["argv"][1:7] == ["--format", logical["format"], "--file",
                                              str(dump), "--compress", logical["compress"]]
    assert entry["start_lsn"] and entry["end_lsn"]
    assert entry["extra"]["source_bytes"] > 0


@pytest.mark.parametrize("form", ["tar", "plain"])
def test_backup_physical(prod_source: Cluster, ops_config: Callable[..., Path],
                         pgvdrill_cli: Cli, tmp_path: Path, form: str) -> None:
    config = ops_config(physical={"format": form})

    result = pgvdrill_cli("backup", "physical", "--config", config)

    assert result.returncode == 0, result.stderr
    assert "kB (100%)" in result.stderr  # pg_basebackup --progress, streamed
    [entry] = catalog(tmp_path / "repo")
    assert entry["kind"] == "physical"
    assert_entry_matches_disk(tmp_path / "repo", entry)
    assert_source_facts(entry, prod_source)
    manifest = json.loads((tmp_path / "repo" / "physical" / entry["id"] / "backup_manifest")
                          .read_text())
    [wal] = manifest["WAL-Ranges"]
    assert (entry["timeline"], entry["start_lsn"], entry["end_lsn"]) == \
        (wal["Timeline"], wal["Start-LSN"], wal["End-LSN"])
    assert set(entry["tools"]) == {"pg_basebackup", "pg_verifybackup", "pg_waldump"}
    assert entry["extra"]["format"] == form
    names = {f["path"] for f in entry["files"]}
    assert {"base.tar", "pg_wal.tar"} <= names if form == "tar" else "PG_VERSION" in names


def test_failed_backup_leaves_an_incomplete_directory_and_no_entry(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        tmp_path: Path) -> None:
    """A backup role without SELECT on a table (a common mistake): pg_dump fails after it
    started writing; the directory stays without a catalog entry, and the message says so."""
    info = prod_source.conninfo
    password = Path(info.passfile).read_text().split(":")[-1].strip()
    prod_source.query(f"CREATE ROLE backup_reader LOGIN PASSWORD '{password}'")
    passfile = tmp_path / "reader.pgpass"
    passfile.write_text(f"*:*:*:backup_reader:{password}\n")
    passfile.chmod(0o600)
    config = ops_config()
    config.write_text(config.read_text().replace(
        f"user={info.user} ", "user=backup_reader ").replace(str(info.passfile), str(passfile)))

    result = pgvdrill_cli("backup", "logical", "--config", config)

    assert result.returncode == 3, result.stderr
    assert "permission denied for table" in result.stderr and "stays in" in result.stderr
    [left] = list((tmp_path / "repo" / "logical").iterdir())
    assert str(left) in result.stderr
    assert catalog(tmp_path / "repo") == []


@pytest.mark.skipif(not (PG15 / "pg_dump").is_file(), reason="needs PostgreSQL 15 client tools")
def test_client_tools_older_than_the_server_are_refused(
        ops_config: Callable[..., Path], pgvdrill_cli: Cli, tmp_path: Path) -> None:
    config = ops_config()
    config.write_text(config.read_text().replace("[repository]",
                                                 f'pg_bin = "{PG15}"\n\n[repository]'))

    result = pgvdrill_cli("backup", "physical", "--config", config)
    logical = pgvdrill_cli("backup", "logical", "--config", config)

    assert result.returncode == 2, result.stderr
    assert "needs PostgreSQL 18's pg_basebackup, pg_verifybackup and pg_waldump; the client " \
           f"tools in {PG15.resolve()} are PostgreSQL 15." in result.stderr
    assert "set [source] pg_bin to PostgreSQL 18's bin directory" in result.stderr
    assert not any((tmp_path / "repo" / "physical").iterdir())
    assert logical.returncode == 2, logical.stderr
    assert "older than the server" in logical.stderr and "pg_bin" in logical.stderr
    assert not any((tmp_path / "repo" / "logical").iterdir())
