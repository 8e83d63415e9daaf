"""The shipped real dataset: all-MiniLM-L6-v2 embeddings of Python docstrings.

fixtures/data/real_minilm.npz (made by fixtures/data/make_real_dataset.py) holds 3000
document embeddings (384-d, unit length) with their titles and texts, and 100 embeddings
of held-out docstrings used as queries. Loading needs numpy only.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from pgvdrill.dataset.data import Dataset
from pgvdrill.dataset.generate import assemble
from pgvdrill.dataset.spec import file_spec
from pgvdrill.errors import ConfigError

REAL_DATASET = Path(__file__).resolve().parents[3] / "fixtures" / "data" / "real_minilm.npz"


def real_dataset(path: Path = REAL_DATASET, *, queries: int = 20) -> Dataset:
    """The real dataset with its first `queries` held-out queries (at most 100)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            embeddings = npz["embeddings"].astype(np.float32)
            titles, texts = npz["titles"].tolist(), npz["texts"].tolist()
            query_vectors = npz["queries"].astype(np.float32)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"cannot read the real dataset {path}: {exc}",
                          "it ships in the pgvdrill repository under fixtures/data; run from "
                          "a checkout or regenerate it with make_real_dataset.py") from exc
    if not 1 <= queries <= len(query_vectors):
        raise ConfigError(f"queries={queries}: the real dataset has {len(query_vectors)}",
                          f"ask for 1..{len(query_vectors)} queries")
    query_vectors = query_vectors[:queries]
    return assemble(file_spec(path.stem, embeddings, query_vectors), embeddings,
                    np.ones(len(embeddings), dtype=np.bool_), query_vectors,
                    titles=titles, bodies=texts)
