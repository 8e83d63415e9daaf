"""Attacks on issue 13 class 3 (interrupts never leave work running): what pgvdrill starts
must end when pgvdrill ends, however it ends. pg_ctl makes every server's postmaster a
session leader (setsid), outside the process group pgvdrill registers for pg_ctl: a
program that leaves its group is not ended by ending the group.

The drill is killed at a point it has observably reached (a scratch server's
postmaster runs), never after a sleep; what is left is read from /proc.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.cli import start_cli
from fixtures.options import DrillOptions
from pgvdrill import osuser
from pgvdrill.proc import runner
from pgvdrill.proc.wait import poll_until


def live_processes(mark: str) -> list[tuple[int, str]]:
    """Live (not zombie) processes whose command line holds `mark`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            state = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if state not in (b"Z", b"X") and mark in cmdline:
            found.append((int(entry.name), cmdline[:200]))
    return found


def server_running(work: Path) -> bool:
    """A postmaster (not initdb's bootstrap) runs on a data directory below `work`."""
    return any(f"bin/postgres -D {work}/" in cmdline for _, cmdline in live_processes(str(work)))


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Whether `condition` holds within `timeout` seconds."""
    return poll_until(condition, timeout=timeout) is not None


# SIGKILL (only the watchdog can clean up) and the impatient operator's every signal in a
# row run by default; a lone SIGTERM or SIGINT twice take the handler's path those cover
@pytest.mark.parametrize("signals", [
    pytest.param((signal.SIGKILL,), id="SIGKILL"),
    pytest.param((signal.SIGTERM,), id="SIGTERM", marks=pytest.mark.full),
    pytest.param((signal.SIGINT, signal.SIGINT), id="SIGINT-twice", marks=pytest.mark.full),
    pytest.param((signal.SIGINT, signal.SIGTERM, signal.SIGKILL),
                 id="SIGINT-SIGTERM-SIGKILL")])
def test_fault_attack_a_killed_drill_leaves_no_scratch_server_running(
        reachable: Path, cli_cache: Path, tmp_path: Path, options: DrillOptions,
        signals: tuple[signal.Signals, ...]) -> None:
    """`pgvdrill drill` killed while its throw-away source server runs: the postmaster that
    pg_ctl started (its own session) must not outlive pgvdrill. With SIGKILL only the
    watchdog can end it, and it ends the registered groups only (pg_ctl's, long gone).
    Several signals in a row: an impatient operator (Ctrl-C again during the cleanup, then
    kill, then kill -9): whatever the cleanup had not finished must still end."""
    work = reachable / "work"
    work.mkdir()
    osuser.chown_tree(work, osuser.server_user())
    proc = start_cli(options, "drill", "--rows", "200", "--dim", "8", "--dump", "custom-z1",
                     "--restore", "fresh", "--workdir", work, "--cache-dir", cli_cache,
                     "--reports-dir", tmp_path / "reports", cwd=tmp_path)
    try:
        started = wait_until(lambda: server_running(work) or proc.poll() is not None, 900)
        assert started and proc.poll() is None, proc.communicate(timeout=60)
        for sig in signals:
            if proc.poll() is None:
                proc.send_signal(sig)
        proc.communicate(timeout=120)
        # what runs on after pgvdrill: its watchdog's work (SIGTERM, SIGKILL after 10 s)
        wait_until(lambda: not live_processes("pgvdrill watchdog"), 60)
        gone = wait_until(lambda: not live_processes(str(work)), 60)
        assert gone, live_processes(str(work))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for pidfile in work.rglob("postmaster.pid"):  # what this test made pgvdrill leave
            runner.run(["sh", "-c", f'kill -9 "$(head -1 "{pidfile}")"'], check=False,
                       timeout=30)
