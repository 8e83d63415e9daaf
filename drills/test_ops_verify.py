"""`pgvdrill verify` of a repository: a good one passes; each kind of damage fails with
exit 4 and a line naming the backup and the file.

One repository per module (fixtures.ops `archived_repo`), as production makes it: a source
archiving into the repository's wal/, a logical and a physical backup by `pgvdrill backup`'s
own function, more WAL archived after them. Each test damages its own copy.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.cli import Cli
from fixtures.ops import ArchivedRepo
from pgvdrill.repository.catalog import sha256_of
from pgvdrill.wal.names import Segment, parse_lsn


@pytest.fixture
def repo(archived_repo: ArchivedRepo, tmp_path: Path) -> Path:
    """This test's copy of the repository."""
    return Path(shutil.copytree(archived_repo.repo, tmp_path / "repo", symlinks=True))


@pytest.fixture
def verify(repo: Path, pgvdrill_cli: Cli, tmp_path: Path) -> Cli:
    config = tmp_path / "pgvdrill.toml"
    config.write_text(f'[repository]\npath = "{repo}"\n')
    return lambda *args: pgvdrill_cli("verify", "--config", config, *args)


def problems(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("problem: ")]


def test_a_good_repository_verifies(archived_repo: ArchivedRepo, verify: Cli) -> None:
    result = verify()

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok: {archived_repo.logical.id} (logical" in result.stdout
    assert f"ok: {archived_repo.physical.id} (physical" in result.stdout
    assert "ok: 2 backup(s) ok, 0 problem(s), 0 warning(s)" in result.stdout


def test_one_backup_by_id(archived_repo: ArchivedRepo, verify: Cli) -> None:
    result = verify(archived_repo.physical.id)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 backup(s) ok" in result.stdout and archived_repo.logical.id not in result.stdout


def test_an_unknown_id_is_bad_input(verify: Cli) -> None:
    result = verify("logical-19990101T000000Z")

    assert result.returncode == 2
    assert "no backup logical-19990101T000000Z in the catalog" in result.stderr


def _dump(repo: Path, archived_repo: ArchivedRepo) -> Path:
    return repo / "logical" / archived_repo.logical.id / "vector_db.dump"


def _flip_byte(repo: Path, archived_repo: ArchivedRepo) -> None:
    data = bytearray(_dump(repo, archived_repo).read_bytes())
    data[len(data) // 2] ^= 0xFF
    _dump(repo, archived_repo).write_bytes(bytes(data))


def _truncate(repo: Path, archived_repo: ArchivedRepo) -> None:
    path = _dump(repo, archived_repo)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _wal_after_backup(archived_repo: ArchivedRepo) -> str:
    start = Segment.containing(parse_lsn(archived_repo.physical.start_lsn or ""),
                               archived_repo.physical.timeline or 0)
    return Segment(start.timeline, start.number + 1).name


def _truncate_and_fix_the_entry(repo: Path, archived_repo: ArchivedRepo) -> None:
    """Truncate the dump and rewrite its catalog entry to match: only reading the dump
    back can find the damage now."""
    _truncate(repo, archived_repo)
    path = repo / "catalog" / f"{archived_repo.logical.id}.json"
    data = json.loads(path.read_text())
    dump = _dump(repo, archived_repo)
    data["files"] = [{**f, "bytes": dump.stat().st_size, "sha256": sha256_of(dump)}
                     if f["path"] == dump.name else f for f in data["files"]]
    path.write_text(json.dumps(data))


def _globals_emptied_and_the_entry_fixed(repo: Path, archived_repo: ArchivedRepo) -> None:
    """Empty the globals beside the dump and rewrite its catalog entry to match: only
    reading the file can find that it holds no role."""
    globals_sql = repo / "logical" / archived_repo.logical.id / "globals.sql"
    globals_sql.write_text("--\n-- PostgreSQL database cluster dump\n--\n")
    path = repo / "catalog" / f"{archived_repo.logical.id}.json"
    data = json.loads(path.read_text())
    data["files"] = [{**f, "bytes": globals_sql.stat().st_size,
                      "sha256": sha256_of(globals_sql)}
                     if f["path"] == "globals.sql" else f for f in data["files"]]
    path.write_text(json.dumps(data))


Damage = Callable[[Path, ArchivedRepo], object]
# how to damage a copy of the repository, and (formatted with repo=) the problem expected
DAMAGES: dict[str, tuple[Damage, Callable[[ArchivedRepo], str]]] = {
    "byte-corrupted": (
        _flip_byte, lambda m: f"{m.logical.id}: file vector_db.dump changed (sha256 differs)"),
    "dump-truncated": (
        _truncate, lambda m: f"{m.logical.id}: file vector_db.dump has "),
    "file-removed": (
        lambda r, m: (r / "physical" / m.physical.id / "pg_wal.tar").unlink(),
        lambda m: f"{m.physical.id}: file pg_wal.tar is missing"),
    "file-added": (
        lambda r, m: (r / "physical" / m.physical.id / "notes.txt").write_text("x"),
        lambda m: f"{m.physical.id}: file notes.txt is not in the catalog"),
    "wal-segment-removed": (
        lambda r, m: (r / "wal" / _wal_after_backup(m)).unlink(),
        lambda m: f"{m.physical.id}: WAL archive {{repo}}/wal: segment "
                  f"{_wal_after_backup(m)} is missing"),
    "catalog-entry-unreadable": (
        lambda r, m: (r / "catalog" / f"{m.logical.id}.json").write_text("{truncated"),
        lambda m: f"catalog entry {{repo}}/catalog/{m.logical.id}.json is unreadable"),
    "history-file-malformed": (  # untrusted input: named with its line, no traceback
        lambda r, m: (r / "wal" / "00000002.history").write_bytes(b"1\tnot-an-lsn\tx\n"),
        lambda m: "WAL archive {repo}/wal: timeline history file 00000002.history line 1 "
                  "is not '<parent timeline> <switch LSN> <reason>'"),
    "dump-unreadable-behind-a-matching-entry": (
        _truncate_and_fix_the_entry,
        lambda m: f"{m.logical.id}: backup {{repo}}/logical/{m.logical.id}/vector_db.dump "
                  "cannot be read"),
    "globals-changed": (
        lambda r, m: (r / "logical" / m.logical.id / "globals.sql").write_text("CREATE ROLE x;"),
        lambda m: f"{m.logical.id}: file globals.sql has "),
    "globals-without-roles-behind-a-matching-entry": (
        _globals_emptied_and_the_entry_fixed,
        lambda m: f"{m.logical.id}: globals.sql holds no CREATE ROLE"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damage_is_a_problem_naming_backup_and_file(
        archived_repo: ArchivedRepo, repo: Path, verify: Cli, damage: str) -> None:
    change, expected = DAMAGES[damage]
    change(repo, archived_repo)

    result = verify()

    assert result.returncode == 4, result.stdout + result.stderr
    found = problems(result.stdout)
    assert any(expected(archived_repo).format(repo=repo) in line for line in found), found
    assert "FAILED" in result.stdout.splitlines()[-1]


def test_an_incomplete_backup_directory_warns_and_fails_only_when_strict(
        repo: Path, verify: Cli) -> None:
    (repo / "physical" / "physical-20990101T000000Z").mkdir()

    lenient, strict = verify(), verify("--strict")

    assert lenient.returncode == 0, lenient.stdout
    assert strict.returncode == 4, strict.stdout
    for result in (lenient, strict):
        assert f"warning: {repo}/physical/physical-20990101T000000Z: backup directory " \
               "without a catalog entry" in result.stdout


def test_the_archives_timelines_are_listed_and_an_unknown_source_is_said(
        repo: Path, verify: Cli) -> None:
    result = verify("--all")

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"timelines in {repo}/wal: 1 (the first; " in result.stdout
    assert "the source's current timeline is unknown (" in result.stdout
    assert "has no [source]): stray timeline branches cannot be told apart" in result.stdout
