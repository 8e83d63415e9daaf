"""Datasets from .npy, .parquet and .hdf5 files, bad inputs, and the shipped real dataset."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pgvdrill.dataset import K, from_file, real_dataset
from pgvdrill.dataset.truth import exact_top_k
from pgvdrill.errors import ConfigError


def vectors(n: int = 60, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def write_hdf5(path: Path, train: np.ndarray, test: np.ndarray, distance: str,
               neighbors: np.ndarray | None = None) -> Path:
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = distance
        f["train"], f["test"] = train, test
        if neighbors is not None:
            f["neighbors"] = neighbors
    return path


def test_npy_last_rows_are_queries(tmp_path: Path) -> None:
    array = vectors()
    np.save(tmp_path / "emb.npy", array.astype(np.float64))
    data = from_file(tmp_path / "emb.npy", queries=5)
    assert np.array_equal(data.documents.embeddings, array[:55])
    assert np.array_equal(data.queries, array[55:])
    assert data.spec.kind == "file:emb" and data.spec.rows == 55 and data.spec.dim == 8
    assert data.spec.key().startswith("file-emb-55x8-s7-q5")
    assert data.documents.has_embedding.all()
    assert np.array_equal(data.ground_truth,
                          exact_top_k(array[:55], data.documents.has_embedding, array[55:]))
    assert len(from_file(tmp_path / "emb.npy", rows=20, queries=5).documents.ids) == 20


def test_key_changes_with_file_content(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", vectors(seed=1))
    key = from_file(tmp_path / "a.npy").spec.key()
    np.save(tmp_path / "a.npy", vectors(seed=2))
    assert from_file(tmp_path / "a.npy").spec.key() != key


@pytest.mark.parametrize("fixed", [True, False])
def test_parquet_with_text_columns(tmp_path: Path, fixed: bool) -> None:
    array = vectors(40, 6)
    kind = pa.list_(pa.float32(), 6) if fixed else pa.list_(pa.float32())
    table = pa.table({
        "embedding": pa.array(array.tolist(), type=kind),
        "title": [f"Título {i}" for i in range(40)],
        "text": [f"テキスト {i}" for i in range(40)],
    })
    pq.write_table(table, tmp_path / "emb.parquet")
    data = from_file(tmp_path / "emb.parquet", queries=4)
    assert np.array_equal(data.documents.embeddings, array[:36])
    assert np.array_equal(data.queries, array[36:])
    assert data.documents.titles[:2] == ["Título 0", "Título 1"]
    assert data.documents.bodies[35] == "テキスト 35"


def test_hdf5_angular_uses_the_files_neighbors(tmp_path: Path) -> None:
    train, test = vectors(50, 4), vectors(8, 4, seed=1)
    neighbors = np.tile(np.arange(49, 49 - 12, -1), (8, 1))  # deliberately not the truth
    path = write_hdf5(tmp_path / "ann.hdf5", train, test, "angular", neighbors)
    data = from_file(path, queries=3)
    assert np.array_equal(data.documents.embeddings, train)
    assert np.array_equal(data.queries, test[:3])
    assert np.array_equal(data.ground_truth, neighbors[:3, :K] + 1)


@pytest.mark.parametrize(("distance", "rows"), [("euclidean", None), ("angular", 30)])
def test_hdf5_recomputes_truth_otherwise(tmp_path: Path, distance: str, rows: int | None
                                         ) -> None:
    train, test = vectors(50, 4), vectors(8, 4, seed=1)
    neighbors = np.zeros((8, K), dtype=np.int64)
    data = from_file(write_hdf5(tmp_path / "ann.h5", train, test, distance, neighbors),
                     rows=rows)
    docs = train[:rows]
    assert data.queries.shape == (8, 4)  # fewer test rows than queries asked: all of them
    assert np.array_equal(data.ground_truth,
                          exact_top_k(docs, np.ones(len(docs), dtype=np.bool_), test))


def bad_file(tmp_path: Path, name: str, array: np.ndarray) -> Path:
    np.save(tmp_path / name, array)
    return tmp_path / name


@pytest.mark.parametrize(("array", "message"), [
    (np.zeros((0, 8), np.float32), "empty"),
    (np.ones(40, np.float32), "shape"),
    (np.array([["a"] * 4] * 40), "dtype"),
    (np.ones((40, 2001), np.float32), "dimension 2001"),
    (np.ones((15, 8), np.float32), "too few"),
    (np.where(np.arange(40)[:, None] == 7, np.nan, vectors(40)), "NaN or infinite .* 1 rows"),
    (np.where(np.arange(40)[:, None] == 3, 0.0, vectors(40)), "all-zero"),
    (vectors(40) * 1e5, "halfvec"),
])
def test_bad_arrays(tmp_path: Path, array: np.ndarray, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        from_file(bad_file(tmp_path, "bad.npy", array))
    assert info.value.hint


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        from_file(tmp_path / "missing.npy")
    (tmp_path / "emb.csv").write_text("1,2\n")
    with pytest.raises(ConfigError, match="unknown dataset file type"):
        from_file(tmp_path / "emb.csv")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ConfigError, match=r"not a readable \.npy"):
        from_file(tmp_path / "junk.npy")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(ConfigError, match="not a readable Parquet"):
        from_file(tmp_path / "junk.parquet")
    (tmp_path / "junk.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(ConfigError, match="not a readable HDF5"):
        from_file(tmp_path / "junk.hdf5")


@pytest.mark.parametrize(("column", "message"), [
    (pa.array([[1.0, 2.0]] * 20), "no column named 'embedding'"),
    (pa.array([[1.0, 2.0]] * 19 + [[1.0]]), "different lengths"),
    (pa.array([[1.0, 2.0]] * 19 + [None]), "nulls"),
    (pa.array([["a", "b"]] * 20), "type"),
])
def test_bad_parquet(tmp_path: Path, column: pa.Array, message: str) -> None:
    name = "vectors" if message.startswith("no column") else "embedding"
    pq.write_table(pa.table({name: column}), tmp_path / "bad.parquet")
    with pytest.raises(ConfigError, match=message):
        from_file(tmp_path / "bad.parquet", queries=2)


def test_bad_hdf5(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "bad.hdf5", "w") as f:
        f["train"] = vectors(20, 4)
    with pytest.raises(ConfigError, match="no dataset test"):
        from_file(tmp_path / "bad.hdf5")
    path = write_hdf5(tmp_path / "nb.hdf5", vectors(20, 4), vectors(3, 4), "angular",
                      np.full((3, K), 20))
    with pytest.raises(ConfigError, match="neighbors"):
        from_file(path)


@pytest.mark.parametrize(("module", "suffix"), [("pyarrow", ".parquet"), ("h5py", ".hdf5")])
def test_missing_optional_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str,
                                 suffix: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    (tmp_path / f"x{suffix}").write_bytes(b"")
    with pytest.raises(ConfigError, match=f"needs {module}") as info:
        from_file(tmp_path / f"x{suffix}")
    assert "pgvdrill[files]" in info.value.hint


def test_real_dataset() -> None:
    data = real_dataset()
    assert data.documents.embeddings.shape == (3000, 384)
    assert data.queries.shape == (20, 384)
    assert np.allclose(np.linalg.norm(data.documents.embeddings, axis=1), 1, atol=1e-5)
    assert all(data.documents.titles) and all(data.documents.bodies)
    assert data.spec.kind == "file:real_minilm"
    # real embeddings: a query's nearest document is far closer than a random one
    sims = data.queries @ data.documents.embeddings.T
    assert sims.max(axis=1).mean() > sims.mean() + 0.3
    assert real_dataset(queries=100).queries.shape == (100, 384)
    with pytest.raises(ConfigError, match="queries=101"):
        real_dataset(queries=101)


def test_real_dataset_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the real dataset"):
        real_dataset(tmp_path / "nope.npz")
