"""Interrupts never leave work running or hang (issue 13, class 3), and a program started
for another OS user runs with that user's own groups (class 7).

Each long command is killed with SIGINT, SIGTERM or SIGKILL at a point it has observably
reached (the backup directory created, pg_basebackup streaming files and WAL through its
temporary slot, pg_dump or pg_restore waiting for a lock a session holds), never after a
sleep. Then: pgvdrill exited promptly (128 + the signal, or killed), no process of any
group it started is left, the source has no slot, no walsender and no backend of the tool
left, the repository holds no catalog entry for the partial backup, which is private
(0700/0600) and reported by `pgvdrill verify` as incomplete, and the next backup works.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.cli import Cli, start_cli
from fixtures.ops import conninfo
from fixtures.options import DrillOptions
from fixtures.processes import read_to_first_backup, reaped, start_drill, wait_while_running
from pgvdrill import osuser
from pgvdrill.cluster import Backend, Cluster
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.proc import runner
from pgvdrill.proc.wait import poll_until
from pgvdrill.repository import Repository

pytestmark = pytest.mark.local_server("signals are sent to local pgvdrill processes and the "
                                      "process table is read")

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
TOOLS = ("pg_dump", "pg_basebackup", "pg_restore", "pg_dumpall")


def _stat_fields(pid: int) -> list[bytes] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, pgrp, session...)."""
    try:
        return (Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split())
    except (OSError, IndexError):
        return None


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def children_groups(pid: int) -> set[int]:
    """The process groups of `pid`'s children (the tools pgvdrill runs lead their own)."""
    groups = set()
    for child in _pids():
        fields = _stat_fields(child)
        if fields is not None and int(fields[1]) == pid:
            groups.add(int(fields[2]))
    return groups - {_own_group(pid)}


def _own_group(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[2]) if fields else -1


def running(groups: set[int], mark: str) -> list[str]:
    """Live processes (not zombies) in `groups`, or whose command line holds `mark`."""
    found = []
    for pid in _pids():
        fields = _stat_fields(pid)
        if fields is None or fields[0] in (b"Z", b"X"):
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(fields[2]) in groups or mark in cmdline:
            found.append(f"{pid}: {cmdline[:200]}")
    return found


def wait_for(condition: Callable[[], bool], what: str, proc: subprocess.Popen[str],
             timeout: float = 120) -> None:
    """Poll `condition` until it holds; fail if pgvdrill ended first or after `timeout`."""
    wait_while_running(condition, what, proc, who="pgvdrill", timeout=timeout, interval=0.02)


def settle(condition: Callable[[], bool], timeout: float = 60) -> bool:
    """Whether `condition` holds within `timeout` (what a killed process leaves goes away
    asynchronously: the watchdog, the server noticing a closed connection)."""
    return poll_until(condition, timeout=timeout) is not None


def interrupt(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[set[int], str]:
    """Send `sig` to pgvdrill; the process groups it had started, and its stderr, once it
    has exited (promptly: within 60 s, however long its tools would have run)."""
    groups = children_groups(proc.pid)
    proc.send_signal(sig)
    try:
        _, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        pytest.fail(f"pgvdrill hung after {sig.name}: {stderr[-3000:]}")
    expected = -signal.SIGKILL if sig == signal.SIGKILL else 128 + sig
    assert proc.returncode == expected, stderr[-3000:]
    assert "Traceback" not in stderr, stderr
    return groups, stderr


def assert_said_interrupted(stderr: str, sig: signal.Signals) -> None:
    if sig != signal.SIGKILL:
        assert f"pgvdrill: interrupted by {sig.name}: stopped, with every program it had " \
            "started" in stderr, stderr


def assert_source_clean(source: Cluster) -> None:
    """No slot, no walsender and no backend of a backup tool left on the source."""
    def clean() -> bool:
        return source.query("SELECT count(*) FROM pg_replication_slots") == [(0,)] and \
            source.query("SELECT count(*) FROM pg_stat_replication") == [(0,)] and \
            source.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                         f"ANY(ARRAY{list(TOOLS)!r})") == [(0,)]
    assert settle(clean), (source.query("SELECT slot_name, active_pid FROM "
                                        "pg_replication_slots"),
                           source.query("SELECT pid, application_name, state, query FROM "
                                        "pg_stat_activity WHERE backend_type <> 'checkpointer'"))


def assert_nothing_running(groups: set[int], mark: str) -> None:
    assert settle(lambda: not running(groups, mark)), running(groups, mark)


def assert_partial_private(directory: Path) -> None:
    for path in [directory, *directory.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"


def assert_repository_consistent(repo: Path, kind: str, pgvdrill_cli: Cli, config: Path
                                 ) -> None:
    """No catalog entry; a partial backup directory (if the tool had begun) is private and
    `pgvdrill verify` names it as incomplete, not as a problem; the next backup works."""
    assert not any((repo / "catalog").glob("*.json"))
    partial = sorted((repo / kind).iterdir()) if (repo / kind).is_dir() else []
    verified = pgvdrill_cli("verify", "--config", config)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for directory in partial:
        assert_partial_private(directory)
        assert f"{directory}: backup directory without a catalog entry" in \
            verified.stdout + verified.stderr
    fresh = config.with_name("next.toml")
    fresh.write_text(config.read_text().replace('max_rate = "32k"', ""))
    again = pgvdrill_cli("backup", kind, "--config", fresh)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(list((repo / "catalog").glob("*.json"))) == 1


def backup_config(path: Path, source: Cluster, repo: Path, **physical: str) -> Path:
    lines = ["[source]", f'conninfo = "{conninfo(source)}"', "", "[repository]",
             f'path = "{repo}"', ""]
    if physical:
        lines += ["[physical]", *(f'{k} = "{v}"' for k, v in physical.items()), ""]
    path.write_text("\n".join(lines))
    return path


def _backup_dir_appeared(repo: Path, kind: str) -> Callable[[], bool]:
    return lambda: (repo / kind).is_dir() and any((repo / kind).iterdir())


STREAMING = ("SELECT (SELECT count(*) FROM pg_stat_progress_basebackup WHERE phase = "
             "'streaming database files' AND backup_streamed > 0) + (SELECT count(*) FROM "
             "pg_stat_replication WHERE state = 'streaming') + (SELECT count(*) FROM "
             "pg_replication_slots WHERE temporary)")


# each point once by default, by pgvdrill's handler (SIGTERM) and by SIGKILL (the watchdog);
# the other pairings repeat those paths (--drill-matrix full)
@pytest.mark.parametrize(("point", "sig"), [
    pytest.param("directory", signal.SIGTERM, marks=pytest.mark.full),
    ("directory", signal.SIGKILL),
    pytest.param("streaming", signal.SIGINT, marks=pytest.mark.full),
    ("streaming", signal.SIGTERM),
    pytest.param("streaming", signal.SIGKILL, marks=pytest.mark.full),
], ids=lambda v: v.name if isinstance(v, signal.Signals) else v)
def test_fault_backup_physical_interrupted(prod_source: Cluster, pgvdrill_cli: Cli,
                                          options: DrillOptions, tmp_path: Path, point: str,
                                          sig: signal.Signals) -> None:
    """pg_basebackup (throttled by max_rate) killed with pgvdrill as soon as the backup
    directory exists, or while it streams files and WAL through its temporary slot: its
    WAL-streaming child (a process of its group) goes too, and the slot with it."""
    repo = tmp_path / "repo"
    config = backup_config(tmp_path / "pgvdrill.toml", prod_source, repo, max_rate="32k")
    with reaped(start_cli(options, "backup", "physical", "--config", config, cwd=tmp_path)) as proc:
        if point == "directory":
            wait_for(_backup_dir_appeared(repo, "physical"), "the backup directory", proc)
        else:
            wait_for(lambda: prod_source.query(STREAMING) == [(3,)], "streaming", proc)
        groups, stderr = interrupt(proc, sig)
    assert_nothing_running(groups, str(repo))
    assert_source_clean(prod_source)
    assert_said_interrupted(stderr, sig)
    assert_repository_consistent(repo, "physical", pgvdrill_cli, config)


# SIGINT by default (the operator's Ctrl-C); SIGTERM and SIGKILL take the paths the
# physical case above drills (--drill-matrix full)
@pytest.mark.parametrize("sig", [pytest.param(s, marks=[] if s == signal.SIGINT else
                                              pytest.mark.full) for s in SIGNALS],
                         ids=lambda s: s.name)
def test_fault_backup_logical_interrupted(prod_source: Cluster, pgvdrill_cli: Cli,
                                         options: DrillOptions, tmp_path: Path,
                                         sig: signal.Signals) -> None:
    """pg_dump waiting for a table lock another session holds: pgvdrill ends it; its
    backend leaves the source once the lock is released (it finds its client gone)."""
    repo = tmp_path / "repo"
    config = backup_config(tmp_path / "pgvdrill.toml", prod_source, repo)
    blocker = prod_source.connect(SOURCE_DB, autocommit=False)
    blocker.execute("LOCK TABLE documents IN ACCESS EXCLUSIVE MODE")
    try:
        with reaped(start_cli(options, "backup", "logical", "--config", config,
                              cwd=tmp_path)) as proc:
            wait_for(lambda: prod_source.query(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' "
                "AND wait_event_type = 'Lock'") == [(1,)], "pg_dump waiting for its lock",
                proc)
            groups, stderr = interrupt(proc, sig)
            assert_nothing_running(groups, str(repo))
            assert_said_interrupted(stderr, sig)
    finally:
        blocker.close()
    assert_source_clean(prod_source)
    assert_repository_consistent(repo, "logical", pgvdrill_cli, config)


def test_fault_restore_logical_interrupted(prod_source: Cluster, pgvdrill_cli: Cli,
                                          make_cluster: Callable[..., Cluster],
                                          options: DrillOptions, tmp_path: Path) -> None:
    """restore logical --clean while pg_restore waits for a lock on the target, with each
    signal in turn: pgvdrill ends it; nothing of it stays on the target or in the process
    table, and the next restore works."""
    repo = tmp_path / "repo"
    config = backup_config(tmp_path / "pgvdrill.toml", prod_source, repo)
    assert pgvdrill_cli("backup", "logical", "--config", config).returncode == 0
    target = make_cluster("restored")
    target.query("CREATE DATABASE restored TEMPLATE template0")
    dsn = conninfo(target, "restored")
    # the test servers are copies of one initdb: the source's system identifier and OIDs
    copy = "--into-copy-of-source"
    first = pgvdrill_cli("restore", "logical", "latest", "--target-dsn", dsn, copy,
                         "--config", config)
    assert first.returncode == 0, first.stderr
    for sig in SIGNALS:
        blocker = target.connect("restored", autocommit=False)
        blocker.execute("LOCK TABLE documents IN ACCESS EXCLUSIVE MODE")
        try:
            with reaped(start_cli(options, "restore", "logical", "latest", "--target-dsn", dsn,
                                  "--clean", copy, "--config", config, cwd=tmp_path)) as proc:
                wait_for(lambda: target.query(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                    "'pg_restore' AND wait_event_type = 'Lock'") == [(1,)],
                    "pg_restore waiting for its lock", proc)
                groups, stderr = interrupt(proc, sig)
                assert groups, "no tool was running"
                assert_nothing_running(groups, str(repo))
                assert_said_interrupted(stderr, sig)
        finally:
            blocker.close()
        assert_source_clean(target)
    again = pgvdrill_cli("restore", "logical", "latest", "--target-dsn", dsn, "--clean",
                         copy, "--config", config)
    assert again.returncode == 0, again.stderr


# SIGKILL by default (the watchdog's case; SIGINT: test_bad_input); SIGTERM takes the
# handler's path SIGINT does (--drill-matrix full)
@pytest.mark.parametrize("sig", [pytest.param(signal.SIGTERM, marks=pytest.mark.full),
                                 signal.SIGKILL], ids=lambda s: s.name)
def test_fault_drill_interrupted(backend: Backend, options: DrillOptions, tmp_path: Path,
                                 sig: signal.Signals) -> None:
    """`pgvdrill drill` killed once its first backup ran (SIGINT: test_bad_input): every
    scratch server and tool it started goes, also when pgvdrill itself is SIGKILLed (the
    watchdog ends the servers' process groups)."""
    base = Path("/var/tmp") if os.geteuid() == 0 else tmp_path  # the server user enters it
    workdir = Path(os.path.realpath(base)) / f"pgvdrill-interrupts-{os.getpid()}-{sig.name}"
    try:
        with reaped(start_drill(options, workdir, tmp_path)) as proc:
            read_to_first_backup(proc)
            assert running(set(), str(workdir)), "no server was running mid-drill"
            groups, stderr = interrupt(proc, sig)
            assert_nothing_running(groups, str(workdir))
            assert_said_interrupted(stderr, sig)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# -- the configured tool timeout ------------------------------------------------------------

def test_fault_tool_timeout_from_the_configuration(prod_source: Cluster, pgvdrill_cli: Cli,
                                                   tmp_path: Path) -> None:
    """[limits] tool_timeout, not a fixed cap: a pg_dump that waits for a lock past it is
    ended with its group, the message names the key to raise, the partial backup stays
    incomplete."""
    repo = tmp_path / "repo"
    config = backup_config(tmp_path / "pgvdrill.toml", prod_source, repo)
    config.write_text(config.read_text() + "\n[limits]\ntool_timeout = 2\n")
    with prod_source.connect(SOURCE_DB, autocommit=False) as blocker:
        blocker.execute("LOCK TABLE documents IN ACCESS EXCLUSIVE MODE")
        result = pgvdrill_cli("backup", "logical", "--config", config)
    assert result.returncode == 3, result.stderr
    assert "timed out" in result.stderr and "Traceback" not in result.stderr
    assert f"[limits] tool_timeout of {config}" in result.stderr
    assert "raise [limits] tool_timeout" in result.stderr
    assert not any((repo / "catalog").glob("*.json"))
    assert_source_clean(prod_source)


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-5", '"1h"', "1e12"])
def test_fault_tool_timeout_must_be_finite_and_in_range(pgvdrill_cli: Cli, tmp_path: Path,
                                                        value: str) -> None:
    """[limits] tool_timeout takes 1 s to 31 days (7200 is accepted); anything else is a
    clear configuration error, never an instant kill or no limit at all."""
    Repository(tmp_path / "repo").ensure()
    config = tmp_path / "pgvdrill.toml"
    base = f'[repository]\npath = "{tmp_path / "repo"}"\n\n[limits]\n'
    config.write_text(base + "tool_timeout = 7200\n")
    accepted = pgvdrill_cli("verify", "--config", config)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    config.write_text(base + f"tool_timeout = {value}\n")
    result = pgvdrill_cli("verify", "--config", config)
    assert result.returncode == 2, result.stdout + result.stderr
    said = result.stderr.replace(str(tmp_path), "TMP")  # the path names the test
    assert "[limits]" in said and "tool_timeout = " in said, said
    if value in ("nan", "inf", "0", "1e12"):  # numbers: the range is said
        assert "not a number >= 1 and <= 2678400" in result.stderr
    assert "Traceback" not in result.stderr


def test_fault_runner_timeout_ends_the_whole_group(tmp_path: Path) -> None:
    """A timed-out program's own children (a shell's background job holding its stderr
    pipe, as pg_basebackup's streaming child holds pg_basebackup's) end with it: the
    runner returns at once instead of waiting for the pipe."""
    marker = tmp_path / "child-alive"
    script = f"sleep 300 & echo $! > {marker}; wait"
    started = time.monotonic()
    with pytest.raises(Exception, match="timed out"):
        runner.run(["sh", "-c", script], timeout=1, tee_stderr=True)
    assert time.monotonic() - started < 30
    child = int(marker.read_text())
    assert settle(lambda: (_stat_fields(child) or [b"Z"])[0] in (b"Z", b"X"), 15), \
        f"the timed-out program's child {child} is still running"


# -- another OS user's own groups -------------------------------------------------------------

def _gids(pid: int) -> tuple[int, list[int]]:
    """The effective gid and the supplementary groups of `pid` (/proc/PID/status)."""
    fields = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["Gid"].split()[1]), [int(g) for g in fields["Groups"].split()]


def test_fault_programs_for_another_user_get_its_groups(prod_source: Cluster) -> None:
    """A server started for the OS user pgvdrill and a tool run as it have pgvdrill's own
    gid and supplementary groups, never root's group 0."""
    user = osuser.server_user()
    if user is None:
        pytest.skip("not root: programs run as ourselves")
    entry = pwd.getpwnam(user)
    expected = sorted(os.getgrouplist(user, entry.pw_gid))
    postmaster = int((prod_source.datadir / "postmaster.pid").read_text().split()[0])
    gid, groups = _gids(postmaster)
    assert (gid, sorted(groups)) == (entry.pw_gid, expected)
    assert 0 not in groups or entry.pw_gid == 0
    [(backend,)] = prod_source.query("SELECT pg_backend_pid()")  # forked by the server
    assert _gids(int(str(backend)))[0] == entry.pw_gid
    shown = runner.run(["sh", "-c", "id -g; cat /proc/self/status"], user=user).stdout
    assert shown.split()[0] == str(entry.pw_gid)
    status_groups = next(line for line in shown.splitlines() if line.startswith("Groups:"))
    assert sorted(int(g) for g in status_groups.split()[1:]) == expected
