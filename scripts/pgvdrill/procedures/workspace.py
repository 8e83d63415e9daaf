"""Where a procedure runs: throw-away clusters, a private work directory, and the shell that
runs its commands.

Commands run with `sh -c` through the runner, as the invoking user, or as the server's OS
user when they touch a data directory or the WAL archive (PostgreSQL's files must stay
that user's). libpq finds the password in PGPASSFILE: a copy of the clusters' password
file that both users can read, in the work directory; no password is ever in argv, in a
template or in the environment. The backend's client tools come first on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import psycopg

from pgvdrill import osuser
from pgvdrill.cluster import ConnInfo
from pgvdrill.cluster.local import LocalBackend, LocalCluster
from pgvdrill.proc import runner


def dsn(info: ConnInfo, dbname: str) -> str:
    """A libpq connection string for `dbname` without a password (PGPASSFILE has it)."""
    return psycopg.conninfo.make_conninfo(host=info.host, port=info.port, user=info.user,
                                          dbname=dbname)


@contextmanager
def started(backend: LocalBackend, name: str, template: str | None = None
            ) -> Iterator[LocalCluster]:
    """A started cluster (from `template`, else empty), destroyed afterwards; typed as the
    local cluster it is (procedures work with its data directory)."""
    with backend.cluster(name, template=template) as cluster:
        assert isinstance(cluster, LocalCluster)  # what a LocalBackend makes
        yield cluster


class Workspace:
    """A private directory below the backend's work directory, owned by the server's OS
    user (so commands run as that user can write it; root reads everything), removed on
    exit."""

    def __init__(self, backend: LocalBackend, name: str, passfile: Path) -> None:
        self.bindir = backend.installation.bindir
        self.user = backend.server_user
        slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:30] or "procedure"
        self.root = Path(tempfile.mkdtemp(prefix=f"{slug}-", dir=backend.workdir))
        self.passfile = self.root / "pgpass"
        shutil.copyfile(passfile, self.passfile)
        self.passfile.chmod(0o600)
        osuser.chown_tree(self.root, self.user)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def directory(self, name: str, *, server_owned: bool = True) -> Path:
        """A new empty directory (0700), the server user's unless `server_owned` is False
        (then only root's: the server user can neither read nor write it)."""
        path = self.root / name
        path.mkdir(mode=0o700)
        if server_owned:
            osuser.chown_tree(path, self.user)
        return path

    def give(self, path: Path) -> Path:
        """Hand a file or tree written by us to the server's OS user."""
        osuser.chown_tree(path, self.user)
        return path

    def run(self, command: str, *, server: ConnInfo | None = None, dbname: str | None = None,
            as_server: bool = False, stdin: Path | None = None,
            timeout: float | None = None) -> runner.Result:
        """Run `command` with `sh -c` in the work directory, never raising on its exit
        status, for at most `timeout` seconds (None: [limits] tool_timeout); libpq's
        PGHOST, PGPORT, PGUSER and PGDATABASE name `server` when given."""
        env = {**(server.env(dbname) if server else {}), "PGPASSFILE": str(self.passfile),
               "PATH": f"{self.bindir}{os.pathsep}{os.environ.get('PATH', os.defpath)}"}
        return runner.run(["sh", "-c", command], env=env, cwd=self.root, timeout=timeout,
                          user=self.user if as_server else None, stdin=stdin, check=False)
