"""Servers in containers: the `docker` backend, on the official pgvector/pgvector:pgNN
images or the locally built one (`pgvdrill image build`).

A cluster's directory stays on this machine, as with the local backends, and is
bind-mounted into its container at the same path: so are the work directory, the
temporary directory (sockets stay in the container's /var/run/postgresql) and every
directory in `mounts`, which makes every path a drill hands to a tool the same inside
and out. Containers run as the server's OS user (`docker
run --user`), so that the files they write belong to the same user as a local server's;
client tools run as root inside the server's container (`docker exec`), so their version
is the server's, connected over its socket. Clients on this machine connect through the
port published on 127.0.0.1 with the password in the cluster's pgpass file. Every
container carries the backend's label and is removed by `close()`.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shlex
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from pgvdrill import osuser
from pgvdrill.cluster.base import ConfigValue
from pgvdrill.cluster.directory import (
    SUPERUSER,
    DirectoryBackend,
    DirectoryCluster,
    publish_initdb,
)
from pgvdrill.cluster.restored import Neutralised
from pgvdrill.errors import ConfigError, DrillError, cleanup
from pgvdrill.proc import group as procgroup
from pgvdrill.proc import runner
from pgvdrill.proc.runner import ToolCall

ENGINE_HINT = ("start a Docker engine: scripts/docker/setup-engine.sh (as root; installs "
               "docker.io and starts dockerd), or choose the embedded backend")
SOCKET_DIR = "/var/run/postgresql"  # both the official and the local image have it (3777)
SHM_SIZE = "1g"  # parallel HNSW builds need more than Docker's 64 MB /dev/shm
INITDB_ARGS = "--data-checksums --encoding=UTF8 --locale=C"
STOP_SIGNALS = {"smart": "TERM", "fast": "INT", "immediate": "QUIT"}
RUN_LABEL = "pgvdrill.run"  # set from PGVDRILL_RUN_ID: CI removes a whole run's containers
SESSION_LABEL = "pgvdrill.session"
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
CONTROL_FILE = ("for f in \"$(pg_config --sharedir 2>/dev/null)/extension/vector.control\" "
                "/usr/share/postgresql/*/extension/vector.control; do "
                "[ -f \"$f\" ] && exec cat \"$f\"; done")
WAL_SCRIPTS = Path(__file__).with_name("container")  # archive-wal.sh, restore-wal.sh


def docker(args: Sequence[str | os.PathLike[str]], *, timeout: float = 120,
           check: bool = True, hint: str = ENGINE_HINT) -> runner.Result:
    """Run the docker client."""
    return runner.run(["docker", *args], timeout=timeout, check=check, hint=hint)


def check_engine() -> str:
    """The engine's version; `ConfigError` saying how to get one if none answers."""
    if shutil.which("docker") is None:
        raise ConfigError("the docker backend needs the docker client, which is not installed",
                          ENGINE_HINT)
    result = docker(["version", "--format", "{{.Server.Version}}"], check=False, timeout=30)
    if result.returncode != 0 or not result.stdout.strip():
        said = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        raise ConfigError(f"no Docker engine answers: {said}", ENGINE_HINT)
    return result.stdout.strip()


@dataclass(frozen=True)
class ContainerTools:
    """Client tools of the image, run in the backend's tools container (no server)."""

    backend: DockerBackend
    version: str

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def run_tool(self, call: ToolCall) -> runner.Result:
        return self.backend.exec(self.backend.tools_container(), call,
                                 {"PGDATABASE": call.dbname} if call.dbname else {})


class DockerCluster(DirectoryCluster):
    """A server in a container over a bind-mounted cluster directory."""

    def __init__(self, name: str, directory: Path, backend: DockerBackend,
                 port: int | None = None, *, initdb_password: Path | None = None,
                 restored: Neutralised | None = None, superuser: str = SUPERUSER) -> None:
        super().__init__(name, directory, backend.major, backend.server_user, port,
                         restored=restored, superuser=superuser)
        self.backend = backend
        self.container: str | None = None
        self._initdb_password = initdb_password  # first start: the image's initdb

    def base_settings(self) -> dict[str, ConfigValue]:
        return {
            **super().base_settings(),
            "listen_addresses": "*",  # reached through the port published on 127.0.0.1
            # client tools inside the container (and this machine's clients, for a restored
            # copy: its private socket directory is in the bind-mounted cluster directory)
            "unix_socket_directories": ",".join([SOCKET_DIR, *map(str, filter(
                None, [self.socket_dir]))]),
            # the server log in the cluster directory, as for a local server
            "logging_collector": True, "log_directory": str(self.directory),
            "log_filename": "server.log", "log_rotation_age": 0, "log_rotation_size": 0,
        }

    # lifecycle
    def start(self, timeout: float = 120) -> None:
        self._remove_container()
        args: list[str] = []
        env = {"PGDATA": str(self.datadir)}
        if self._initdb_password is not None:  # no data directory yet: settings as -c
            env |= {"POSTGRES_PASSWORD_FILE": str(self._initdb_password),
                    "POSTGRES_INITDB_ARGS": INITDB_ARGS}
            args = ["-c", f"port={self.port}", "-c", f"unix_socket_directories={SOCKET_DIR}"]
        else:
            self._write_conf()
        self.container = self.backend.run_container(
            self.name, ["--user", self.backend.user, "--shm-size", SHM_SIZE,
                        "--stop-signal", "SIGINT",
                        "--publish", f"127.0.0.1:{self.port}:{self.port}"],
            env, ["postgres", *args])
        self._wait_ready(timeout)
        self._initdb_password = None

    def stop(self, mode: Literal["smart", "fast", "immediate"] = "fast") -> None:
        if self.is_running():
            assert self.container is not None
            docker(["kill", "--signal", STOP_SIGNALS[mode], self.container], check=False)
            docker(["wait", self.container], timeout=330)
        self._remove_container()

    def crash(self, how: Literal["immediate", "kill"] = "kill") -> None:
        if how == "immediate":
            self.stop("immediate")
        elif self.is_running():
            assert self.container is not None
            # the postmaster is the container's PID 1: when it dies, the kernel kills the
            # rest of the container, as a crash of the whole machine would
            docker(["kill", "--signal", "KILL", self.container], check=False)
            docker(["wait", self.container], timeout=60)

    def is_running(self) -> bool:
        if self.container is None:
            return False
        state = docker(["inspect", "--format", "{{.State.Running}}", self.container],
                       check=False, timeout=30)
        return state.stdout.strip() == "true"

    def reload(self) -> None:
        if self.container is None:
            raise DrillError(f"cluster {self.name} is not running: nothing to reload")
        docker(["kill", "--signal", "HUP", self.container])

    def _remove_container(self) -> None:
        if self.container is not None:
            docker(["rm", "--force", "--volumes", self.container], check=False)
            self.container = None

    def server_log(self, lines: int = 40) -> str:
        """The server log, after the container's own output (the image's entrypoint and
        what the server said before its log collector started)."""
        own = ""
        if self.container is not None:
            logs = docker(["logs", "--tail", str(lines), self.container], check=False)
            own = (logs.stdout + logs.stderr).strip()
        return "\n".join(part for part in (own, super().server_log(lines)) if part)

    def release(self) -> None:
        with cleanup(self._remove_container, f"the container of {self.name}"):
            super().release()

    # tools
    def run_tool(self, call: ToolCall) -> runner.Result:
        if self.container is None:
            raise DrillError(f"cluster {self.name} is not running: cannot run {call.tool} in it")
        return self.backend.exec(self.container, call, self._client_env(SOCKET_DIR, call.dbname))

    def process_command(self, tool: str, args: list[str], env: Mapping[str, str]
                        ) -> tuple[list[str], dict[str, str | None]]:
        """A container of its own in the server's network namespace (over loopback, which
        the image trusts), so that signals to `docker run` reach the tool (its PID 1)."""
        if self.container is None:
            raise DrillError(f"cluster {self.name} is not running: cannot start {tool}")
        variables = {**self._client_env("127.0.0.1", None), **env}
        return [*self.backend.run_argv(f"{self.name}-{tool}", variables,
                                       ["--rm", "--user", "0:0", "--network",
                                        f"container:{self.container}", "--entrypoint", tool]),
                *args], {}

    def _client_env(self, host: str, dbname: str | None) -> dict[str, str]:
        return {"PGHOST": host, "PGPORT": str(self.port), "PGUSER": self.superuser,
                "PGDATABASE": dbname or "postgres", "PGCONNECT_TIMEOUT": "10"}

    def archive_command(self, dest: Path) -> str:
        return (f"sh {shlex.quote(str(self.backend.wal_script('archive-wal.sh')))} "
                f"%p %f {shlex.quote(str(dest))}")

    def restore_command(self, source: Path, *, partial: bool = False) -> str:
        return (f"sh {shlex.quote(str(self.backend.wal_script('restore-wal.sh')))} "
                f"%f %p {shlex.quote(str(source))}" + (" --partial" if partial else ""))


def run_id(text: str) -> str:
    """$PGVDRILL_RUN_ID checked: it labels containers that CI later removes by label."""
    if not _RUN_ID.fullmatch(text):
        raise ConfigError(f"PGVDRILL_RUN_ID={text!r} is not a run id",
                          "use 1-64 letters, digits, '.', '_' or '-', e.g. ci-1234")
    return text


class DockerBackend(DirectoryBackend):
    """Clusters in containers of `image`, which must be in the local engine."""

    def __init__(self, image: str, workdir: Path, cache_dir: Path, *,
                 mounts: Sequence[Path] = ()) -> None:
        check_engine()
        inspected = docker(["image", "inspect", "--format", "{{.Id}}", image], check=False)
        if inspected.returncode != 0:
            raise ConfigError(
                f"the image {image} is not in the local Docker engine",
                "pull it (docker pull pgvector/pgvector:pg17) or, without a registry, "
                "build the local one: pgvdrill image build")
        self.image = image
        self.image_id = inspected.stdout.strip()
        self.session = secrets.token_hex(6)
        self.labels = {SESSION_LABEL: self.session}
        # killed before close(), pgvdrill's watchdog removes this backend's containers
        self._guarded = (shutil.which("docker") or "docker", f"{SESSION_LABEL}={self.session}")
        procgroup.guard_containers(*self._guarded)
        if os.environ.get("PGVDRILL_RUN_ID"):
            self.labels[RUN_LABEL] = run_id(os.environ["PGVDRILL_RUN_ID"])
        # tools get paths below the temporary directory too (restore lists, WAL copies)
        self.mounts = outermost([workdir, Path(tempfile.gettempdir()), *mounts])
        self._tools_container: str | None = None
        self._names = 0
        version = self._image_version()
        super().__init__("docker", int(version.split(".")[0]), workdir,
                         cache_dir / f"docker-{self.image_id.removeprefix('sha256:')[:12]}")
        entry = pwd.getpwnam(self.server_user) if self.server_user else None
        self.user = f"{entry.pw_uid}:{entry.pw_gid}" if entry else f"{os.getuid()}:{os.getgid()}"
        self._tools = ContainerTools(self, version)

    def _image_version(self) -> str:
        out = docker(["run", "--rm", "--entrypoint", "postgres", self.image, "--version"]).stdout
        match = re.search(r"(\d+)(?:\.(\d+))?", out)
        if match is None:
            raise ConfigError(f"cannot read a PostgreSQL version from {self.image}: {out!r}",
                              "use a PostgreSQL image (pgvector/pgvector:pgNN)")
        return f"{match.group(1)}.{match.group(2) or 0}"

    def facts(self) -> dict[str, object]:
        return {**super().facts(), "version": self._tools.version, "image": self.image,
                "image_id": self.image_id}

    def pgvector_version(self) -> str | None:
        found = self._tools.run_tool(ToolCall("sh", ["-c", CONTROL_FILE], check=False)).stdout
        match = re.search(r"default_version\s*=\s*'([^']+)'", found)
        return match.group(1) if match else None

    def tools(self) -> ContainerTools:
        return self._tools

    def create(self, name: str, *, template: str | None = None, port: int | None = None
               ) -> DockerCluster:
        return DockerCluster(name, self._copy(name, template), self, port)

    def adopt(self, name: str, datadir: Path, *, superuser: str = SUPERUSER) -> DockerCluster:
        directory, restored = self._take_over(name, datadir)
        return DockerCluster(name, directory, self, restored=restored, superuser=superuser)

    def has_library(self, name: str) -> bool:
        script = 'test -f "$(pg_config --pkglibdir)/$1.so"'
        probe = self._tools.run_tool(ToolCall("sh", ["-c", script, "sh", name], check=False))
        return probe.returncode == 0

    def _initdb(self, directory: Path) -> None:
        """initdb by the image's own entrypoint (POSTGRES_PASSWORD_FILE, POSTGRES_INITDB_ARGS)
        on its first start, as a user of the image would."""
        build = Path(tempfile.mkdtemp(prefix="initdb-", dir=self.workdir))
        password = secrets.token_urlsafe(24)
        (build / "pw").write_text(password + "\n")
        (build / "pgpass").write_text(f"*:*:*:{SUPERUSER}:{password}\n")
        (build / "pgpass").chmod(0o600)
        osuser.chown_tree(build, self.server_user)
        os.chown(build / "pgpass", os.getuid(), os.getgid())
        cluster = DockerCluster("initdb", build, self, initdb_password=build / "pw")
        with cleanup(cluster.release, "the initdb container"):
            cluster.start(timeout=300)
            cluster.stop()
        (build / "pw").unlink()
        with (build / "data" / "pg_hba.conf").open("a") as hba:
            # the image allows every database from other hosts but not replication: base
            # backups from this machine (pgvdrill backup physical) need it too
            hba.write("host replication all all scram-sha-256\n")
        publish_initdb(build, directory, password)

    # containers
    def run_argv(self, name: str, env: Mapping[str, str], options: Sequence[str]) -> list[str]:
        """`docker run` of the image with this backend's labels, mounts and `env`, up to
        the image name (the command follows)."""
        self._names += 1
        argv = ["docker", "run", "--name", f"pgvdrill-{self.session}-{self._names}-"
                f"{re.sub(r'[^a-zA-Z0-9_.-]', '-', name)}"[:60]]
        for key, value in self.labels.items():
            argv += ["--label", f"{key}={value}"]
        for mount in self.mounts:
            argv += ["--volume", f"{mount}:{mount}"]
        for key, value in env.items():
            argv += ["--env", f"{key}={value}"]
        return [*argv, *options, self.image]

    def run_container(self, name: str, options: Sequence[str], env: Mapping[str, str],
                      command: Sequence[str]) -> str:
        """Start a detached container; its id."""
        argv = self.run_argv(name, env, ["--detach", *options])
        return runner.run([*argv, *command], timeout=300, hint=ENGINE_HINT).stdout.strip()

    def tools_container(self) -> str:
        """The backend's container for tools that need no server (started on first use)."""
        if self._tools_container is None:
            self._tools_container = self.run_container(
                "tools", ["--user", "0:0", "--entrypoint", "tail"], {}, ["-f", "/dev/null"])
        return self._tools_container

    def exec(self, container: str, call: ToolCall, env: Mapping[str, str]) -> runner.Result:
        """Run `call` as root in `container` with `env` and the call's own variables (its
        output, as runner.run's)."""
        variables = [arg for key, value in {**env, **(call.env or {})}.items()
                     for arg in ("--env", f"{key}={value}")]
        return replace(call, env=None).run(
            ["docker", "exec", "--user", "0:0", *variables, container, call.tool], {})

    def wal_script(self, name: str) -> Path:
        """archive-wal.sh or restore-wal.sh, written into the (mounted) work directory."""
        path = self.workdir / "bin" / name
        if not path.is_file():
            path.parent.mkdir(mode=0o755, exist_ok=True)
            shutil.copyfile(WAL_SCRIPTS / name, path)
            path.chmod(0o755)
        return path

    def close(self) -> None:
        """Remove every container this backend started, then its work directory."""
        listed = docker(["ps", "--all", "--quiet", "--filter",
                         f"label={SESSION_LABEL}={self.session}"], check=False)
        ids = listed.stdout.split()
        removed = not ids or docker(["rm", "--force", "--volumes", *ids],
                                    check=False).returncode == 0
        if listed.returncode == 0 and removed:  # else the watchdog tries again at exit
            procgroup.release_containers(*self._guarded)
        super().close()


def outermost(paths: Sequence[Path]) -> list[Path]:
    """The resolved `paths` without those inside another (Docker refuses a duplicate)."""
    resolved = sorted({p.resolve() for p in paths})
    return [p for p in resolved if not any(q != p and q in p.parents for q in resolved)]
