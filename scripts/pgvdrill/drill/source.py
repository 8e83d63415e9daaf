"""Source clusters holding a dataset: loaded once into a template, then copied."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pgvdrill import dataset
from pgvdrill.capabilities import died_of_sigill
from pgvdrill.cluster import Backend, Cluster
from pgvdrill.cluster.local import LocalBackend
from pgvdrill.dataset import Dataset, populate
from pgvdrill.errors import ConfigError

SOURCE_DB = "vector_db"  # the runbook's database name


NEIGHBOURS_SQL = """
CREATE TABLE documents_chunks (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id bigint NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    chunk_no int NOT NULL,
    embedding vector({dim})
);
INSERT INTO documents_chunks (document_id, chunk_no, embedding)
    SELECT id, 1, embedding FROM documents WHERE id % 4 = 0 AND embedding IS NOT NULL;
CREATE INDEX documents_chunks_document_id_idx ON documents_chunks (document_id);
CREATE SCHEMA archive;
CREATE TABLE archive.documents_2024 (LIKE public.documents INCLUDING ALL);
INSERT INTO archive.documents_2024 SELECT * FROM public.documents WHERE id % 10 = 0;
ANALYZE documents_chunks, archive.documents_2024;
"""


def add_neighbours(conn: psycopg.Connection[Any], dim: int) -> None:
    """What the runbook's partial dumps select among: a second table matching
    'documents*' (with an identity sequence and a foreign key), and a second schema."""
    conn.execute(NEIGHBOURS_SQL.format(dim=dim).encode())


def require_pgvector(backend: Backend) -> str:
    """The pgvector version the backend's servers offer, or a `ConfigError` saying how to fix."""
    version = backend.pgvector_version()
    if version is None:
        raise ConfigError(
            f"the {backend.name} backend's PostgreSQL {backend.major} has no pgvector extension",
            "install pgvector for that server (e.g. the postgresql-NN-pgvector package) or use "
            "the embedded backend",
        )
    return version


def require_runnable(backend: Backend, cluster: Cluster, exc: BaseException) -> None:
    """A `ConfigError` saying so when `exc` (a lost connection) came from a server of
    `backend` whose pgvector died of an instruction this CPU lacks (its log shows SIGILL)."""
    reason = died_of_sigill(cluster, _where(backend),
                            str(backend.facts().get("version", backend.major)))
    if reason is not None:
        raise ConfigError(reason, "use a pgvector built for this machine's CPU (pgvdrill "
                                  "installations --probe checks each installation)") from exc


def _dataset_refused(backend: Backend, exc: psycopg.Error) -> ConfigError:
    """The `ConfigError` for a server of `backend` refusing to build the dataset (e.g. a
    vector.so older than the SQL script CREATE EXTENSION runs), with the server's message."""
    said = (exc.diag.message_primary or str(exc)).strip()
    return ConfigError(
        f"the drill dataset could not be created on {_where(backend)} (pgvector "
        f"{backend.pgvector_version()}): the server said: {said}",
        "check that installation's pgvector (its vector.so, control file and SQL scripts "
        "must be of one build; pgvdrill installations --probe checks each installation)")


def _where(backend: Backend) -> str:
    return (str(backend.installation.bindir) if isinstance(backend, LocalBackend)
            else f"the {backend.name} backend")


def _loader_digest() -> str:
    """Changes whenever the dataset code or this module does, so a cached template is never
    stale."""
    digest = hashlib.sha256()
    for path in [*sorted(Path(dataset.__file__).parent.glob("*.py")), Path(__file__)]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def dataset_template(backend: Backend, data: Dataset) -> tuple[str, float]:
    """Name of the template holding `data` in SOURCE_DB, and the seconds spent loading it now
    (0.0 when it was already cached)."""
    require_pgvector(backend)
    name = f"dataset-{data.spec.key()}-{_loader_digest()}"
    started = time.monotonic()

    def build(cluster: Cluster) -> None:
        try:
            with cluster.connect() as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SOURCE_DB)))
            with cluster.connect(SOURCE_DB) as conn:
                populate(conn, data)
                add_neighbours(conn, data.spec.dim)
                conn.execute("CHECKPOINT")
        except psycopg.OperationalError as exc:
            require_runnable(backend, cluster, exc)
            raise
        except psycopg.Error as exc:
            raise _dataset_refused(backend, exc) from exc

    cached = backend.has_template(name)
    backend.ensure_template(name, build)
    return name, 0.0 if cached else time.monotonic() - started
