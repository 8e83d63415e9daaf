"""The runbook's BackupManager (section 4, written out in runbook_scripts) drilled method by
method: full_backup() and how it passes the password, verify_backup(), and the two
cleanups by modification time, each in the situation that shows what it does."""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from pgvdrill.cluster import ConnInfo
from pgvdrill.cluster.local import LocalCluster
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.errors import BackupError
from pgvdrill.logical.archive import inspect
from pgvdrill.logical.selection import Selection, expected_toc, toc_problems
from pgvdrill.proc.runner import Result
from pgvdrill.proc.wait import poll_until
from pgvdrill.procedures.pack import PackRun
from pgvdrill.procedures.runbook_scripts import BACKUP_MANAGER_PY
from pgvdrill.procedures.steps import exit_text, first_lines
from pgvdrill.procedures.workspace import Workspace
from pgvdrill.wal.continuity import check_continuity
from pgvdrill.wal.names import SEGMENT_RE, Segment
from pgvdrill.wal.pitr import BackupPoint

MANAGER = "BackupManager"
DAY = 86400.0
ADAPTED = ("the class written from the runbook's description, called from a command line; "
           "db_config: the throw-away server, with its password")


class Manager:
    """The BackupManager program with a db_config for `server` and `backup_dir`."""

    def __init__(self, ws: Workspace, server: ConnInfo, backup_dir: Path) -> None:
        self.ws = ws
        self.backup_dir = backup_dir
        self.script = ws.root / "backup_manager.py"
        self.script.write_text(BACKUP_MANAGER_PY)
        self.config = ws.root / f"{backup_dir.name}.json"
        self.password = password_of(ws.passfile)
        db_config = {"host": server.host, "port": server.port, "user": server.user,
                     "password": self.password, "database": SOURCE_DB}
        fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"db_config": db_config, "backup_dir": str(backup_dir)}, handle)

    def command(self, method: str, *args: str) -> str:
        return " ".join(shlex.quote(str(a)) for a in (sys.executable, self.script.name,
                                                     self.config.name, method, *args))

    def run(self, method: str, *args: str) -> Result:
        return self.ws.run(self.command(method, *args))


def password_of(passfile: Path) -> str:
    """The password of a one-line `*:*:*:user:password` file (the throw-away clusters')."""
    return passfile.read_text().splitlines()[0].split(":", 4)[4]


def full_backup(pack: PackRun, ws: Workspace, source: LocalCluster) -> None:
    """full_backup() while pg_dump is held on a lock long enough to read its environment:
    the backup is checked like every dump, and PGPASSWORD looked for where any process of
    the same OS user (and root) can read it."""
    manager = Manager(ws, source.conninfo, ws.root / "postgres")
    command = manager.command("full_backup")
    seen: tuple[int, dict[str, str]] | None = None
    with pack.recorder.step(MANAGER, "full_backup()", command, ADAPTED) as out:
        done: list[Result] = []
        with source.connect(SOURCE_DB, autocommit=False) as blocker:
            blocker.execute("LOCK TABLE documents IN ACCESS EXCLUSIVE MODE")
            worker = threading.Thread(target=lambda: done.append(manager.run("full_backup")))
            worker.start()
            try:
                seen = environ_of("pg_dump", str(manager.backup_dir))
            finally:
                blocker.rollback()
                worker.join()
        result = done[0]
        if result.returncode:
            out.error = exit_text(result)
            return
        returned = Path(result.stdout.strip().splitlines()[-1])
        archive = inspect(pack.backend.tools(), returned)
        with source.connect(SOURCE_DB) as conn:
            out.problems += toc_problems(expected_toc(conn, Selection()), archive.toc)
        out.evidence = (f"returned {returned.name}: {archive.size_bytes} bytes, every data "
                        "block readable, the whole database in its table of contents")
    with pack.recorder.step(MANAGER, "password through PGPASSWORD", command, ADAPTED) as out:
        if seen is None:
            out.error = "pg_dump was not seen running within 30 s: its environment is unknown"
        elif seen[1].get("PGPASSWORD") == manager.password:
            user = pwd.getpwuid(os.geteuid()).pw_name
            out.hazards.append(
                f"the database password is in the environment of pg_dump (pid {seen[0]}): "
                f"/proc/{seen[0]}/environ holds PGPASSWORD, readable by root and every "
                f"process of OS user {user}, for as long as the dump runs (a password file, "
                "PGPASSFILE or ~/.pgpass, keeps it out)")
        else:
            out.evidence = f"pg_dump (pid {seen[0]}) ran without PGPASSWORD"


def environ_of(program: str, marker: str, timeout: float = 30
               ) -> tuple[int, dict[str, str]] | None:
    """(pid, environment) of our own OS user's process running `program` with `marker` in
    its arguments, once it appears; None after `timeout` seconds."""
    return poll_until(lambda: _running(program, marker), timeout=timeout, interval=0.02)


def _running(program: str, marker: str) -> tuple[int, dict[str, str]] | None:
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or proc.stat().st_uid != os.geteuid():
                continue
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if os.path.basename(argv[0]) != program.encode() or \
                    not any(marker.encode() in arg for arg in argv):
                continue
            pairs = (proc / "environ").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # gone meanwhile, or not ours
            continue
        return int(proc.name), dict(p.split("=", 1) for p in pairs if "=" in p)
    return None


def verify_backup(pack: PackRun, ws: Workspace, source: LocalCluster, damaged: Path) -> None:
    """verify_backup() of a dump whose data is damaged, against pgvdrill's own check."""
    manager = Manager(ws, source.conninfo, ws.root / "postgres-verify")
    command = manager.command("verify_backup", str(damaged))
    adapted = f"{ADAPTED}; the damage: 4 KiB in the middle of the full dump zeroed"
    with pack.recorder.step(MANAGER, "verify_backup() of a damaged dump", command,
                            adapted) as out:
        result = manager.run("verify_backup", str(damaged))
        try:
            inspect(pack.backend.tools(), damaged)
        except BackupError as exc:
            broken = next((ln.strip(" |") for ln in exc.message.splitlines() if "error:" in ln),
                          first_lines(exc.message, 1))
        else:
            out.error = "the damaged copy reads back completely: there is nothing to judge"
            return
        if result.returncode == 0:
            out.hazards.append(f"verify_backup (pg_restore -l, the table of contents only) "
                               f"accepts a dump whose data cannot be read: {broken}")
        out.evidence = f"it rejects the damaged dump ({exit_text(result)})"


def cleanup_old_backups(pack: PackRun, ws: Workspace, source: LocalCluster, full: Path
                        ) -> None:
    """cleanup_old_backups(7) where the newest backup is 8 days old."""
    backup_dir = ws.directory("postgres-retention")
    old = backup_dir / f"full_backup_{datetime.now() - timedelta(days=8):%Y%m%d_%H%M%S}.dump"
    shutil.copyfile(full, old)
    stamp = time.time() - 8 * DAY
    os.utime(old, (stamp, stamp))
    manager = Manager(ws, source.conninfo, backup_dir)
    adapted = (f"{ADAPTED}; the situation: the only backup is 8 days old (a week of failed "
               "daily jobs)")
    with pack.recorder.step(MANAGER, "cleanup_old_backups(days=7)",
                            manager.command("cleanup_old_backups", "7"), adapted) as out:
        result = manager.run("cleanup_old_backups", "7")
        if result.returncode:
            out.error = exit_text(result)
        elif not old.exists():
            out.hazards.append(f"it deleted the only backup ({old.name}, 8 days old): no "
                               "backup is left; age alone decides, the newest backup is not "
                               "kept")
        out.evidence = f"it kept the only backup, {old.name}"


def cleanup_old_wal(pack: PackRun, ws: Workspace, source: LocalCluster, archive: Path,
                    backup: Path) -> None:
    """cleanup_old_wal(3) on a copy of the archive, dated as if `backup` (kept 30 days by
    the runbook) was taken 5 days ago and WAL archived evenly since."""
    backup_dir = ws.directory("postgres-wal")
    wal = backup_dir / "wal"
    shutil.copytree(archive, wal)
    point = BackupPoint.of((backup / "backup_manifest").read_bytes())
    first = point.start_lsn // Segment(point.timeline, 0).size
    names = sorted(p.name for p in wal.iterdir())
    since = [n for n in names if SEGMENT_RE.match(n) and Segment.from_name(n).number >= first]
    for name in names:
        age = 6 * DAY if name not in since else 5 * DAY * (1 - since.index(name) / len(since))
        os.utime(wal / name, (time.time() - age, time.time() - age))
    manager = Manager(ws, source.conninfo, backup_dir)
    adapted = (f"{ADAPTED}; wal_dir: a copy of the drill's archive, dated as if the -X stream "
               "backup was taken 5 days ago and WAL archived evenly since")
    with pack.recorder.step(MANAGER, "cleanup_old_wal(days=3)",
                            manager.command("cleanup_old_wal", "3"), adapted) as out:
        before = check_continuity(wal, point.start_lsn, point.timeline)
        if before.gap:
            out.error = f"the archive was incomplete before the cleanup: {before.gap}"
            return
        result = manager.run("cleanup_old_wal", "3")
        if result.returncode:
            out.error = exit_text(result)
            return
        after = check_continuity(wal, point.start_lsn, point.timeline)
        removed = len(names) - len(os.listdir(wal))
        if after.gap:
            out.hazards.append(
                f"it deleted {removed} archived WAL files older than 3 days, among them "
                f"segments the 5-day-old base backup needs (the runbook keeps physical "
                f"backups 30 days): {after.gap}")
        out.evidence = (f"it deleted {removed} files, none that the 5-day-old base backup "
                        "needs")
