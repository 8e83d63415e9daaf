"""Datasets for the drills: seeded or from files, loaded into a pgvector schema.

    data = generate(DatasetSpec(rows=2000, dim=64))   # or from_file(path), real_dataset()
    populate(conn, data)                              # schema, binary COPY, indexes
"""

from pgvdrill.dataset.data import AccountBehaviors, Dataset, Documents, ProductEmbeddings
from pgvdrill.dataset.files import from_file
from pgvdrill.dataset.generate import generate, ivfflat_lists
from pgvdrill.dataset.load import load, populate
from pgvdrill.dataset.real import real_dataset
from pgvdrill.dataset.schema import (
    BTREE_INDEXES,
    COLUMNS,
    TABLES,
    VECTOR_INDEXES,
    columns,
    create_indexes,
    create_schema,
    documents_copies_sql,
    vector_indexes,
)
from pgvdrill.dataset.spec import DatasetSpec, K

__all__ = [
    "BTREE_INDEXES",
    "COLUMNS",
    "TABLES",
    "VECTOR_INDEXES",
    "AccountBehaviors",
    "Dataset",
    "DatasetSpec",
    "Documents",
    "K",
    "ProductEmbeddings",
    "columns",
    "create_indexes",
    "create_schema",
    "documents_copies_sql",
    "from_file",
    "generate",
    "ivfflat_lists",
    "load",
    "populate",
    "real_dataset",
    "vector_indexes",
]
