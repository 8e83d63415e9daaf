"""Every program pgvdrill starts runs in a process group of its own, and the whole group
ends with it.

`spawn` starts a program in a new session (its own process group: a terminal's Ctrl-C
reaches pgvdrill only, which ends the group itself), as another OS user with that user's
own primary and supplementary groups (never root's), with the signal dispositions restored
(`restore_signals`: SIGPIPE; SIGINT, SIGTERM and SIGHUP are caught by pgvdrill's CLI, see
`interrupts`, so exec gives them their default), and registers the group. `end` ends a
group: SIGTERM to every member, SIGKILL after a grace, the leader reaped. A group still
registered when Python exits is ended by `atexit`; when pgvdrill dies without running any
handler (SIGKILL, OOM killer), a watchdog process that holds a pipe to pgvdrill sees the
pipe close and ends every group still registered (pg_basebackup's WAL-streaming child, a
process of the same group, keeps its temporary slot on the source for as long as it runs).
Scratch servers are registered too (`guard`): pg_ctl starts each in a session of its own.
Every program carries this run's token in its environment (`OWNER`): the watchdog also
ends what carries it (a program that left its group, or one killed with pgvdrill between
its fork and its registration), and removes the Docker containers registered by label.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pwd
import secrets
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from pgvdrill.errors import ConfigError
from pgvdrill.proc import interrupts
from pgvdrill.proc.wait import poll_until

log = logging.getLogger("pgvdrill.proc.group")

GRACE = 10.0  # seconds between SIGTERM and SIGKILL
KILLED_WAIT = 10.0  # seconds to wait for SIGKILLed members to go (uninterruptible I/O)
_live: dict[int, str] = {}  # process group id -> the program that leads it

OWNER = "PGVDRILL_OWNER"  # in the environment of every program spawned: this run's token
_token = secrets.token_hex(16)

# The watchdog (python -I -S -c WATCHDOG): reads lines from pgvdrill until the pipe closes
# ("=TOKEN" first; "+PGID" / "-PGID": a group registered / ended; "dDOCKER<TAB>FILTER" /
# "eDOCKER<TAB>FILTER": containers matching a label filter started / removed), then ends
# every group still registered, every process whose environment carries this run's token
# (with its group: a program that left its group, a postmaster pg_ctl started in a
# session of its own, a tool forked and killed before it was registered) and removes the
# containers still registered. It runs in its own session, so signals meant for pgvdrill
# (a terminal's Ctrl-C) do not reach it.
WATCHDOG = r"""
import os, signal, subprocess, sys, time
parent, me, groups, containers, token = os.getppid(), os.getpid(), set(), set(), b""
for line in sys.stdin:
    kind, rest = line[0], line[1:].rstrip("\n")
    if kind == "=":
        token = f"PGVDRILL_OWNER={rest}".encode()
    elif kind in "+-":
        (groups.add if kind == "+" else groups.discard)(int(rest))
    elif kind in "de":
        (containers.add if kind == "d" else containers.discard)(tuple(rest.split("\t")))
def stats():
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in (b"Z", b"X"):
            yield int(entry), int(fields[2])
def owned():
    for pid, pgid in stats():
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                if token and pid != me and token in environ.read().split(b"\0"):
                    yield pid, pgid
        except OSError:
            continue
def alive(pgid):
    return any(group == pgid for _, group in stats())
strays = set(owned())
for pgid in {g for _, g in strays} - {os.getpgid(0)}:
    groups.add(pgid)
ended = []
for pgid in sorted(groups):
    try:
        os.killpg(pgid, signal.SIGTERM)
        ended.append(pgid)
    except OSError:
        pass
for docker, label in sorted(containers):
    listed = subprocess.run([docker, "ps", "--all", "--quiet", "--filter", f"label={label}"],
                            capture_output=True, text=True, check=False).stdout.split()
    if listed:
        subprocess.run([docker, "rm", "--force", "--volumes", *listed],
                       capture_output=True, check=False)
        print(f"pgvdrill watchdog: removed container(s) {' '.join(listed)}", file=sys.stderr)
deadline = time.monotonic() + GRACE
while any(alive(g) for g in ended) and time.monotonic() < deadline:
    time.sleep(0.05)
late = {g for _, g in owned()} - {os.getpgid(0)}  # forked, exec'd only after the scan
for pgid in set(ended) | late:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
ended += sorted(late - set(ended))
if ended:
    print(f"pgvdrill watchdog: pgvdrill (pid {parent}) ended with process group(s) "
          f"{', '.join(map(str, ended))} still running: ended them", file=sys.stderr)
""".replace("GRACE", repr(GRACE))


class _Watchdog:
    """The watchdog process, started before the first program, and its pipe."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._failed = False

    def send(self, line: str = "") -> None:
        """Send `line` (none: only make sure the watchdog runs)."""
        if self._failed:
            return
        try:
            if self._process is None:
                environment = {k: v for k, v in os.environ.items() if k != OWNER}
                self._process = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", WATCHDOG], stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL, start_new_session=True, env=environment)
                line = f"={_token}\n{line}"
            if not line:
                return
            assert self._process.stdin is not None
            self._process.stdin.write(f"{line.rstrip()}\n".encode())
            self._process.stdin.flush()
        except OSError as exc:  # no interpreter to start, or someone killed the watchdog
            self._failed = True
            log.warning("no watchdog (%s): if pgvdrill is killed with SIGKILL, the tools it "
                        "runs keep running", exc)


_watchdog = _Watchdog()


def identity(user: str | None) -> dict[str, Any]:
    """Popen's arguments to run as `user` with its own groups (None: as ourselves)."""
    if user is None:
        return {}
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError(f"no OS user {user!r} to run programs as",
                          f"create it: useradd --system {user}") from None
    if os.geteuid() != 0:
        return {} if entry.pw_uid == os.geteuid() else {"user": user}
    return {"user": entry.pw_uid, "group": entry.pw_gid,
            "extra_groups": os.getgrouplist(user, entry.pw_gid)}


def spawn(argv: Sequence[str], *, env: Mapping[str, str], cwd: str | os.PathLike[str] | None,
          user: str | None, stdin: IO[bytes] | int, stdout: IO[bytes] | int,
          stderr: IO[bytes] | int, umask: int = -1) -> subprocess.Popen[bytes]:
    """Start `argv` in a process group of its own, registered until `end` (an interrupt
    waits until the group is registered: a tool started is always a tool ended)."""
    account = identity(user)
    _watchdog.send()  # running before the fork: it knows this run's token
    with interrupts.held():
        proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr,
                                env={**env, OWNER: _token},
                                cwd=cwd, start_new_session=True, restore_signals=True,
                                umask=umask, **account)
        guard(proc.pid, argv[0])
    return proc


def guard(pgid: int, program: str) -> None:
    """Register process group `pgid`: ended at exit and by the watchdog if pgvdrill dies
    with it still registered (`spawn`'s groups, and a scratch server, which pg_ctl starts
    in a session of its own)."""
    _live[pgid] = program
    _watchdog.send(f"+{pgid}")


def guard_containers(docker: str, label: str) -> None:
    """Register the containers carrying `label` (key=value): removed (`docker rm --force`)
    by the watchdog if pgvdrill dies before `release_containers` (a container's server is
    the Docker engine's child, in no group of pgvdrill's)."""
    _watchdog.send(f"d{docker}\t{label}")


def release_containers(docker: str, label: str) -> None:
    """Unregister `guard_containers`'s label (its containers are removed)."""
    _watchdog.send(f"e{docker}\t{label}")


def release(pgid: int) -> None:
    """Unregister group `pgid` (it has ended, or is ended by its owner)."""
    if _live.pop(pgid, None) is not None:
        _watchdog.send(f"-{pgid}")


def running(pid: int) -> bool:
    """Whether process `pid` runs. A zombie (it exited, its parent has not reaped it) does
    not, and is reaped when pgvdrill is that parent (a subreaper, or PID 1 in a container:
    a killed postmaster whose pg_ctl has gone is then pgvdrill's child)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state in (b"Z", b"X"):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def members(pgid: int) -> list[int]:
    """The processes of group `pgid` that have not exited (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            found.append(int(entry.name))
    return found


def _signal(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _wait_gone(pgid: int, seconds: float) -> bool:
    return bool(poll_until(lambda: not members(pgid), timeout=seconds))


def end(proc: subprocess.Popen[bytes], grace: float = GRACE) -> int | None:
    """End `proc`'s whole process group (SIGTERM, SIGKILL after `grace` seconds), reap
    the leader and unregister the group; the leader's exit code (None if it could not be
    reaped: a process stuck in uninterruptible I/O). An interrupt waits until the group is
    gone (it would otherwise unregister a group that ignored SIGTERM, never SIGKILLed)."""
    pgid = proc.pid
    with interrupts.held():
        return _end(proc, pgid, grace)


def _end(proc: subprocess.Popen[bytes], pgid: int, grace: float) -> int | None:
    try:
        if proc.poll() is not None:  # the leader exited: anything left of its group?
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return proc.returncode
        if members(pgid):
            _signal(pgid, signal.SIGTERM)
            if not _wait_gone(pgid, grace):
                log.warning("process group %d (%s) still running %.0fs after SIGTERM: "
                            "SIGKILL", pgid, _live.get(pgid, "?"), grace)
                _signal(pgid, signal.SIGKILL)
                if not _wait_gone(pgid, KILLED_WAIT):
                    log.error("process group %d (%s) survives SIGKILL: pid(s) %s",
                              pgid, _live.get(pgid, "?"), members(pgid))
        try:
            return proc.wait(KILLED_WAIT)
        except subprocess.TimeoutExpired:
            return None
    finally:
        release(pgid)


def live() -> dict[int, str]:
    """The process groups started and not yet ended: group id -> program."""
    return dict(_live)


@atexit.register
def _end_all() -> None:
    """At exit, end every group still registered (a tool whose caller never ended it)."""
    for pgid, program in list(_live.items()):
        log.warning("ending process group %d (%s) at exit", pgid, program)
        _signal(pgid, signal.SIGTERM)
        if not _wait_gone(pgid, GRACE):
            _signal(pgid, signal.SIGKILL)
        release(pgid)
