"""Credentials reach tools through libpq's password file, never through argv or DSNs."""

from __future__ import annotations

from pathlib import Path

from pgvdrill.cluster import ConnInfo


def test_dsn_and_env_carry_a_passfile_not_a_password() -> None:
    info = ConnInfo("127.0.0.1", 55432, "postgres", "vector_db", Path("/x/pgpass"))
    assert "password" not in info.dsn()
    assert "passfile=/x/pgpass" in info.dsn()
    env = info.env()
    assert "PGPASSWORD" not in env
    assert env["PGPASSFILE"] == "/x/pgpass"
    assert "dbname=other" in info.dsn("other")
