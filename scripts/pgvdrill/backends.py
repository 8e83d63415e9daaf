"""Choosing a backend by name: `embedded` (the default), `system` (a --pg-bin dir) or
`docker` (an --image in the local Docker engine)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg

from pgvdrill import installation, osuser
from pgvdrill.capabilities import Capability, died_of_sigill
from pgvdrill.cluster.directory import DirectoryBackend
from pgvdrill.cluster.docker import DockerBackend
from pgvdrill.cluster.docker_image import DEFAULT_TAG
from pgvdrill.cluster.local import LocalBackend
from pgvdrill.errors import ConfigError, DrillError, cleanup
from pgvdrill.installation import Found, find_installations, for_major, for_target

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
    # more installations, by where each was named ("[drill] installations", ...)
    installations: tuple[tuple[str, Path], ...] = ()
    target_version: str | None = None  # logical restores' server (None: the backend's)


def installations_of(options: BackendOptions) -> tuple[list[Found], list[str]]:
    """Every installation `options` name, the backend's own first (its --pg-bin, else the
    embedded one), and why each unusable one was left out."""
    own: list[tuple[str, Path | None]] = [("embedded", None)]
    if options.pg_bin is not None:
        own.insert(0 if options.backend == "system" else 1,
                   ("--pg-bin or [drill] pg_bin", options.pg_bin))
    return find_installations([*own, *options.installations], osuser.server_user())


def _on(options: BackendOptions, found: Found) -> BackendOptions:
    if found.origin == "embedded":
        return replace(options, backend="embedded")
    return replace(options, backend="system", pg_bin=found.installation.bindir)


def of_major(options: BackendOptions, major: int, why: str) -> BackendOptions:
    """`options` with scratch servers of PostgreSQL `major` (a physical restore's: the
    source's own); a ConfigError naming what was found when no installation has it.
    Docker's image is left as it is (its server says its version)."""
    if options.backend == "docker":
        return options
    found, problems = installations_of(options)
    return _on(options, for_major(found, major, why, problems))


def of_target(options: BackendOptions, why: str) -> BackendOptions:
    """`options` with scratch servers of the logical restores' target version
    (`target_version`; None: the backend's own)."""
    if options.backend == "docker" or options.target_version is None:
        return options
    found, problems = installations_of(options)
    return _on(options, for_target(found, options.target_version, why, problems))



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


PROBE_SQL = """
CREATE EXTENSION vector;
CREATE TABLE probe (id int PRIMARY KEY, v vector(64));
INSERT INTO probe SELECT i, (SELECT array_agg(sin(i * d)::real ORDER BY d)
                             FROM generate_series(1, 64) d)::vector
    FROM generate_series(1, 200) i;
CREATE INDEX probe_v_idx ON probe USING hnsw (v vector_l2_ops);
SET enable_seqscan = off;
"""
PROBE_QUERY = ("SELECT id, v <-> (SELECT v FROM probe WHERE id = 7) FROM probe"
               " ORDER BY v <-> (SELECT v FROM probe WHERE id = 7) LIMIT 1")


def probe_pgvector(options: BackendOptions, found: Found) -> Capability:
    """Whether pgvector works in a scratch server of `found`: CREATE EXTENSION vector in a
    scratch database, 64-dimension vectors, an HNSW index built and answering a nearest-
    neighbour query with the row itself at distance 0."""
    inst = found.installation
    name = "pgvector_works"
    try:
        with backend_for(_on(options, found)) as backend, backend.cluster("probe") as cluster:
            cluster.query("CREATE DATABASE probe")
            try:
                with cluster.connect("probe") as conn:
                    conn.execute(PROBE_SQL.encode())
                    row = conn.execute(PROBE_QUERY).fetchone()
            except psycopg.OperationalError as exc:
                why = died_of_sigill(cluster, str(inst.bindir), inst.version)
                return Capability(name, False, why or f"the server lost the connection: "
                                  f"{_first_line(exc)}; its log: {cluster.server_log(5)}")
    except (DrillError, psycopg.Error) as exc:
        return Capability(name, False, f"pgvector in {inst.bindir} failed: {_first_line(exc)}")
    if row is None or row[0] != 7 or row[1] != 0:
        return Capability(name, False, f"pgvector in {inst.bindir} answered a nearest-"
                                       f"neighbour query wrongly: {row} instead of (7, 0.0)")
    return Capability(name, True, "CREATE EXTENSION vector, a 64-dimension distance and an "
                                  "HNSW index answering a query worked")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
