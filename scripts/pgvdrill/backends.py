"""Choosing a backend by name: `embedded` (the default), `system` (a --pg-bin dir) or
`docker` (an --image in the local Docker engine)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pgvdrill import installation, osuser
from pgvdrill.cluster.directory import DirectoryBackend
from pgvdrill.cluster.docker import DockerBackend
from pgvdrill.cluster.docker_image import DEFAULT_TAG
from pgvdrill.cluster.local import LocalBackend
from pgvdrill.errors import ConfigError, cleanup

BACKENDS = ("embedded", "system", "docker")


def default_workdir() -> Path:
    """Root of cluster directories: /var/tmp as root (the server user must enter it)."""
    return Path("/var/tmp" if os.geteuid() == 0 else tempfile.gettempdir())  # noqa: S108


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/pgvdrill, else ~/.cache/pgvdrill (a relative $XDG_CACHE_HOME is
    ignored, as the XDG spec says: it would name a different place in every directory)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "pgvdrill"


def make_backend(
    name: str = "embedded", *, pg_bin: Path | None = None, image: str | None = None,
    workdir: Path | None = None, cache_dir: Path | None = None,
    mounts: tuple[Path, ...] = (),
) -> DirectoryBackend:
    """A backend by name; raises `ConfigError` with what to do when it cannot be used.
    `mounts`: directories (besides `workdir`) that containers of the docker backend see
    at the same path, e.g. where backups are written."""
    workdir = workdir or default_workdir()
    cache_dir = cache_dir or default_cache_dir()
    if name == "embedded":
        inst = installation.embedded(osuser.server_user())
    elif name == "system":
        if pg_bin is None:
            raise ConfigError("the system backend needs --pg-bin",
                              "pass the bin directory of a PostgreSQL installation, "
                              "e.g. --pg-bin /usr/lib/postgresql/17/bin")
        inst = installation.from_bindir(pg_bin)
    elif name == "docker":
        return DockerBackend(image or DEFAULT_TAG, workdir, cache_dir, mounts=mounts)
    else:
        raise ConfigError(f"unknown backend {name!r}", f"choose one of: {', '.join(BACKENDS)}")
    return LocalBackend(inst, workdir, cache_dir, name=name)


@dataclass(frozen=True)
class BackendOptions:
    """Where scratch servers run, resolved once by each surface (the CLI from its options,
    the configuration's [drill] and the defaults; the pytest suite from its own)."""

    backend: str
    pg_bin: Path | None
    image: str | None
    workdir: Path
    cache_dir: Path


@contextmanager
def backend_for(options: BackendOptions, mounts: Sequence[Path] = ()
                ) -> Iterator[DirectoryBackend]:
    """The backend `options` name, closed after; `mounts`: the directories the command's
    tools read or write (containers see them at the same paths)."""
    backend = make_backend(options.backend, pg_bin=options.pg_bin, image=options.image,
                           workdir=options.workdir, cache_dir=options.cache_dir,
                           mounts=tuple(p.resolve() for p in mounts))
    with cleanup(backend.close, f"the {backend.name} backend"):
        yield backend
