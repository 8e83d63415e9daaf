"""Logical backups (pg_dump) and restores (pg_restore)."""
