"""What servers with a data directory on this machine share, whether PostgreSQL runs as a
local process or in a container over a bind mount: the cluster directory's layout (data/
is PGDATA, server.log, pgpass), the included conf file, the port lease, file operations
on the data directory and waiting until the server answers.
"""

from __future__ import annotations

import abc
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import psycopg

from pgvdrill import osuser
from pgvdrill.cluster.base import Backend, Cluster, ClusterSettings, ConfigValue, ConnInfo
from pgvdrill.cluster.ports import PortLease, lease
from pgvdrill.cluster.restored import (
    SOCKET,
    SOURCE_CONFIG,
    Neutralised,
    control_limits,
    neutralise,
)
from pgvdrill.errors import ConfigError, DrillError, cleanup
from pgvdrill.files.trust import require_trusted
from pgvdrill.proc import runner
from pgvdrill.proc.runner import ToolCall
from pgvdrill.proc.wait import GiveUp, Waited, wait_until
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
SOCKET_PATH_MAX = 107 - len("/.s.PGSQL.65535")  # sun_path holds 108 bytes with its NUL
# what a connection attempt says when waiting cannot help: a login refused
REFUSED = ("authentication failed", "no pg_hba.conf entry", "no password supplied",
           "does not exist", "permission denied")


def path_safe(name: str) -> str:
    """`name` fit for a directory that a setting lists (unix_socket_directories splits at
    commas, and spaces need quoting): other characters become '_', at most 40 kept."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:40]


class DirectoryCluster(Cluster):
    """A server whose cluster directory (data/, server.log, pgpass) is a local directory."""

    def __init__(self, name: str, directory: Path, major: int, server_user: str | None,
                 port: int | None = None, *, restored: Neutralised | None = None,
                 superuser: str = SUPERUSER) -> None:
        self.name = name
        self.directory = directory
        self.datadir = directory / "data"
        self.major = major
        self.server_user = server_user
        self._lease: PortLease | None = None
        self._requested_port = port
        self._settings = ClusterSettings()
        self.restored = restored  # a restored backup's copy: what its neutralising changed
        self.superuser = superuser

    @property
    def socket_dir(self) -> Path | None:
        """The private socket directory of a restored copy (its only way in), else None."""
        return self.directory / SOCKET if self.restored is not None else None

    @property
    def conninfo(self) -> ConnInfo:
        if self._lease is None:
            raise DrillError(f"cluster {self.name} has no port: it was never started")
        host = str(self.socket_dir) if self.socket_dir else "127.0.0.1"
        return ConnInfo(host, self._lease.port, self.superuser, "postgres",
                        self.directory / "pgpass")

    @property
    def logfile(self) -> Path:
        return self.directory / "server.log"

    @property
    def port(self) -> int:
        """The server's port, leased on first use and kept across restarts."""
        if self._lease is None:
            self._lease = lease(self._requested_port)
        return self._lease.port

    def base_settings(self) -> dict[str, ConfigValue]:
        """Settings every server of this kind gets before the drill's own."""
        settings = dict(BASE_SETTINGS)
        if self.restored is not None:
            # what the copy carries from its source wins over pgvdrill's defaults: a hot
            # standby refuses WAL of a primary with more max_wal_senders than it has
            settings |= self.restored.carried
        if self.socket_dir is not None:
            settings |= {"unix_socket_directories": str(self.socket_dir),
                         "unix_socket_permissions": 0o700}
        return settings

    def _wait_ready(self, timeout: float) -> None:
        """Wait until a query runs; fail at once on an answer that waiting cannot change
        (a refused login, a stopped server), with the server log's last lines."""
        def answers() -> bool:
            try:
                with psycopg.connect(self.conninfo.dsn(), connect_timeout=5) as conn:
                    conn.execute("SELECT 1")
                    return True
            except psycopg.OperationalError as exc:
                if not self.is_running() or any(r in str(exc) for r in REFUSED):
                    raise GiveUp from exc
                raise

        def failed(waited: Waited) -> str:
            running[0] = self.is_running()
            return (f"server {self.name} "
                    f"{'does not accept queries' if running[0] else 'did not start (it stopped)'}"
                    f": {str(waited.error).strip()}\nlast lines of its log ({self.logfile}):\n"
                    f"{self.server_log(20)}")

        running = [False]
        wait_until(answers, timeout=timeout, interval=0.2, transient=(psycopg.OperationalError,),
                   error=DrillError, message=failed, hint=lambda waited: (
                       "read the server log above" + ("; the server may still be recovering"
                                                      if running[0] and not waited.gave_up
                                                      else "")))

    # configuration
    def configure(self, **settings: ConfigValue) -> None:
        self._settings.values.update(settings)
        self._write_conf()

    def _write_conf(self) -> None:
        values = {**self.base_settings(), "port": self.port, **self._settings.values}
        self.write_file(INCLUDED_CONF, ClusterSettings(values).render().encode())

    # the server log
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

    @abc.abstractmethod
    def process_command(self, tool: str, args: list[str], env: Mapping[str, str]
                        ) -> tuple[list[str], dict[str, str | None]]:
        """(argv, environment) running client `tool` connected to this server, with `env`
        added, as a long-running process (pgvdrill.proc.background.Process), e.g. pg_receivewal."""

    def release(self) -> None:
        """Stop the server (if running) and give up its port; the directory stays."""
        def give_up_port() -> None:
            if self._lease is not None:
                self._lease.release()

        with cleanup(give_up_port, f"the port lease of {self.name}"):
            if self.is_running():
                self.stop("immediate")

    def destroy(self) -> None:
        try:
            self.release()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


class DirectoryBackend(Backend):
    """Makes clusters whose directories live below a session directory of `workdir`:
    copies of an initdb template (made once per `cache_dir`, see `_initdb`) or of a saved
    template, or data directories taken over from a restore."""

    def __init__(self, name: str, major: int, workdir: Path, cache_dir: Path) -> None:
        self.name = name
        self.major = major
        self.server_user = osuser.server_user()
        self.cache_dir = cache_dir
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # servers start from its templates: another user's cache would choose their settings
        require_trusted(self.cache_dir, "cache directory")
        self.workdir = session_dir(workdir, self.server_user)

    @abc.abstractmethod
    def has_library(self, name: str) -> bool:
        """Whether this backend's servers can load the shared library `name`."""

    @abc.abstractmethod
    def _initdb(self, directory: Path) -> None:
        """Make directory/data (an initdb'd data directory that includes INCLUDED_CONF) and
        directory/pgpass (the superuser's password); see `publish_initdb`."""

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
            with cleanup(cluster.destroy, f"server {cluster.name}"):
                cluster.start()
                build(cluster)
                cluster.stop()
                assert isinstance(cluster, DirectoryCluster)
                self._save_template(cluster, template)

    def _copy(self, name: str, template: str | None) -> Path:
        """A new cluster directory holding a copy of the template's data and pgpass."""
        source = self._template_dir(template) if template else self._initdb_template()
        directory = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.workdir))
        runner.run(["cp", "-a", "--", source, directory / "data"])
        shutil.copy2(source.parent / "pgpass", directory / "pgpass")
        if self.server_user:
            osuser.chown_tree(directory, self.server_user)
            os.chown(directory / "pgpass", 0, 0)  # read by root's clients only
        return directory

    def _take_over(self, name: str, datadir: Path) -> tuple[Path, Neutralised]:
        """A new cluster directory over an existing data directory (a restored base backup):
        moved there, its configuration neutralised (pgvdrill.cluster.restored), given to
        the server user, mode 0700."""
        if not (datadir / "PG_VERSION").is_file():
            raise ConfigError(f"{datadir} is not a PostgreSQL data directory (no PG_VERSION)",
                              "restore the base backup into it first")
        directory = Path(tempfile.mkdtemp(prefix=f"{path_safe(name)}-", dir=self.workdir))
        socket = directory / SOCKET
        if len(str(socket)) > SOCKET_PATH_MAX:
            shutil.rmtree(directory)
            raise ConfigError(f"the work directory {self.workdir} is too long for a socket "
                              f"path ({len(str(socket))} > {SOCKET_PATH_MAX} characters)",
                              "choose a shorter work directory, e.g. --workdir /var/tmp")
        shutil.move(str(datadir), directory / "data")
        (directory / "data").chmod(0o700)
        controldata = self.tools().run_tool(ToolCall("pg_controldata", [directory / "data"])).stdout
        done = neutralise(directory / "data", directory / SOURCE_CONFIG, socket,
                          has_library=self.has_library, control=control_limits(controldata))
        socket.mkdir(mode=0o700)
        (directory / "pgpass").touch(mode=0o600)  # logins go through the socket, trusted
        osuser.chown_tree(directory, self.server_user)
        if self.server_user:
            for private in (directory / "pgpass", directory / SOURCE_CONFIG):
                os.chown(private, 0, 0)
        return directory, done

    def _save_template(self, cluster: DirectoryCluster, template: str) -> None:
        """Copy a stopped cluster into the cache; a half-written copy never carries the name."""
        final = self._template_dir(template, must_exist=False).parent
        staging = final.parent / f".{template}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        runner.run(["cp", "-a", "--", cluster.datadir, staging / "data"])
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


def publish_initdb(build: Path, directory: Path, password: str) -> None:
    """Make the initdb'd build/data include INCLUDED_CONF, and copy it into
    directory/data with a pgpass file for the superuser's `password`."""
    with (build / "data" / "postgresql.conf").open("a") as conf:
        conf.write(f"\ninclude_if_exists = '{INCLUDED_CONF}'\n")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    pgpass = directory / "pgpass"
    pgpass.write_text(f"*:*:*:{SUPERUSER}:{password}\n")
    pgpass.chmod(0o600)
    runner.run(["cp", "-a", "--", build / "data", directory / "data"], timeout=600)
    shutil.rmtree(build, ignore_errors=True)


def session_dir(workdir: Path, server_user: str | None) -> Path:
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
