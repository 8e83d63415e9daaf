"""Fault drills: the repository is untrusted input (issue 13, class 1).

Anyone who can write the repository (the server's OS user owns wal/) can plant catalog
entries, names and symlinks. Each test tampers with its own copy of one repository made as
production makes it (fixtures.ops `archived_repo`: a source archiving into wal/, a logical
and a physical backup by `pgvdrill backup`'s own function), then runs pgvdrill as an
operator does (root, the CLI) and checks the exit code, the message naming the entry and
field or the file, and that nothing outside the repository changed (every file of an
`outside` directory, by content, before and after).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import Cli
from fixtures.ops import ArchivedRepo, conninfo
from fixtures.repository_copy import copy_repository, state
from pgvdrill.cluster import Cluster
from pgvdrill.wal.names import SEGMENT_RE

OLD = "2020-01-01T00:00:00+00:00"
FUTURE = "2030-01-01T00:00:00+00:00"  # retention --now: every backup but the newest expires


@pytest.fixture
def repo(archived_repo: ArchivedRepo, tmp_path: Path) -> Path:
    """This test's copy of the repository (without archive-wal's in-flight temporaries:
    the source may still be archiving)."""
    return copy_repository(archived_repo.repo, tmp_path / "repo")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the repository, with a root-only secret, that must not change."""
    path = tmp_path / "outside"
    path.mkdir()
    secret = path / "secret"
    secret.write_text("root's own file\n")
    secret.chmod(0o600)
    return path


def configure(tmp_path: Path, repo: Path, extra: str = "") -> Path:
    config = tmp_path / "pgvdrill.toml"
    config.write_text(f'[repository]\npath = "{repo}"\n\n{extra}')
    return config


@pytest.fixture
def run(pgvdrill_cli: Cli, tmp_path: Path, repo: Path) -> Cli:
    """`pgvdrill COMMAND --config <this test's configuration> ARGS...`."""

    def command(name: str, *args: str | Path, timeout: float = 300
                ) -> subprocess.CompletedProcess[str]:
        config = tmp_path / "pgvdrill.toml"
        if not config.exists():
            configure(tmp_path, repo)
        return pgvdrill_cli(*name.split(), "--config", config, *args, timeout=timeout)

    return command


def entry_path(repo: Path, backup_id: str) -> Path:
    return repo / "catalog" / f"{backup_id}.json"


def edit_entry(repo: Path, backup_id: str, change: Callable[[dict[str, Any]], object]) -> None:
    path = entry_path(repo, backup_id)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def old_copy(repo: Path, entry: ArchivedRepo, kind: str, new_id: str) -> Path:
    """A second, older backup of `kind` (a copy of the archived one, finished in 2020):
    retention --now 2030 deletes it. Its catalog entry's path."""
    original = entry.logical if kind == "logical" else entry.physical
    shutil.copytree(repo / kind / original.id, repo / kind / new_id, symlinks=True)
    data = json.loads(entry_path(repo, original.id).read_text())
    data.update(id=new_id, started=OLD, finished=OLD)
    entry_path(repo, new_id).write_text(json.dumps(data))
    return entry_path(repo, new_id)


def problems(result: subprocess.CompletedProcess[str]) -> str:
    return "\n".join(line for line in result.stdout.splitlines()
                     if line.startswith("problem: "))


def a_segment(repo: Path) -> str:
    return sorted(p.name for p in (repo / "wal").iterdir() if SEGMENT_RE.fullmatch(p.name))[-1]


# --- retention -------------------------------------------------------------------------

def test_fault_an_entry_with_id_dotdot_makes_retention_delete_nothing(
        archived_repo: ArchivedRepo, repo: Path, outside: Path, run: Cli) -> None:
    old_copy(repo, archived_repo, "logical", "logical-20200101T000000Z").rename(
        repo / "catalog" / "...json")  # file name and id both '..'
    edit_entry(repo, "..", lambda d: d.update(id=".."))
    before, around = state(repo), state(outside)

    result = run("retention", "--now", FUTURE, "--dry-run")
    real = run("retention", "--now", FUTURE)

    for done in (result, real):
        assert done.returncode == 4, done.stdout + done.stderr
        assert f"catalog entry {repo}/catalog/...json is invalid: field id: '..'" \
            in done.stderr
        assert "retention deleted nothing" in done.stderr
    assert state(repo) == before and state(outside) == around


def test_fault_a_symlinked_kind_directory_is_refused_and_its_target_survives(
        archived_repo: ArchivedRepo, repo: Path, outside: Path, run: Cli) -> None:
    old_copy(repo, archived_repo, "logical", "logical-20200101T000000Z")
    (repo / "logical").rename(outside / "logical")  # another disk's directory
    (repo / "logical").symlink_to(outside / "logical")
    around = state(outside)

    result = run("retention", "--now", FUTURE)

    assert result.returncode == 4, result.stdout + result.stderr
    assert f"{repo}/logical in backup repository {repo} is a symlink (to {outside}/logical)" \
        in result.stderr
    assert state(outside) == around
    verify = run("verify")
    assert verify.returncode == 4 and f"{repo}/logical in backup repository" in problems(verify)


@pytest.mark.parametrize("name", ["wal", "catalog", "physical"])
def test_fault_a_symlinked_repository_directory_is_named_by_verify(
        name: str, repo: Path, outside: Path, run: Cli) -> None:
    (repo / name).rename(outside / name)
    (repo / name).symlink_to(outside / name)
    around = state(outside)

    result = run("verify")

    assert result.returncode == 4, result.stdout + result.stderr
    assert (f"problem: {repo}/{name} in backup repository {repo} is a symlink (to "
            f"{outside}/{name})") in result.stdout
    assert state(outside) == around


def test_fault_a_symlinked_backup_directory_is_named_and_never_deleted_through(
        archived_repo: ArchivedRepo, repo: Path, outside: Path, run: Cli) -> None:
    old_copy(repo, archived_repo, "logical", "logical-20200101T000000Z")
    moved = outside / "logical-20200101T000000Z"
    (repo / "logical" / "logical-20200101T000000Z").rename(moved)
    (repo / "logical" / "logical-20200101T000000Z").symlink_to(moved)
    around = state(outside)

    verify = run("verify")
    retention = run("retention", "--now", FUTURE)

    assert verify.returncode == 4
    assert (f"problem: logical-20200101T000000Z: {repo}/logical/logical-20200101T000000Z in "
            f"backup repository {repo} is a symlink (to {moved})") in verify.stdout
    assert retention.returncode == 4, retention.stdout + retention.stderr
    assert "is a symlink" in retention.stderr
    assert state(outside) == around


def test_fault_an_unparsable_finished_fails_retention_and_latest_by_name(
        archived_repo: ArchivedRepo, repo: Path, outside: Path, run: Cli) -> None:
    old_copy(repo, archived_repo, "logical", "logical-20200101T000000Z")
    edit_entry(repo, "logical-20200101T000000Z", lambda d: d.update(finished="yesterday"))
    before = state(repo)

    retention = run("retention", "--now", FUTURE)
    latest = run("restore logical", "latest", "--target-dsn", "host=127.0.0.1 port=1 dbname=x")

    named = (f"catalog entry {repo}/catalog/logical-20200101T000000Z.json is invalid: field "
             "finished: 'yesterday' is not an ISO 8601 time with a zone")
    assert retention.returncode == 4 and named in retention.stderr, retention.stderr
    assert "Traceback" not in retention.stderr
    assert latest.returncode == 4 and named in latest.stderr, latest.stderr
    assert "latest is not chosen while the catalog holds invalid entries" in latest.stderr
    assert f"the newest valid one is {archived_repo.logical.id}" in latest.stderr
    assert state(repo) == before


def test_fault_a_symlinked_lock_file_never_creates_a_file_outside(
        repo: Path, outside: Path, run: Cli) -> None:
    (repo / ".lock").unlink()
    (repo / ".lock").symlink_to(outside / "created-by-root")
    around = state(outside)

    result = run("retention", "--now", FUTURE)

    assert result.returncode == 4, result.stdout + result.stderr
    assert f"{repo}/.lock in backup repository {repo} is a symlink" in result.stderr
    assert state(outside) == around


def test_fault_a_symlinked_repository_root_is_refused_with_the_real_path(
        repo: Path, tmp_path: Path, run: Cli) -> None:
    link = tmp_path / "link-to-repo"
    link.symlink_to(repo)
    configure(tmp_path, link)

    result = run("verify")

    said = result.stdout + result.stderr
    assert result.returncode == 4, said
    assert f"backup repository {link} is a symlink (to {repo})" in said
    assert f"set [repository] path to the real directory ({repo})" in said


# --- restore logical --------------------------------------------------------------------

def test_fault_an_artifact_outside_the_backup_is_never_restored_or_verified(
        archived_repo: ArchivedRepo, repo: Path, outside: Path, run: Cli) -> None:
    backup_id = archived_repo.logical.id
    dump = repo / "logical" / backup_id / "vector_db.dump"
    shutil.copy(dump, outside / "planted.dump")  # a valid dump, but not this backup's
    edit_entry(repo, backup_id,
               lambda d: d["extra"].update(artifact="../../../outside/planted.dump"))
    around = state(outside)

    verify = run("verify")
    restore = run("restore logical", backup_id, "--target-dsn",
                  "host=127.0.0.1 port=1 dbname=x")  # never reached

    named = (f"catalog entry {repo}/catalog/{backup_id}.json is invalid: field "
             "extra.artifact: '../../../outside/planted.dump' is not one of the backup's "
             "top-level files")
    assert verify.returncode == 4 and named in problems(verify)
    assert restore.returncode == 4 and named in restore.stderr, restore.stderr
    assert state(outside) == around


def test_fault_a_symlink_in_a_base_backup_is_refused_before_any_file_is_read(
        archived_repo: ArchivedRepo, repo: Path, outside: Path, tmp_path: Path,
        run: Cli) -> None:
    manifest = repo / "physical" / archived_repo.physical.id / "backup_manifest"
    manifest.rename(outside / "backup_manifest")
    manifest.symlink_to(outside / "backup_manifest")
    around = state(outside)

    result = run("restore physical", archived_repo.physical.id, "--pgdata", tmp_path / "pgdata")

    assert result.returncode == 4, result.stdout + result.stderr
    assert (f"{archived_repo.physical.id}: {manifest} is a symlink (to {outside}/"
            "backup_manifest): never followed or read") in result.stderr
    assert not (tmp_path / "pgdata").exists() and state(outside) == around


# --- WAL archive: restore-wal, sync, verify ------------------------------------------------

def test_fault_a_symlink_in_wal_to_a_root_only_file_is_never_served_or_uploaded(
        repo: Path, outside: Path, tmp_path: Path, run: Cli, pgvdrill_cli: Cli) -> None:
    name = "0000000100000000000000F0"
    (repo / "wal" / name).symlink_to(outside / "secret")
    offsite = tmp_path / "offsite"
    offsite.mkdir()
    configure(tmp_path, repo, f'[sync.rsync]\ndest = "{offsite}"\n')
    served = tmp_path / "RECOVERYXLOG"

    restore = pgvdrill_cli("restore-wal", name, served, "--source", repo / "wal")
    sync = run("sync", "--to", "rsync")
    verify = run("verify")

    assert restore.returncode != 0 and not served.exists(), restore.stderr
    assert "a symlink: never followed" in restore.stderr
    assert sync.returncode == 4, sync.stdout + sync.stderr
    assert f"REFUSED WAL archive {repo}/wal: {name} is a symlink (to {outside}/secret)" \
        in sync.stdout
    assert not (offsite / "wal" / name).exists() and (offsite / "wal").is_dir()
    assert "root's own file" not in "".join(
        p.read_text(errors="replace") for p in offsite.rglob("*") if p.is_file())
    assert f"WAL archive {repo}/wal: {name} is a symlink (to {outside}/secret)" \
        in problems(verify)


def test_fault_a_hard_link_in_wal_to_a_file_outside_is_never_served_or_uploaded(
        repo: Path, outside: Path, tmp_path: Path, run: Cli, pgvdrill_cli: Cli) -> None:
    """A segment whose file has another name outside the repository (planted by whoever
    owns wal/ where fs.protected_hardlinks is 0, or for a file that user may write): a
    valid segment, so only the link is wrong. Before: verified "ok", uploaded and served."""
    name = a_segment(repo)
    shutil.move(repo / "wal" / name, outside / name)
    os.link(outside / name, repo / "wal" / name)
    offsite = tmp_path / "offsite"
    offsite.mkdir()
    configure(tmp_path, repo, f'[sync.rsync]\ndest = "{offsite}"\n')
    served = tmp_path / "RECOVERYXLOG"
    around = state(outside)

    restore = pgvdrill_cli("restore-wal", name, served, "--source", repo / "wal")
    sync = run("sync", "--to", "rsync")
    verify = run("verify")

    linked = f"{name} is a hard link (1 of its 2 names outside this directory"
    assert restore.returncode != 0 and not served.exists(), restore.stderr
    assert "a hard link (1 of its 2 names outside this directory" in restore.stderr
    assert sync.returncode == 4, sync.stdout + sync.stderr
    assert f"REFUSED WAL archive {repo}/wal: {linked}" in sync.stdout
    assert not (offsite / "wal" / name).exists() and (offsite / "wal").is_dir()
    assert verify.returncode == 4 and f"WAL archive {repo}/wal: {linked}" in problems(verify)
    assert state(outside) == around


def test_fault_a_wrong_size_segment_is_named_and_never_served(
        repo: Path, tmp_path: Path, run: Cli, pgvdrill_cli: Cli) -> None:
    name = a_segment(repo)
    path = repo / "wal" / name
    path.write_bytes(path.read_bytes()[: 3 * 2**20])
    served = tmp_path / "RECOVERYXLOG"

    restore = pgvdrill_cli("restore-wal", name, served, "--source", repo / "wal")
    verify = run("verify")

    assert restore.returncode != 0 and not served.exists(), restore.stderr
    assert f"{3 * 2**20} bytes, not the segment size its header records ({2**24})" \
        in restore.stderr
    assert verify.returncode == 4
    assert (f"WAL archive {repo}/wal: WAL segment {name} has {3 * 2**20} bytes, and its "
            f"header records {2**24} bytes") in problems(verify)


def test_fault_a_fifo_and_a_stray_name_in_wal_are_named_without_hanging(
        repo: Path, tmp_path: Path, run: Cli) -> None:
    fifo = "0000000100000000000000F1"
    os.mkfifo(repo / "wal" / fifo)
    (repo / "wal" / "notes.txt").write_text("not WAL")
    offsite = tmp_path / "offsite"
    offsite.mkdir()
    configure(tmp_path, repo, f'[sync.rsync]\ndest = "{offsite}"\n')

    verify = run("verify", timeout=120)
    sync = run("sync", "--to", "rsync", timeout=120)

    assert verify.returncode == 4
    assert f"WAL archive {repo}/wal: {fifo} is a FIFO" in problems(verify)
    assert f"WAL archive {repo}/wal: notes.txt is not a WAL file name" in problems(verify)
    assert sync.returncode == 4 and f"REFUSED WAL archive {repo}/wal: {fifo} is a FIFO" \
        in sync.stdout
    assert not (offsite / "wal" / fifo).exists()


# --- catalog fields and backup files: verify names each ------------------------------------

def _set_file(index: int, **values: object) -> Callable[[dict[str, Any]], object]:
    return lambda d: d["files"][index].update(values)


FIELDS: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "negative-size": (_set_file(0, bytes=-1), "field files[0].bytes: -1 is not a size"),
    "huge-size": (_set_file(0, bytes=10**30), "field files[0].bytes: 10000000000000000000"),
    "float-size": (_set_file(0, bytes=1.5), "field files[0].bytes: 1.5 is not a size"),
    "sha256-not-hex": (_set_file(0, sha256="z" * 64), "field files[0].sha256: 'zzzz"),
    "path-with-dotdot": (_set_file(0, path="../../outside/secret"),
                         "field files[0].path: '../../outside/secret' has an empty, '.' or "
                         "'..' component"),
    "absolute-path": (_set_file(0, path="/etc/shadow"),
                      "field files[0].path: '/etc/shadow' is not a relative path"),
    "nan-seconds": (lambda d: d.update(seconds=float("nan")), "field seconds: nan is not"),
    "bad-lsn": (lambda d: d.update(start_lsn="0/../1"), "field start_lsn: '0/../1' is not"),
    "timeline-zero": (lambda d: d.update(timeline=0), "field timeline: 0 is not a timeline"),
    "unknown-kind": (lambda d: d.update(kind="../.."), "field kind: '../..' is not one of"),
    "time-without-zone": (lambda d: d.update(started="2025-11-01T01:00:00"),
                          "field started: '2025-11-01T01:00:00' is not an ISO 8601 time"),
    "unknown-field": (lambda d: d.update(command="rm -rf /"),
                      "field command: not a field of a catalog entry"),
    "time-past-9000": (lambda d: d.update(finished="9999-12-20T00:00:00+00:00"),
                       "field finished: '9999-12-20T00:00:00+00:00' is not a time between "
                       "1970-01-01 and 9000-01-01 (UTC)"),
    "time-before-year-1-in-utc": (lambda d: d.update(started="0001-01-01T00:00:00+01:00"),
                                  "field started: '0001-01-01T00:00:00+01:00' is not a time"),
    "started-after-finished": (lambda d: d.update(started="2099-01-01T00:00:00+00:00"),
                               "field started: '2099-01-01T00:00:00+00:00' is after finished"),
    "huge-seconds": (lambda d: d.update(seconds=1e300),
                     "field seconds: 1e+300 is not a duration"),
    "tiny-seconds": (lambda d: d.update(seconds=1e-300),
                     "field seconds: 1e-300 is not a duration"),
    "huge-source-bytes": (lambda d: d["extra"].update(source_bytes=2**64),
                          "field extra.source_bytes: 18446744073709551616 is not a size"),
    "huge-timeline": (lambda d: d.update(timeline=2**32),
                      "field timeline: 4294967296 is not a timeline"),
    "lsn-part-past-32-bits": (lambda d: d.update(end_lsn="0/100000000"),
                              "field end_lsn: '0/100000000' is not an LSN"),
}


@pytest.mark.parametrize("fault", list(FIELDS))
def test_fault_each_invalid_catalog_field_is_named_by_verify(
        fault: str, archived_repo: ArchivedRepo, repo: Path, outside: Path, run: Cli) -> None:
    change, expected = FIELDS[fault]
    backup_id = archived_repo.physical.id
    edit_entry(repo, backup_id, change)
    around = state(outside)

    result = run("verify")

    assert result.returncode == 4, result.stdout + result.stderr
    assert f"problem: catalog entry {repo}/catalog/{backup_id}.json is invalid: {expected}" \
        in result.stdout, result.stdout
    assert f"ok: {archived_repo.logical.id}" in result.stdout  # the other one still checked
    assert state(outside) == around


def test_fault_a_symlink_inside_a_backup_is_named_never_followed(
        archived_repo: ArchivedRepo, repo: Path, outside: Path, run: Cli) -> None:
    link = repo / "logical" / archived_repo.logical.id / "extra.sql"
    link.symlink_to(outside / "secret")

    result = run("verify")

    assert result.returncode == 4
    assert (f"problem: {archived_repo.logical.id}: {link} is a symlink (to {outside}/secret): "
            "never followed or read") in result.stdout


def test_fault_a_symlinked_catalog_entry_is_not_read(
        archived_repo: ArchivedRepo, repo: Path, outside: Path, run: Cli) -> None:
    entry = entry_path(repo, archived_repo.logical.id)
    entry.rename(outside / "entry.json")
    entry.symlink_to(outside / "entry.json")

    result = run("verify")

    assert result.returncode == 4
    assert f"catalog entry {entry} is unreadable" in problems(result)
    assert f"ok: {archived_repo.logical.id}" not in result.stdout


def test_fault_a_backup_of_another_cluster_is_named(
        archived_repo: ArchivedRepo, repo: Path, tmp_path: Path, prod_source: Cluster,
        run: Cli) -> None:
    ours = str(prod_source.query("SELECT system_identifier FROM pg_control_system()")[0][0])
    foreign = str(int(ours) + 1)
    edit_entry(repo, archived_repo.logical.id,
               lambda d: d["source"].update(system_identifier=foreign))
    configure(tmp_path, repo, f'[source]\nconninfo = "{conninfo(prod_source)}"\n')

    result = run("verify")

    assert result.returncode == 4, result.stdout + result.stderr
    assert (f"problem: {archived_repo.logical.id}: taken from database system {foreign}"
            in result.stdout)
    assert f"not the configured source's {ours}" in result.stdout


# --- times and numbers at the edge of their range -------------------------------------------

@pytest.mark.parametrize("finished", ["9999-12-20T00:00:00+00:00", "0001-01-01T00:00:00+01:00"])
def test_fault_an_edge_of_time_finished_makes_retention_delete_nothing(
        archived_repo: ArchivedRepo, repo: Path, outside: Path, run: Cli, finished: str
        ) -> None:
    """A time datetime can parse but not move: retention's monthly rule adds monthly_months
    to it and converts it to UTC (before: ValueError/OverflowError, a traceback, exit 1)."""
    planted = old_copy(repo, archived_repo, "logical", "logical-20200101T000000Z")
    edit_entry(repo, planted.stem, lambda d: d.update(started=OLD, finished=finished))
    before, around = state(repo), state(outside)

    result = run("retention", "--now", FUTURE)

    assert result.returncode == 4, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert (f"catalog entry {planted} is invalid: field finished: {finished!r} is not a time "
            "between 1970-01-01 and 9000-01-01 (UTC)") in result.stderr, result.stderr
    assert "retention deleted nothing" in result.stderr
    assert state(repo) == before and state(outside) == around


# --- a missing directory of the repository ---------------------------------------------------

MISSING_COMMANDS: dict[str, tuple[str, ...]] = {
    "verify": ("verify",),
    "sync": ("sync", "--to", "rsync"),
    "retention-dry-run": ("retention", "--dry-run"),
    "retention": ("retention",),
    "restore-logical": ("restore logical", "latest", "--target-dsn",
                        "host=/nonexistent dbname=nothing"),
    "restore-physical": ("restore physical", "latest", "--pgdata", "{tmp}/restored"),
    "restore-pitr": ("restore pitr", "latest", "--pgdata", "{tmp}/restored"),
}


def _missing_case(missing: str, command: str) -> Any:
    """Every command without the catalog, verify without each directory, and each restore
    without what it restores from run by default; the rest repeat those (full matrix)."""
    default = missing == "catalog" or command == "verify" or (command, missing) in {
        ("restore-logical", "logical"), ("restore-physical", "physical"),
        ("restore-pitr", "wal"), ("sync", "wal")}
    return pytest.param(missing, command, id=f"{missing}-{command}",
                        marks=[] if default else [pytest.mark.full])


@pytest.mark.parametrize(("missing", "command"), [
    _missing_case(m, c) for c in MISSING_COMMANDS for m in ("wal", "catalog", "logical",
                                                            "physical")])
def test_fault_a_missing_repository_directory_is_named_not_a_traceback(
        repo: Path, tmp_path: Path, run: Cli, missing: str, command: str) -> None:
    """A directory of the repository gone (an unmounted disk, an operator's mv): every
    command says so or goes on without it; none ends in a traceback (exit 1) or deletes
    anything (before: `sync` with wal/ missing: FileNotFoundError, a traceback)."""
    shutil.rmtree(repo / missing)
    offsite = tmp_path / "offsite"
    offsite.mkdir()
    configure(tmp_path, repo, f'[sync.rsync]\ndest = "{offsite}"\n')
    before = state(repo)
    name, *args = (a.format(tmp=tmp_path) for a in MISSING_COMMANDS[command])

    result = run(name, *args)

    output = result.stdout + result.stderr
    print(output)
    assert "Traceback" not in output
    assert result.returncode != 1, output
    assert state(repo) == before
    if command == "verify":
        assert result.returncode == 4
        assert f"problem: {repo}/{missing} in backup repository {repo} is missing" in output
    if command.startswith("retention"):  # with a directory gone, what it protects is unknown
        assert result.returncode == 4
        assert f"lacks {repo}/{missing}: retention deleted nothing" in output
    elif missing == "catalog" and command != "verify":
        assert result.returncode == 4
        assert f"{repo}/catalog is missing" in output
    kind = "logical" if command == "restore-logical" else "physical"
    if command.startswith("restore") and missing in ("catalog", kind):
        assert result.returncode == 4 and not (tmp_path / "restored").exists()
        assert f"{repo}/{missing}" in output
    if command == "restore-pitr" and missing == "wal":
        assert result.returncode == 4 and not (tmp_path / "restored").exists()
        assert f"the WAL archive {repo}/wal is missing" in output


# --- every problem at once ------------------------------------------------------------------

def test_fault_verify_names_every_problem_of_one_seeded_repository(
        archived_repo: ArchivedRepo, repo: Path, outside: Path, tmp_path: Path,
        prod_source: Cluster, run: Cli) -> None:
    """One repository holding every class-1 problem at once: `verify` (and `verify --deep`)
    names each of them, not only the first, and changes nothing (a FIFO: its own test)."""
    old_copy(repo, archived_repo, "logical", "logical-20200101T000000Z")
    edit_entry(repo, "logical-20200101T000000Z", lambda d: d.update(finished="yesterday"))
    old_copy(repo, archived_repo, "logical", "logical-20200102T000000Z")
    edit_entry(repo, "logical-20200102T000000Z",
               lambda d: d.setdefault("extra", {}).update(artifact="../../outside/secret"))
    entry_path(repo, "dotdot").write_text(
        entry_path(repo, archived_repo.logical.id).read_text().replace(
            f'"id": "{archived_repo.logical.id}"', '"id": ".."'))
    ours = str(prod_source.query("SELECT system_identifier FROM pg_control_system()")[0][0])
    edit_entry(repo, archived_repo.logical.id,
               lambda d: d["source"].update(system_identifier=str(int(ours) + 1)))
    wal = repo / "wal"
    (wal / "0000000100000000000000F0").symlink_to(outside / "secret")
    (wal / "notes.txt").write_text("not WAL\n")
    os.link(outside / "secret", wal / "0000000100000000000000F2")
    (wal / "0000000100000000000000F3").write_bytes((wal / a_segment(repo)).read_bytes()[:2**20])
    backup = repo / "physical" / archived_repo.physical.id
    (backup / "planted").symlink_to(outside)
    configure(tmp_path, repo, f'[source]\nconninfo = "{conninfo(prod_source)}"\n')
    before, kept = state(repo), state(outside)

    said = {deep: problems(result) for deep, result in
            ((False, run("verify")), (True, run("verify", "--deep")))}

    expected = ["logical-20200101T000000Z", "field finished",
                "logical-20200102T000000Z", "artifact",
                "dotdot", "field id",
                f"{archived_repo.logical.id}: taken from database system",
                "0000000100000000000000F0", "notes.txt",
                "0000000100000000000000F2", "0000000100000000000000F3", "planted"]
    for deep, text in said.items():
        missing = [what for what in expected if what not in text]
        assert not missing, (deep, missing, text)
    assert state(repo) == before and state(outside) == kept
