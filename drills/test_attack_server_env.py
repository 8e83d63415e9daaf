"""The caller's libpq environment is the operator's way to the source (PGPASSWORD,
PGSERVICE, PGSERVICEFILE, PGHOST...). A scratch server pgvdrill starts (a template copy or
a restored copy of production) must not inherit it: everything that runs inside the
server (archive_command, COPY ... PROGRAM, dblink and postgres_fdw, a subscription's
apply worker) would log into the source with the operator's password."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pgvdrill.cluster import Backend, Cluster
from pgvdrill.cluster.base import LIBPQ_VARIABLES

OPERATOR = {"PGPASSWORD": "the-sources-password", "PGHOST": "prod.example",
            "PGPORT": "5999", "PGUSER": "backup", "PGOPTIONS": "-c statement_timeout=1",
            "PGPASSFILE": "/root/.pgpass-production",
            "PGSYSCONFDIR": "/etc/operator"}  # where libpq finds the operator's services


def test_a_scratch_server_holds_none_of_the_callers_libpq_environment(
        backend: Backend, make_cluster: Callable[..., Cluster],
        monkeypatch: pytest.MonkeyPatch) -> None:
    if backend.name == "docker":
        pytest.skip("a container's server never sees the caller's environment")
    for name, value in OPERATOR.items():
        monkeypatch.setenv(name, value)
    cluster = make_cluster("inherits")  # started here, with the variables set
    cluster.query("CREATE TABLE server_env (line text)")
    cluster.query("COPY server_env FROM PROGRAM 'env'")  # the server's own environment

    lines = [str(line).split("=", 1) for (line,) in cluster.query("SELECT line FROM "
                                                                  "server_env")]
    seen = {pair[0]: pair[1] for pair in lines if len(pair) == 2}
    inherited = {name for name, value in OPERATOR.items() if seen.get(name) == value}
    assert not inherited, sorted(inherited)
    # PostgreSQL sets these two itself, to its own installation's directories
    assert set(seen) & set(LIBPQ_VARIABLES) <= {"PGSYSCONFDIR", "PGLOCALEDIR"}


def test_scratch_connections_ignore_the_callers_authentication_and_ssl_demands(
        make_cluster: Callable[..., Cluster], monkeypatch: pytest.MonkeyPatch) -> None:
    """What an operator sets for the source (direct TLS, a required authentication
    method, the server's OS user) is not what pgvdrill's scratch servers offer."""
    monkeypatch.setenv("PGSSLNEGOTIATION", "direct")  # libpq: needs sslmode require
    monkeypatch.setenv("PGREQUIREAUTH", "md5")
    monkeypatch.setenv("PGREQUIREPEER", "postgres-on-production")

    cluster = make_cluster("demanding")

    assert cluster.query("SELECT 1") == [(1,)]
