"""Issue 13, class 3: the windows where a signal or a SIGKILL used to leave a program
running, and archive-wal's temporaries (no PostgreSQL server needed)."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pgvdrill.cluster.docker import WAL_SCRIPTS
from pgvdrill.proc import group as procgroup
from pgvdrill.proc import interrupts
from pgvdrill.wal import walcmd

SLEEPER = "/bin/sleep"
SEGMENT = "000000010000000000000007"


@pytest.fixture
def handled() -> Iterator[None]:
    """pgvdrill's own signal handlers, as the CLI installs them (restored after)."""
    saved = {sig: signal.getsignal(sig) for sig in interrupts.SIGNALS}
    interrupts.handle_signals()
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)
    interrupts._stopping.clear()
    interrupts._pending.clear()


def running(pid: int) -> bool:
    """`pid` exists and is no zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def gone(pid: int, seconds: float = 60) -> bool:
    """Wait until `pid` no longer runs (a zombie does not)."""
    deadline = time.monotonic() + seconds
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_group(pgid: int) -> None:
    procgroup.release(pgid)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    gone(pgid)


def test_fault_signal_between_fork_and_registration_still_registers_the_tool(
        handled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM the moment Popen has returned, before the group is registered: the
    interrupt waits for the registration, so the tool is ended (it used to be lost)."""
    started: list[subprocess.Popen[bytes]] = []

    class SignalledPopen(subprocess.Popen[bytes]):
        def __init__(self, args: Any, *rest: Any, **options: Any) -> None:
            super().__init__(args, *rest, **options)
            if args[0] == SLEEPER:
                started.append(self)
                signal.raise_signal(signal.SIGTERM)  # handled right here, in this frame

    monkeypatch.setattr(procgroup.subprocess, "Popen", SignalledPopen)
    try:
        with pytest.raises(interrupts.Interrupted) as raised:
            procgroup.spawn([SLEEPER, "600"], env=dict(os.environ), cwd=None, user=None,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
        assert raised.value.exit_code == 143
        assert started and procgroup.live().get(started[0].pid) == SLEEPER
    finally:
        for proc in started:
            kill_group(proc.pid)
            proc.wait()


def test_fault_signal_while_ending_a_group_still_kills_it(
        handled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM while `end` waits for a group that ignores SIGTERM: the group is still
    SIGKILLed before it is unregistered, then the interrupt goes on (it used to unwind
    through end's `finally`, unregistering a group left running)."""
    ignores = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \
              "print('ready', flush=True); time.sleep(600)"
    proc = procgroup.spawn([sys.executable, "-c", ignores], env=dict(os.environ), cwd=None,
                           user=None, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    real_wait_gone = procgroup._wait_gone
    signalled: list[bool] = []

    def wait_gone(pgid: int, seconds: float) -> bool:
        if not signalled:  # the first wait: right after SIGTERM was sent
            signalled.append(True)
            signal.raise_signal(signal.SIGTERM)
        return real_wait_gone(pgid, seconds)

    monkeypatch.setattr(procgroup, "_wait_gone", wait_gone)
    try:
        with pytest.raises(interrupts.Interrupted):
            procgroup.end(proc, grace=0.2)
        assert signalled
        assert not procgroup.members(proc.pid), "the group ignoring SIGTERM was left running"
        assert proc.returncode == -signal.SIGKILL
        assert proc.pid not in procgroup.live()
    finally:
        proc.stdout.close()
        kill_group(proc.pid)


def start_pgvdrill(script: str) -> subprocess.Popen[str]:
    """A Python process standing for pgvdrill (it uses procgroup), killed by the test."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)],
                            stdout=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


ESCAPES = """\
import os, time
if os.fork() == 0:
    os.setsid()  # leaves the group pgvdrill registered
    print(os.getpid(), flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("where", ["escaped-its-group", "killed-before-registration"])
def test_fault_sigkilled_pgvdrill_leaves_no_unregistered_program(where: str) -> None:
    """pgvdrill SIGKILLed while a program it started runs outside every registered group
    (it called setsid, as pg_ctl's postmaster does), or between the fork of a program and
    its registration: the watchdog ends it by this run's token in its environment."""
    stop = ("procgroup.guard = lambda pgid, program: "
            "(print(pgid, flush=True), time.sleep(600))"
            if where == "killed-before-registration" else "")
    pgvdrill = start_pgvdrill(f"""
        import os, subprocess, sys, time
        from pgvdrill.proc import group as procgroup
        {stop}
        proc = procgroup.spawn([sys.executable, "-c", {ESCAPES!r}], env=dict(os.environ),
                               cwd=None, user=None, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        print(proc.stdout.readline().decode().strip(), flush=True)
        time.sleep(600)
    """)
    assert pgvdrill.stdout is not None
    left = int(pgvdrill.stdout.readline())
    try:
        assert running(left)
        pgvdrill.kill()
        pgvdrill.wait()
        assert gone(left), f"pid {left} outlived the SIGKILLed pgvdrill"
    finally:
        pgvdrill.stdout.close()
        kill_group(os.getpgid(left) if running(left) else left)


def test_fault_sigkilled_pgvdrill_removes_its_containers(tmp_path: Path) -> None:
    """The docker backend's containers are the engine's children, in no group of
    pgvdrill's: registered by label, the watchdog removes them when pgvdrill dies.
    (A stand-in docker client records its calls: the test runs without an engine.)"""
    calls = tmp_path / "calls"
    client = tmp_path / "docker"
    client.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "$*" >> {calls}
        [ "$1" = ps ] && printf 'c0ffee1\\nc0ffee2\\n'
        exit 0
        """))
    client.chmod(0o755)
    pgvdrill = start_pgvdrill(f"""
        import time
        from pgvdrill.proc import group as procgroup
        procgroup.guard_containers({str(client)!r}, "pgvdrill.session=abc123")
        procgroup.guard_containers({str(client)!r}, "pgvdrill.session=closed")
        procgroup.release_containers({str(client)!r}, "pgvdrill.session=closed")
        print("ready", flush=True)
        time.sleep(600)
    """)
    assert pgvdrill.stdout is not None and pgvdrill.stdout.readline() == "ready\n"
    pgvdrill.stdout.close()
    pgvdrill.kill()
    pgvdrill.wait()
    deadline = time.monotonic() + 60
    while "rm" not in (calls.read_text() if calls.exists() else ""):
        assert time.monotonic() < deadline, "the watchdog never removed the containers"
        time.sleep(0.05)
    assert calls.read_text().splitlines() == [
        "ps --all --quiet --filter label=pgvdrill.session=abc123",
        "rm --force --volumes c0ffee1 c0ffee2"]


@pytest.fixture
def segment(tmp_path: Path) -> Path:
    wal = tmp_path / "pg_wal"
    wal.mkdir()
    path = wal / SEGMENT
    path.write_bytes(os.urandom(2**20))
    return path


def test_fault_archive_wal_killed_mid_copy_leaves_no_temporary(tmp_path: Path,
                                                               archive: Path) -> None:
    """archive-wal SIGKILLed while it copies (server shutdown, an archiver killed): nothing
    is left in the archive (it used to leave `.NAME.PID.tmp`); the retry archives it."""
    fifo = tmp_path / SEGMENT
    os.mkfifo(fifo)
    archiver = subprocess.Popen([sys.executable, "-m", "pgvdrill.wal.walcmd", "archive-wal",
                                 str(fifo), SEGMENT, "--dest", str(archive)],
                                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    with fifo.open("wb") as feed:  # opens once archive-wal opened the segment
        feed.write(b"\1" * 65536)
        feed.flush()
        deadline = time.monotonic() + 60
        while not any(os.readlink(f"/proc/{archiver.pid}/fd/{fd}").startswith(f"{archive}/")
                      for fd in os.listdir(f"/proc/{archiver.pid}/fd")):
            assert time.monotonic() < deadline, "archive-wal never opened its copy"
            time.sleep(0.02)
        archiver.kill()
        archiver.wait()
    assert os.listdir(archive) == []
    fifo.unlink()
    fifo.write_bytes(b"\1" * 2**20)
    walcmd.archive_wal(fifo, SEGMENT, archive)
    assert os.listdir(archive) == [SEGMENT]


def test_fault_listing_the_archive_while_archive_wal_stores_shows_no_temporary(
        segment: Path, archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whoever lists the archive the moment the segment appears (a drill waiting for it,
    `sync`, `verify`) sees the segment only (a temporary used to remain until the
    directory was fsynced: test_fault_archive_unwritable_or_full_then_fixed was flaky)."""
    seen: list[list[str]] = []
    real_link = os.link

    def link(*args: Any, **options: Any) -> None:
        real_link(*args, **options)
        seen.append(sorted(os.listdir(archive)))

    monkeypatch.setattr(walcmd.os, "link", link)
    walcmd.archive_wal(segment, SEGMENT, archive)
    assert seen == [[SEGMENT]]
    assert (archive / SEGMENT).read_bytes() == segment.read_bytes()


def test_fault_a_killed_attempts_temporary_is_removed_by_the_next(
        segment: Path, archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system without unnamed files (O_TMPFILE) gets named temporaries: the one a
    killed attempt left is removed by the next attempt of that file (its process is gone);
    another file's, or one whose process runs, is kept."""
    dead = subprocess.Popen(["/bin/true"])
    dead.wait()
    stale = archive / f".{SEGMENT}.{dead.pid}.tmp"
    running = archive / f".{SEGMENT}.{os.getppid()}.tmp"  # pytest's parent runs
    other = archive / f".000000010000000000000008.{dead.pid}.tmp"
    for path in (stale, running, other):
        path.write_bytes(b"partial")
    real_open = os.open

    def no_unnamed(path: Any, flags: int, *rest: Any, **options: Any) -> int:
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_open(path, flags, *rest, **options)

    monkeypatch.setattr(walcmd.os, "open", no_unnamed)
    assert walcmd.archive_wal(segment, SEGMENT, archive).startswith("archived")
    assert sorted(os.listdir(archive)) == sorted([SEGMENT, running.name, other.name])
    assert stat.S_ISREG((archive / SEGMENT).stat().st_mode)
    assert (archive / SEGMENT).read_bytes() == segment.read_bytes()


def test_fault_a_killed_container_archivers_temporary_is_removed_by_the_next(
        segment: Path, archive: Path) -> None:
    """The same for archive-wal.sh, the docker backend's archive_command (run here with
    this machine's sh, cp, ln and sync)."""
    dead = subprocess.Popen(["/bin/true"])
    dead.wait()
    stale = archive / f".{SEGMENT}.{dead.pid}.tmp"
    running = archive / f".{SEGMENT}.{os.getpid()}.tmp"
    for path in (stale, running):
        path.write_bytes(b"partial")
    subprocess.run(["sh", WAL_SCRIPTS / "archive-wal.sh", segment, SEGMENT, archive],
                   check=True)
    assert sorted(os.listdir(archive)) == sorted([SEGMENT, running.name])
    assert (archive / SEGMENT).read_bytes() == segment.read_bytes()
