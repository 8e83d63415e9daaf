"""What a dataset is: its size, shape, kind and seed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pgvdrill.errors import ConfigError

K = 10  # neighbours per query in the ground truth
MAX_DIM = 2000  # pgvector indexes `vector` columns of at most 2000 dimensions
KINDS = ("gaussian", "clustered")
FILE_KIND_PREFIX = "file:"


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's recipe; other tables scale from `rows` (see generate.py)."""

    rows: int = 2000
    dim: int = 64
    kind: str = "gaussian"
    seed: int = 7
    queries: int = 20
    null_fraction: float = 0.02
    digest: str = ""  # file datasets: a hash of their vectors, so keys change with content

    def __post_init__(self) -> None:
        if not (self.kind in KINDS or self.kind.startswith(FILE_KIND_PREFIX)):
            raise ConfigError(f"unknown dataset kind {self.kind!r}",
                              f"use one of {', '.join(KINDS)} (or load a file)")
        check_dim(self.dim)
        if self.seed < 0:
            raise ConfigError(f"seed={self.seed}: seeds are non-negative integers")
        if self.queries < 1:
            raise ConfigError(f"queries={self.queries}: a dataset needs at least one query")
        if not 0 <= self.null_fraction < 1:
            raise ConfigError(f"null_fraction={self.null_fraction} is outside [0, 1)")
        with_vectors = self.rows - round(self.rows * self.null_fraction)
        if with_vectors < K:
            raise ConfigError(
                f"rows={self.rows} with null_fraction={self.null_fraction} leaves "
                f"{with_vectors} embeddings; the top-{K} ground truth needs at least {K}",
                "use more rows or a smaller null_fraction")

    def key(self) -> str:
        """A short stable name, e.g. "gaussian-2000x64-s7" (non-default options appended)."""
        key = f"{self.kind.replace(':', '-')}-{self.rows}x{self.dim}-s{self.seed}"
        if self.queries != DatasetSpec.queries:
            key += f"-q{self.queries}"
        if self.null_fraction != DatasetSpec.null_fraction:
            key += f"-n{self.null_fraction:g}"
        return f"{key}-{self.digest}" if self.digest else key


def check_dim(dim: int) -> None:
    """Raise ConfigError unless `dim` fits an indexed pgvector column."""
    if not 1 <= dim <= MAX_DIM:
        raise ConfigError(f"dimension {dim} is outside 1..{MAX_DIM}",
                          f"pgvector's HNSW and IVFFlat indexes take at most {MAX_DIM} "
                          "dimensions for vector columns")


def file_spec(name: str, documents: npt.NDArray[np.float32], queries: npt.NDArray[np.float32]
              ) -> DatasetSpec:
    """The spec of a dataset read from a file: no NULLs, a digest of its vectors."""
    digest = hashlib.blake2b(documents.tobytes(), digest_size=4)
    digest.update(queries.tobytes())
    return DatasetSpec(rows=len(documents), dim=documents.shape[1], kind=FILE_KIND_PREFIX + name,
                       queries=len(queries), null_fraction=0.0, digest=digest.hexdigest())
