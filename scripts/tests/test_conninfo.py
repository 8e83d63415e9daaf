"""Credentials reach tools through libpq's password file, never through argv or DSNs; the
caller's libpq environment (the operator's settings for the source) never reaches a
scratch server's connections."""

from __future__ import annotations

from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from pgvdrill.cluster import ConnInfo


def test_dsn_and_env_carry_a_passfile_not_a_password() -> None:
    info = ConnInfo("127.0.0.1", 55432, "postgres", "vector_db", Path("/x/pgpass"))
    params = conninfo_to_dict(info.dsn())
    assert params["password"] == ""  # empty: libpq reads the passfile, ignores PGPASSWORD
    assert params["passfile"] == "/x/pgpass"
    env = info.env()
    assert env["PGPASSWORD"] is None  # removed from the tool's environment
    assert env["PGPASSFILE"] == "/x/pgpass"
    assert "dbname=other" in info.dsn("other")


def test_the_callers_libpq_environment_is_shut_out() -> None:
    info = ConnInfo("127.0.0.1", 55432, "postgres", "vector_db", Path("/x/pgpass"))
    params = conninfo_to_dict(info.dsn())
    assert params["hostaddr"] == ""
    assert params["sslmode"] == "disable"
    env = info.env()
    for name in ("PGSERVICE", "PGSERVICEFILE", "PGOPTIONS", "PGHOSTADDR", "PGSSLROOTCERT"):
        assert env[name] is None, name
