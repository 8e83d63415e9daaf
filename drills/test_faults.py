"""The fault catalogue (docs/faults.md): faults no other drill injects, each shown to end in
a clear message, a non-zero exit of the `pgvdrill` command, and nothing lost.

Disk full (a small tmpfs as the repository or the WAL archive), the source killed while a
backup runs, a wrong password, an unreachable source, an archive the server cannot write
to and then can again, a WAL segment of another database system in the archive, hostile
names given to archive-wal, a configuration that is not text.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from fixtures.cli import Cli
from fixtures.ops import ArchivedRepo, conninfo
from fixtures.processes import wait_while_running
from pgvdrill import osuser
from pgvdrill.cluster import Cluster
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.repository import Repository
from pgvdrill.wal.archiving import enable_archiving, switch_and_wait
from pgvdrill.wal.names import SEGMENT_RE, Segment, parse_lsn

pytestmark = pytest.mark.local_server("faults are injected into local server processes, "
                                      "files and mounts")

Done = subprocess.CompletedProcess[str]


def failed(result: Done, code: int, *words: str) -> None:
    """Exit `code`, every word on stderr, no traceback."""
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def catalog(repo: Path) -> list[str]:
    return sorted(p.name for p in (repo / "catalog").glob("*"))


def state(root: Path) -> dict[str, str]:
    """Every file below `root` with its sha256."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def source_config(path: Path, repo: Path, info: str, **physical: str) -> Path:
    lines = ["[source]", f'conninfo = "{info}"', "", "[repository]", f'path = "{repo}"', ""]
    if physical:
        lines += ["[physical]", *(f'{k} = "{v}"' for k, v in physical.items()), ""]
    path.write_text("\n".join(lines))
    return path


@contextlib.contextmanager
def tmpfs(path: Path, size: str, owner: str | None = None) -> Iterator[Path]:
    """A tmpfs of `size` mounted on `path` (owned by `owner`), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                           str(path)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        osuser.chown_tree(path, owner)
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


# -- disk full during a backup --------------------------------------------------------------

@pytest.mark.parametrize("kind", ["logical", "physical"])
def test_fault_disk_full_during_backup(prod_source: Cluster, pgvdrill_cli: Cli,
                                       tmp_path: Path, kind: str) -> None:
    """The repository on a 2 MiB filesystem: the tool fails with ENOSPC, pgvdrill exits 3
    saying so, no catalog entry is written, what the repository held before stays."""
    with tmpfs(tmp_path / "repo", "2m") as repo:
        Repository(repo).ensure()
        kept = repo / "wal" / "000000010000000000000001"
        kept.write_bytes(os.urandom(256 * 1024))  # an archived segment already there
        before = state(repo)
        config = source_config(tmp_path / "pgvdrill.toml", repo, conninfo(prod_source))

        result = pgvdrill_cli("backup", kind, "--config", config)

        failed(result, 3, "No space left on device", "without a catalog entry")
        assert catalog(repo) == []
        assert {k: v for k, v in state(repo).items() if k in before} == before
        [left] = list((repo / kind).iterdir())
        assert str(left) in result.stderr  # the incomplete backup is named, not removed
    assert prod_source.query("SELECT count(*) FROM pg_replication_slots") == [(0,)]


# -- the source killed during a backup ------------------------------------------------------

def _wait(condition: Callable[[], bool], what: str, proc: subprocess.Popen[str],
          timeout: float = 60) -> None:
    wait_while_running(condition, what, proc, who="the backup", timeout=timeout, interval=0.05)


@pytest.mark.parametrize("kind", ["logical", "physical"])
def test_fault_source_killed_during_backup(prod_source: Cluster, tmp_path: Path,
                                           kind: str) -> None:
    """SIGKILL of the source's postmaster while pg_dump waits for its table locks (a
    session holds one) or while pg_basebackup streams (throttled by max_rate): exit 3 with
    the tool's own words, no catalog entry; the source recovers with its data."""
    rows = prod_source.query("SELECT count(*) FROM documents", SOURCE_DB)
    config = source_config(tmp_path / "pgvdrill.toml", tmp_path / "repo", conninfo(prod_source),
                           **({"max_rate": "32k"} if kind == "physical" else {}))
    blocker = prod_source.connect(SOURCE_DB, autocommit=False)
    if kind == "logical":
        blocker.execute("LOCK TABLE documents IN ACCESS EXCLUSIVE MODE")
    proc = subprocess.Popen([sys.executable, "-m", "pgvdrill.cli", "backup", kind, "--config",
                             str(config)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        underway = ("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' "
                    "AND wait_event_type = 'Lock'" if kind == "logical" else
                    "SELECT (SELECT count(*) FROM pg_stat_progress_basebackup "
                    "WHERE phase = 'streaming database files' AND backup_streamed > 0) "
                    "+ (SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming')")
        expected = [(1,)] if kind == "logical" else [(2,)]  # files and WAL both streaming
        _wait(lambda: prod_source.query(underway) == expected, "it was underway", proc)
        prod_source.crash()
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        with contextlib.suppress(psycopg.Error):
            blocker.close()

    failed(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), 3,
           "pg_dump failed" if kind == "logical" else "pg_basebackup failed",
           "without a catalog entry")
    assert "server closed the connection unexpectedly" in stderr or \
        "terminating connection" in stderr, stderr
    assert catalog(tmp_path / "repo") == []
    prod_source.start()  # crash recovery
    assert prod_source.query("SELECT count(*) FROM documents", SOURCE_DB) == rows
    assert prod_source.query("SELECT count(*) FROM pg_replication_slots") == [(0,)]


# -- an unreachable source, a wrong password -------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_fault_source_unreachable(pgvdrill_cli: Cli, tmp_path: Path) -> None:
    info = f"host=127.0.0.1 port={_free_port()} user=backup dbname=vector_db connect_timeout=5"
    config = source_config(tmp_path / "pgvdrill.toml", tmp_path / "repo", info)

    result = pgvdrill_cli("backup", "logical", "--config", config)

    failed(result, 2, "cannot connect to", "Connection refused", "hint: check the conninfo")
    assert catalog(tmp_path / "repo") == [] and not any((tmp_path / "repo" / "logical")
                                                         .iterdir())


def test_fault_wrong_password(prod_source: Cluster, pgvdrill_cli: Cli, tmp_path: Path
                              ) -> None:
    info = prod_source.conninfo
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:*:{info.user}:not-the-password\n")
    passfile.chmod(0o600)
    config = source_config(tmp_path / "pgvdrill.toml", tmp_path / "repo",
                           conninfo(prod_source).replace(str(info.passfile), str(passfile)))

    result = pgvdrill_cli("backup", "physical", "--config", config)

    failed(result, 2, "cannot connect to", "password authentication failed",
           "the password in ~/.pgpass, PGPASSFILE")
    assert "not-the-password" not in result.stderr
    assert catalog(tmp_path / "repo") == [] and not any((tmp_path / "repo" / "physical")
                                                         .iterdir())


# -- the WAL archive unwritable or full, then fixed ------------------------------------------

def _archiver(cluster: Cluster) -> tuple[int, str | None]:
    failed_count, last_failed = cluster.query(
        "SELECT failed_count, last_failed_wal FROM pg_stat_archiver")[0]
    return int(str(failed_count)), str(last_failed) if last_failed else None


def _emit(cluster: Cluster) -> None:
    cluster.query("SELECT pg_logical_emit_message(false, 'pgvdrill', 'fault')")


def _new_segment(cluster: Cluster) -> str:
    """Write a little WAL, close the segment; its name."""
    _emit(cluster)
    return str(cluster.query("SELECT pg_walfile_name(pg_switch_wal())")[0][0])


@pytest.mark.parametrize("fault", ["unwritable", "full"])
def test_fault_archive_unwritable_or_full_then_fixed(
        prod_source: Cluster, wal_workdir: Path, fault: str) -> None:
    """archive-wal fails (Permission denied / No space left), PostgreSQL keeps the segments
    (.ready) and retries; once the archive is fixed every segment arrives, in order, whole."""
    user = osuser.server_user()
    mount = Path(tempfile.mkdtemp(dir=wal_workdir)) / "archive"
    mount.parent.chmod(0o711)  # the server's OS user goes through it
    with tmpfs(mount, "64m", user) if fault == "full" else contextlib.nullcontext(mount):
        if fault == "unwritable":
            mount.mkdir(mode=0o700)
            osuser.chown_tree(mount, user)
        enable_archiving(prod_source, mount)
        first = switch_and_wait(prod_source, mount)
        # the file appears before archive-wal returns (it fsyncs the directory after the
        # link): break the archive only once PostgreSQL has the success, or the failure
        # counted is that segment's
        deadline = time.monotonic() + 60
        while prod_source.query("SELECT last_archived_wal FROM pg_stat_archiver") != \
                [(first,)]:
            assert time.monotonic() < deadline, f"{first} was never acknowledged"
            time.sleep(0.05)
        if fault == "unwritable":
            mount.chmod(0o000)
        else:  # the rest of the filesystem taken by something else
            filler = mount / "filler"
            with filler.open("wb") as handle, contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * 2**20)
            filler.chmod(0o600)  # not a WAL name: archive-wal and recovery ignore it
        stuck = [_new_segment(prod_source) for _ in range(2)]

        deadline = time.monotonic() + 30
        while _archiver(prod_source)[0] == 0:
            assert time.monotonic() < deadline, "archive_command never failed"
            time.sleep(0.1)
        failures, last_failed = _archiver(prod_source)
        assert last_failed == stuck[0]
        assert {f"{s}.ready" for s in stuck} <= set(prod_source.list_dir("pg_wal/archive_status"))
        log = prod_source.server_log(200)
        assert "cannot archive" in log and ("Permission denied" if fault == "unwritable"
                                            else "No space left on device") in log
        assert "archive command failed with exit code" in log

        if fault == "unwritable":
            mount.chmod(0o700)
        else:
            filler.unlink()
        last = _new_segment(prod_source)  # wakes the archiver
        # acknowledged, not only present: archive-wal has returned (a temporary it used
        # was gone only then; the docker backend's archive-wal.sh still uses one)
        deadline = time.monotonic() + 60
        while prod_source.query("SELECT last_archived_wal FROM pg_stat_archiver") != \
                [(last,)]:
            assert time.monotonic() < deadline, prod_source.server_log(40)
            time.sleep(0.1)

        start, end = Segment.from_name(first), Segment.from_name(last)
        assert sorted(p.name for p in mount.iterdir()) == [
            Segment(start.timeline, n).name for n in range(start.number, end.number + 1)]
        for name in [first, *stuck, last]:
            assert (mount / name).stat().st_size == 16 * 2**20, name
        assert not any(p.name.startswith(".") or not SEGMENT_RE.fullmatch(p.name)
                       for p in mount.iterdir())  # no temporary left behind
        assert _archiver(prod_source)[0] >= failures
        prod_source.stop()  # archiving off again before the tmpfs goes


# -- a WAL segment of another database system ------------------------------------------------

def test_fault_wal_segment_from_another_cluster(
        archived_repo: ArchivedRepo, foreign_segment: bytes, pgvdrill_cli: Cli, tmp_path: Path
) -> None:
    """The segment after the backup's start replaced by one of another database system
    (same name, as two servers archiving into one directory would leave it). PostgreSQL
    rejects such a page ("WAL file is from different database system"), so recovery would
    end there (not replayed here); pgvdrill verify names the segment and both system
    identifiers, exit 4, and removes nothing."""
    repo = Path(shutil.copytree(archived_repo.repo, tmp_path / "repo", symlinks=True))
    entry = archived_repo.physical
    start = Segment.containing(parse_lsn(entry.start_lsn or ""), entry.timeline or 1)
    name = Segment(start.timeline, start.number + 1).name
    (repo / "wal" / name).write_bytes(foreign_segment)
    config = tmp_path / "pgvdrill.toml"
    config.write_text(f'[repository]\npath = "{repo}"\n')

    result = pgvdrill_cli("verify", "--config", config)

    assert result.returncode == 4, result.stdout + result.stderr
    ident = entry.source["system_identifier"]
    assert f"problem: {entry.id}: WAL archive {repo}/wal: segment {name} is from another " \
           f"database system (system identifier " in result.stdout, result.stdout
    assert f"the backup's is {ident})" in result.stdout
    assert (repo / "wal" / name).read_bytes() == foreign_segment  # nothing removed

    renamed = Segment(start.timeline, start.number + 2).name  # own system, wrong place
    (repo / "wal" / name).write_bytes((archived_repo.repo / "wal" / name).read_bytes())
    (repo / "wal" / renamed).write_bytes((archived_repo.repo / "wal" / start.name).read_bytes())
    result = pgvdrill_cli("verify", "--config", config)
    assert result.returncode == 4, result.stdout
    assert f"segment {renamed} holds the WAL of " in result.stdout, result.stdout


def test_fault_good_archive_verifies(archived_repo: ArchivedRepo, pgvdrill_cli: Cli,
                                     tmp_path: Path) -> None:
    """The same repository untouched: the header check finds nothing (it can fail only on
    damage)."""
    config = tmp_path / "pgvdrill.toml"
    config.write_text(f'[repository]\npath = "{archived_repo.repo}"\n')

    result = pgvdrill_cli("verify", "--config", config)

    assert result.returncode == 0, result.stdout + result.stderr


# -- hostile names given to archive-wal / restore-wal ----------------------------------------

@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "../000000010000000000000003",
                                  "000000010000000000000003/../../x"])
def test_fault_hostile_wal_names_via_the_cli(pgvdrill_cli: Cli, tmp_path: Path, name: str
                                             ) -> None:
    archive = tmp_path / "a" / "b" / "archive"
    archive.mkdir(parents=True)
    segment = tmp_path / "segment"
    segment.write_bytes(os.urandom(8192))
    passwd = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
    before = state(tmp_path)

    stored = pgvdrill_cli("archive-wal", segment, name, "--dest", archive)
    fetched = pgvdrill_cli("restore-wal", name, tmp_path / "RECOVERYXLOG", "--source", archive)

    failed(stored, 2, "refusing WAL file name", "hint: pass PostgreSQL's %f")
    assert fetched.returncode != 0 and "Traceback" not in fetched.stderr
    assert state(tmp_path) == before  # nothing written anywhere
    assert hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest() == passwd


# -- a configuration that cannot be read, or bad values --------------------------------------

@pytest.mark.parametrize(("content", "expected"), [
    (b"\xff\xfe[repository]\n", "not UTF-8 text"),
    (None, "cannot read configuration"),  # a directory
    (b'[repository]\npath = "r"\n[retention]\nlogical_days = -7\n',
     "[retention] logical_days = -7: not a number >= 0"),
    (b'[repository]\npath = "r"\n[physical]\nformat = "zip"\n', "choose one of: tar, plain"),
])
def test_fault_unreadable_or_bad_configuration(pgvdrill_cli: Cli, tmp_path: Path,
                                               content: bytes | None, expected: str) -> None:
    config = tmp_path / "pgvdrill.toml"
    if content is None:
        config.mkdir()
    else:
        config.write_bytes(content)

    for args in (["verify"], ["backup", "logical"]):
        failed(pgvdrill_cli(*args, "--config", config), 2, expected, str(config), "hint:")
    assert not (tmp_path / "r").exists()  # nothing created
