"""The Docker side of pgvdrill on a real engine: the local image's entrypoint honours the
official postgres image's contract, and a missing engine or image is a `ConfigError`
that says how to get one (never a skip)."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fixtures.cli import Cli
from pgvdrill import osuser
from pgvdrill.cluster.docker import check_engine
from pgvdrill.cluster.docker_image import DEFAULT_TAG
from pgvdrill.errors import ConfigError, ToolError
from pgvdrill.proc import runner

DOCKER = pytest.mark.docker
NO_ENGINE = "unix:///nonexistent/docker.sock"
TEST_LABEL = "pgvdrill.test=1"
READY_TIMEOUT = 60.0
SETUP_ENGINE = "scripts/docker/setup-engine.sh"


@dataclass(frozen=True)
class Container:
    """A container of the local image, removed by the `start` fixture's teardown."""

    name: str

    def port(self) -> int:
        """The host port published for 5432 on 127.0.0.1."""
        out = docker("port", self.name, "5432/tcp").stdout
        return int(out.splitlines()[0].rsplit(":", 1)[1])

    def running(self) -> bool:
        state = docker("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return state.stdout.strip() == "true"

    def logs(self) -> str:
        logs = docker("logs", self.name, check=False)
        return logs.stdout + logs.stderr

    def connect(self, *, password: str, user: str = "postgres", dbname: str = "postgres",
                timeout: float = READY_TIMEOUT) -> psycopg.Connection[tuple[Any, ...]]:
        """A connection over the published port once the server takes one; the test fails
        with the last error and the container's output if it stops or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while True:
            try:  # `docker port` fails once the container has stopped
                return psycopg.connect(host="127.0.0.1", port=self.port(), user=user,
                                       password=password, dbname=dbname, connect_timeout=3,
                                       autocommit=True)
            except (psycopg.OperationalError, ToolError) as exc:
                last = exc
            if not self.running() or time.monotonic() > deadline:
                pytest.fail(f"{self.name} never took a connection ({last}); its output:\n"
                            f"{self.logs()}")
            time.sleep(0.1)


def docker(*args: str, check: bool = True, env: Mapping[str, str] | None = None,
           timeout: float = 120) -> runner.Result:
    return runner.run(["docker", *args], check=check, env=env, timeout=timeout)


Start = Callable[..., Container]


@pytest.fixture
def start() -> Iterator[Start]:
    """`start(*options, command=(), env={})`: `docker run -d` of the local image with the
    test label and 5432 published on 127.0.0.1; `env` values reach the container through
    the client's environment (`-e NAME`), so passwords stay out of argv. Every container
    started is removed with its volumes afterwards, whatever the outcome."""
    names: list[str] = []

    def run(*options: str, command: Sequence[str] = (),
            env: Mapping[str, str] | None = None) -> Container:
        name = f"pgvdrill-test-{secrets.token_hex(4)}"
        names.append(name)  # before `docker run`: a failed start may leave a container
        passed = [arg for key in (env or {}) for arg in ("--env", key)]
        docker("run", "--detach", "--name", name, "--label", TEST_LABEL,
               "--stop-signal", "SIGINT", "--publish", "127.0.0.1::5432",
               *passed, *options, DEFAULT_TAG, *command, env=env)
        return Container(name)

    yield run
    for name in names:
        docker("rm", "--force", "--volumes", name, check=False)


def one(conn: psycopg.Connection[tuple[Any, ...]], sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


@DOCKER
def test_entrypoint_user_database_settings_and_pgvector(start: Start) -> None:
    """POSTGRES_USER/PASSWORD/DB and trailing `-c` arguments as in the official image;
    pgvector works; over TCP a wrong password is refused (scram, not trust)."""
    password = secrets.token_urlsafe(16)
    container = start("--env", "POSTGRES_USER=alice", "--env", "POSTGRES_DB=appdb",
                      command=["-c", "work_mem=7MB"], env={"POSTGRES_PASSWORD": password})
    with container.connect(user="alice", password=password, dbname="appdb") as conn:
        assert one(conn, "SELECT current_user") == "alice"
        assert one(conn, "SELECT current_database()") == "appdb"
        assert one(conn, "SHOW work_mem") == "7MB"
        conn.execute("CREATE EXTENSION vector")
        assert one(conn, "SELECT '[1,2,3]'::vector <-> '[1,2,5]'::vector") == 2.0
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host="127.0.0.1", port=container.port(), user="alice",
                        password=password + "-wrong", dbname="appdb", connect_timeout=10)


def with_password_file(start: Start, tmp_path: Path, mode: int) -> tuple[Container, str]:
    """A container whose password comes from a read-only bind-mounted file of `mode`
    (POSTGRES_PASSWORD_FILE), and that password."""
    password = secrets.token_urlsafe(16)
    secret = tmp_path / "pw"
    secret.write_text(password + "\n")
    secret.chmod(mode)
    return start("--volume", f"{secret}:/run/secrets/pw:ro",
                 "--env", "POSTGRES_PASSWORD_FILE=/run/secrets/pw"), password


@DOCKER
def test_entrypoint_reads_password_file(start: Start, tmp_path: Path) -> None:
    """POSTGRES_PASSWORD_FILE: the password from a read-only bind-mounted file."""
    container, password = with_password_file(start, tmp_path, 0o644)
    with container.connect(password=password) as conn:
        assert one(conn, "SELECT current_user") == "postgres"


@DOCKER
def test_entrypoint_reads_root_only_password_file(start: Start, tmp_path: Path) -> None:
    """A secret only root can read (mode 0600), as the official image accepts."""
    container, password = with_password_file(start, tmp_path, 0o600)
    with container.connect(password=password) as conn:
        assert one(conn, "SELECT 1") == 1


def server_ids() -> tuple[int, int]:
    """The uid and gid the docker backend runs containers as."""
    entry = pwd.getpwnam(osuser.server_user() or pwd.getpwuid(os.getuid()).pw_name)
    return entry.pw_uid, entry.pw_gid


@DOCKER
@pytest.mark.parametrize("ids", [
    pytest.param(server_ids, id="server-user"),
    # the server user's uid may be the image's postgres (999): also one the image lacks
    pytest.param(lambda: (4242, 4242), id="unnamed-uid"),
])
def test_entrypoint_initialises_bind_mounted_pgdata_as_user(
        start: Start, tmp_path: Path, ids: Callable[[], tuple[int, int]]) -> None:
    """`--user UID:GID` over an empty PGDATA of that user: initdb runs, and every file on
    the host belongs to that user (what the docker backend relies on)."""
    uid, gid = ids()
    pgdata = tmp_path / "pgdata"
    pgdata.mkdir(mode=0o700)
    os.chown(pgdata, uid, gid)
    password = secrets.token_urlsafe(16)
    container = start("--user", f"{uid}:{gid}",
                      "--volume", f"{pgdata}:/var/lib/postgresql/data",
                      env={"POSTGRES_PASSWORD": password})
    with container.connect(password=password) as conn:
        assert one(conn, "SHOW data_directory") == "/var/lib/postgresql/data"
        assert int(one(conn, "SHOW server_version_num")) // 10000 == int(
            (pgdata / "PG_VERSION").read_text())
    docker("stop", "--time", "30", container.name)  # no files come and go while we look
    owners = {(p.stat().st_uid, p.stat().st_gid) for p in [pgdata, *pgdata.rglob("*")]}
    assert owners == {(uid, gid)}
    assert (pgdata / "global" / "pg_control").is_file()


@DOCKER
def test_entrypoint_refuses_empty_datadir_without_password(start: Start) -> None:
    """No POSTGRES_PASSWORD on first start: the container exits non-zero and says why."""
    container = start()
    status = int(docker("wait", container.name, timeout=60).stdout.strip())
    assert status != 0
    assert "POSTGRES_PASSWORD" in container.logs()


def test_check_engine_without_engine_says_how_to_start_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No engine behind DOCKER_HOST: a ConfigError pointing at setup-engine.sh."""
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    with pytest.raises(ConfigError) as caught:
        check_engine()
    expected = "no Docker engine answers" if shutil.which("docker") else "docker client"
    assert expected in caught.value.message
    assert SETUP_ENGINE in caught.value.hint


def test_drill_without_engine_is_bad_input(monkeypatch: pytest.MonkeyPatch,
                                           pgvdrill_cli: Cli, tmp_path: Path) -> None:
    """`pgvdrill drill --backend docker` with no engine: exit 2 (ConfigError) naming
    setup-engine.sh, not a skip and not a traceback."""
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    done = pgvdrill_cli("drill", "--backend", "docker", "--rows", "10", "--dim", "4",
                        "--workdir", tmp_path, "--cache-dir", tmp_path / "cache",
                        "--reports-dir", tmp_path / "reports", timeout=120)
    assert done.returncode == ConfigError.exit_code == 2, done.stderr
    assert SETUP_ENGINE in done.stderr
    assert "Traceback" not in done.stderr


@DOCKER
def test_check_engine_reports_the_engine_version() -> None:
    """With an engine: its server version."""
    assert check_engine()[0].isdigit()


@DOCKER
def test_drill_with_missing_image_says_how_to_build_it(pgvdrill_cli: Cli,
                                                       tmp_path: Path) -> None:
    """An --image the engine does not have: exit 2 naming `pgvdrill image build` (and
    nothing pulled)."""
    done = pgvdrill_cli("drill", "--backend", "docker", "--image", "no/such:image",
                        "--rows", "10", "--dim", "4", "--workdir", tmp_path,
                        "--cache-dir", tmp_path / "cache",
                        "--reports-dir", tmp_path / "reports", timeout=120)
    assert done.returncode == ConfigError.exit_code == 2, done.stderr
    assert "no/such:image" in done.stderr
    assert "pgvdrill image build" in done.stderr
    assert "Traceback" not in done.stderr


@DOCKER
def test_drill_cli_on_docker_from_a_directory_containers_do_not_mount(tmp_path: Path) -> None:
    """`pgvdrill drill --backend docker` run from a directory outside the temporary and
    work directories, with a relative --reports-dir: the dump lands in the reports
    directory (the command mounts it), the drill verifies, no container is left."""
    cwd = Path(tempfile.mkdtemp(prefix="pgvdrill-cwd-", dir=Path.home()))
    run_id = f"test-cwd-{os.getpid()}-{cwd.name}"  # other workers' containers run meanwhile
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pgvdrill.cli", "drill", "--backend", "docker", "--rows",
             "200", "--dim", "8", "--dump", "custom-z1", "--restore", "fresh",
             "--cache-dir", str(tmp_path / "cache"),
             "--reports-dir", "reports"],
            cwd=cwd, env={**os.environ, "PGVDRILL_RUN_ID": run_id},
            capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ok: 1 drill(s), 0 failed" in done.stdout
        [dump] = (cwd / "reports").glob("*/artifacts/*custom-z1.dump")
        assert dump.stat().st_size > 0
    finally:
        shutil.rmtree(cwd, ignore_errors=True)
    left = runner.run(["docker", "ps", "--all", "--quiet", "--filter",
                       f"label=pgvdrill.run={run_id}"]).stdout.split()
    if left:  # this run id is not CI's: remove what the failure leaves before reporting it
        runner.run(["docker", "rm", "-f", "-v", *left], check=False)
    assert left == []
