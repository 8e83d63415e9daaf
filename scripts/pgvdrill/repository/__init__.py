"""The backup repository: backups on disk plus one catalog entry per complete backup."""

from pgvdrill.repository.catalog import Entry, FileSum, checksum_files, file_problems
from pgvdrill.repository.layout import KINDS, Repository

__all__ = ["KINDS", "Entry", "FileSum", "Repository", "checksum_files", "file_problems"]
