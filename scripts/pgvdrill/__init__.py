"""pgvdrill: restore drills for PostgreSQL + pgvector backups."""

__version__ = "0.1.0"
