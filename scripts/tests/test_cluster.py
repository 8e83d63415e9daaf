"""The local cluster backend on real servers: lifecycle, crashes, config, data-dir files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pgvdrill.backends import make_backend
from pgvdrill.cluster.local import LocalBackend, LocalCluster
from pgvdrill.drill.source import require_pgvector
from pgvdrill.errors import ConfigError, DrillError
from pgvdrill.proc.runner import ToolCall

PG15 = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture(scope="module")
def local_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    made = make_backend(cache_dir=tmp_path_factory.mktemp("cache"))
    yield made
    made.close()


@pytest.fixture
def cluster(local_backend: LocalBackend) -> Iterator[LocalCluster]:
    with local_backend.cluster("unit") as made:
        assert isinstance(made, LocalCluster)
        yield made


def count_rows(cluster: LocalCluster) -> int:
    return int(cluster.query("SELECT count(*) FROM t")[0][0])  # type: ignore[call-overload]


def test_clusters_are_copies_with_their_own_ports(local_backend: LocalBackend) -> None:
    with local_backend.cluster("a") as first, local_backend.cluster("b") as second:
        assert first.conninfo.port != second.conninfo.port
        first.query("CREATE TABLE only_in_a ()")
        assert second.query("SELECT to_regclass('only_in_a')") == [(None,)]


def test_pgvector_is_available(cluster: LocalCluster, local_backend: LocalBackend) -> None:
    cluster.query("CREATE EXTENSION vector")
    version = cluster.query("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    assert version == [(local_backend.pgvector_version(),)]


@pytest.mark.parametrize("how", ["kill", "immediate"])
def test_crash_then_restart_recovers_committed_data(cluster: LocalCluster, how: str) -> None:
    cluster.query("CREATE TABLE t AS SELECT generate_series(1, 1000) AS i")
    cluster.crash(how)  # type: ignore[arg-type]
    assert not cluster.is_running()
    cluster.start()
    assert count_rows(cluster) == 1000
    assert "redo" in cluster.server_log(100) or "recover" in cluster.server_log(100)


def test_configure_writes_the_included_file(cluster: LocalCluster) -> None:
    cluster.configure(work_mem="7MB", application_name="it's quoted")
    cluster.reload()
    with cluster.connect() as conn:
        conn.execute("SELECT pg_sleep(0.2)")
    assert cluster.query("SHOW work_mem") == [("7MB",)]
    assert "include_if_exists = 'pgvdrill.conf'" in cluster.read_file("postgresql.conf").decode()
    assert "'it''s quoted'" in cluster.read_file("pgvdrill.conf").decode()


def test_stop_and_start_again(cluster: LocalCluster) -> None:
    cluster.stop()
    assert not cluster.is_running()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.conninfo.dsn(), connect_timeout=2)
    cluster.start()
    assert cluster.query("SELECT 1") == [(1,)]


def test_data_directory_files(cluster: LocalCluster) -> None:
    assert "PG_VERSION" in cluster.list_dir()
    cluster.write_file("recovery.signal", b"")
    assert cluster.read_file("recovery.signal") == b""
    cluster.remove_file("recovery.signal")
    assert "recovery.signal" not in cluster.list_dir()
    with pytest.raises(ValueError, match="outside the data directory"):
        cluster.read_file("../pgpass")


def test_start_failure_carries_the_server_log(cluster: LocalCluster) -> None:
    cluster.stop()
    cluster.configure(shared_buffers="not-a-size")
    with pytest.raises(DrillError, match="did not start") as caught:
        cluster.start(timeout=20)
    assert "shared_buffers" in str(caught.value)


def test_system_backend_by_bin_dir(local_backend: LocalBackend, tmp_path: Path) -> None:
    system = make_backend("system", pg_bin=local_backend.installation.bindir,
                          cache_dir=tmp_path)
    try:
        with system.cluster("system") as cluster:
            version = str(cluster.query("SHOW server_version_num")[0][0])
            assert version.startswith(str(local_backend.major))
            assert system.name == "system" and system.major == local_backend.major
    finally:
        system.close()


@pytest.mark.skipif(not (PG15 / "postgres").exists(), reason="no Debian PostgreSQL 15 here")
def test_system_server_without_pgvector_is_refused(tmp_path: Path) -> None:
    system = make_backend("system", pg_bin=PG15, cache_dir=tmp_path)
    try:
        with pytest.raises(ConfigError, match="has no pgvector extension"):
            require_pgvector(system)
    finally:
        system.close()


def test_adopt_a_base_backup(cluster: LocalCluster, local_backend: LocalBackend) -> None:
    cluster.query("CREATE TABLE t AS SELECT generate_series(1, 100) AS i")
    copy = local_backend.workdir / "copy"
    cluster.run_tool(ToolCall("pg_basebackup", ["-D", copy, "-Fp", "-X", "stream", "-c", "fast"]))
    restored = local_backend.adopt("restored", copy)
    try:
        restored.start()
        assert count_rows(restored) == 100
        assert not copy.exists()
    finally:
        restored.destroy()


def test_adopt_refuses_what_is_not_a_data_directory(local_backend: LocalBackend,
                                                    tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a PostgreSQL data directory"):
        local_backend.adopt("nothing", tmp_path)
