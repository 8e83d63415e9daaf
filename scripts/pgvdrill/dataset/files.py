"""Datasets from embedding files: .npy, .parquet and ann-benchmarks .hdf5.

.npy and .parquet hold one set of vectors: the last `queries` rows become the queries,
the rows before them the documents. An .hdf5 file (ann-benchmarks layout) holds the
documents in `train` and the queries in `test`; its `neighbors` are the ground truth
when its `distance` is angular (cosine) and every train row is loaded, else the ground
truth is recomputed. File datasets have no NULL embeddings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pgvdrill.dataset.data import Dataset, Floats, Ints
from pgvdrill.dataset.generate import assemble
from pgvdrill.dataset.spec import K, check_dim, file_spec
from pgvdrill.errors import ConfigError

HALFVEC_MAX = 65504.0  # the largest float16: embedding_half must hold every value
SUFFIXES = (".npy", ".parquet", ".hdf5", ".h5")
FILES_HINT = "install the optional file readers: pip install 'pgvdrill[files]'"


def from_file(path: Path, *, rows: int | None = None, queries: int = 20) -> Dataset:
    """The dataset stored in `path`, with at most `rows` documents and `queries` queries."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"dataset file {path} does not exist",
                          f"pass an existing {', '.join(SUFFIXES)} file")
    if rows is not None and rows < K:
        raise ConfigError(f"rows={rows}: a dataset needs at least {K} documents")
    suffix = path.suffix.lower()
    titles: list[str | None] | None = None
    bodies: list[str | None] | None = None
    truth: Ints | None = None
    if suffix == ".npy":
        docs, query_vectors = _split(path, _vectors(path, _read_npy(path)), rows, queries)
    elif suffix == ".parquet":
        vectors, columns = _read_parquet(path)
        docs, query_vectors = _split(path, _vectors(path, vectors), rows, queries)
        titles, bodies = (columns.get(name, [None] * len(vectors))[:len(docs)]
                          for name in ("title", "text"))
    elif suffix in (".hdf5", ".h5"):
        docs, query_vectors, truth = _read_hdf5(path, rows, queries)
    else:
        raise ConfigError(f"unknown dataset file type {path.name!r}",
                          f"use one of {', '.join(SUFFIXES)}")
    return assemble(file_spec(path.stem, docs, query_vectors), docs,
                    np.ones(len(docs), dtype=np.bool_), query_vectors,
                    titles=titles, bodies=bodies, ground_truth=truth)


def _vectors(path: Path, array: Any, what: str = "embeddings") -> Floats:
    """`array` as C-contiguous float32 rows, or ConfigError saying what is wrong."""
    array = np.asarray(array)
    where = f"{path}: {what}"
    if array.dtype.kind not in "fiu":
        raise ConfigError(f"{where} have dtype {array.dtype}, not numbers",
                          "store the embeddings as a float array")
    if array.ndim != 2:
        raise ConfigError(f"{where} have shape {array.shape}, not (rows, dimensions)",
                          "store one embedding per row in a 2-D array")
    if array.shape[0] == 0:
        raise ConfigError(f"{where} are empty", "the file must hold at least one embedding")
    check_dim(array.shape[1])
    vectors = np.ascontiguousarray(array, dtype=np.float32)
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        raise ConfigError(f"{where} have NaN or infinite values in {int(bad.sum())} rows "
                          f"(first: row {int(np.argmax(bad))})",
                          "drop or repair those rows before loading")
    if np.abs(vectors).max() > HALFVEC_MAX:
        raise ConfigError(f"{where} have values beyond ±{HALFVEC_MAX:g}, which halfvec "
                          "cannot hold", "scale or normalise the embeddings")
    zero = ~vectors.any(axis=1)
    if zero.any():
        raise ConfigError(f"{where} have {int(zero.sum())} all-zero rows (first: row "
                          f"{int(np.argmax(zero))}); cosine distance is undefined for them",
                          "drop those rows before loading")
    return vectors


def _split(path: Path, vectors: Floats, rows: int | None, queries: int
           ) -> tuple[Floats, Floats]:
    """Documents (the first rows, at most `rows`) and queries (the last `queries` rows)."""
    available = len(vectors) - queries
    if available < K:
        raise ConfigError(
            f"{path} has {len(vectors)} embeddings: too few for {queries} queries and "
            f"{K} documents", f"supply at least {queries + K} rows or ask for fewer queries")
    return vectors[:min(available, rows or available)], vectors[available:]


def _read_npy(path: Path) -> Any:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not a readable .npy array: {exc}",
                          "save the embeddings with numpy.save as a 2-D float array") from exc


def _read_parquet(path: Path) -> tuple[Any, dict[str, list[str | None]]]:
    """The embedding column as a 2-D array, and the text columns present."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ConfigError("reading .parquet files needs pyarrow", FILES_HINT) from exc
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ConfigError(f"{path} is not a readable Parquet file: {exc}",
                          "check the file") from exc
    if "embedding" not in table.column_names:
        raise ConfigError(f"{path} has no column named 'embedding' "
                          f"(columns: {', '.join(table.column_names)})",
                          "store the vectors in a list<float> column named embedding")
    column = table.column("embedding").combine_chunks()
    kind = column.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)
            or pa.types.is_fixed_size_list(kind)) or not pa.types.is_floating(kind.value_type):
        raise ConfigError(f"{path}: column 'embedding' has type {kind}",
                          "store the vectors as list<float> or fixed_size_list<float>")
    if column.null_count:
        raise ConfigError(f"{path}: column 'embedding' has {column.null_count} nulls",
                          "drop the rows without an embedding")
    lengths = set(pa.compute.list_value_length(column).to_pylist())
    if len(lengths) != 1:
        raise ConfigError(f"{path}: embeddings have different lengths "
                          f"{sorted(lengths)[:5]}", "every embedding needs the same dimension")
    values = column.flatten().to_numpy(zero_copy_only=False)
    texts = {name: table.column(name).cast(pa.string()).to_pylist()
             for name in ("title", "text") if name in table.column_names}
    return values.reshape(len(column), lengths.pop()), texts


def _read_hdf5(path: Path, rows: int | None, queries: int) -> tuple[Floats, Floats, Ints | None]:
    """Documents, queries and, where usable, the file's own ground truth."""
    try:
        import h5py
    except ImportError as exc:
        raise ConfigError("reading .hdf5 files needs h5py", FILES_HINT) from exc
    try:
        with h5py.File(path, "r") as f:
            missing = [name for name in ("train", "test") if name not in f]
            if missing:
                raise ConfigError(f"{path} has no dataset {' or '.join(missing)}",
                                  "use the ann-benchmarks layout: train, test, neighbors")
            total = len(f["train"])
            docs = _vectors(path, f["train"][:rows], "train vectors")
            query_vectors = _vectors(path, f["test"][:queries], "test vectors")
            usable = (str(f.attrs.get("distance", "")) in ("angular", "cosine")
                      and len(docs) == total and "neighbors" in f)
            neighbors = np.asarray(f["neighbors"][:queries]) if usable else None
    except OSError as exc:
        raise ConfigError(f"{path} is not a readable HDF5 file: {exc}",
                          "check the file") from exc
    if len(docs) < K:
        raise ConfigError(f"{path} has {len(docs)} train vectors, fewer than {K}")
    if neighbors is not None and (neighbors.ndim != 2 or neighbors.shape[0] != len(query_vectors)
                                  or neighbors.shape[1] < K or neighbors.min() < 0
                                  or neighbors.max() >= len(docs)):
        raise ConfigError(f"{path}: neighbors of shape {neighbors.shape} do not index "
                          f"the {len(docs)} train rows for {len(query_vectors)} test queries",
                          "fix the file or drop its neighbors dataset to recompute them")
    truth = None if neighbors is None else neighbors[:, :K].astype(np.int64) + 1
    return docs, query_vectors, truth
