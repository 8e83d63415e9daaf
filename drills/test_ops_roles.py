"""Roles across a logical backup and restore, as an operator meets them: a source whose
objects belong to `app_owner` with grants to `reader`, backed up with `pgvdrill backup
logical` (the globals kept beside the dump) and restored onto a fresh server that has
neither role. The restore refuses before anything moves, names the roles and offers
options that work; --with-globals creates exactly the missing roles; the DR drill takes
the roles from the backup itself. A restore that fails anyway leaves the target as it was."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from fixtures.cli import Cli
from fixtures.ops import conninfo
from pgvdrill.backup.source import client_tools
from pgvdrill.cluster import Backend, Cluster
from pgvdrill.drill.dr import drill_logical
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.ops.restore_logical import USER_TABLES
from pgvdrill.repository import Repository
from pgvdrill.repository.catalog import read_entries
from pgvdrill.server import ExternalServer, parse_conninfo
from pgvdrill.verify import snapshot, verify

ROLES_SQL = """
CREATE ROLE app_owner NOLOGIN;
CREATE ROLE reader NOLOGIN;
DO $$DECLARE t record; BEGIN
  FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
    EXECUTE format('ALTER TABLE public.%I OWNER TO app_owner', t.tablename);
  END LOOP;
END$$;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader;
ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA public GRANT SELECT ON TABLES TO reader;
"""
Done = subprocess.CompletedProcess[str]


def ok(result: Done) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def refused(result: Done, *words: str) -> str:
    assert result.returncode == 5, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    return result.stderr


def with_roles(source: Cluster) -> None:
    """Objects owned by app_owner, grants and default privileges for reader."""
    source.query(ROLES_SQL, SOURCE_DB)


# make_cluster's servers are copies of one initdb (the source's system identifier), and the
# first database created in one gets the source database's OID: the source's identity,
# which a restore takes only into a server said to be a copy
COPY = "--into-copy-of-source"


def fresh_database(make_cluster: Callable[..., Cluster], name: str, *dbnames: str
                   ) -> Cluster:
    """A new server (its own initdb: neither role) with empty databases `dbnames`."""
    server = make_cluster(name)
    for dbname in dbnames:
        server.query(f"CREATE DATABASE {dbname} TEMPLATE template0")
    return server


def tables_in(cluster: Cluster, dbname: str) -> int:
    return int(str(cluster.query(USER_TABLES, dbname)[0][0]))


def only_entry(config: Path) -> tuple[Path, dict[str, object]]:
    [path] = (config.parent / "repo" / "catalog").glob("*.json")
    return path, json.loads(path.read_text())


def as_taken_before_globals(config: Path) -> str:
    """Make the repository's one logical backup look like one taken before pgvdrill kept
    globals: no globals.sql, none in its catalog entry."""
    path, entry = only_entry(config)
    files = entry["files"]
    assert isinstance(files, list) and isinstance(entry["extra"], dict)
    entry["files"] = [f for f in files if f["path"] != "globals.sql"]
    entry["extra"].pop("globals")
    path.write_text(json.dumps(entry))
    backup_id = str(entry["id"])
    (config.parent / "repo" / "logical" / backup_id / "globals.sql").unlink()
    return backup_id


def test_restore_logical_onto_a_fresh_server_refuses_then_restores_with_globals(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        make_cluster: Callable[..., Cluster]) -> None:
    with_roles(prod_source)
    config = ops_config()
    ok(pgvdrill_cli("backup", "logical", "--config", config))
    fresh = fresh_database(make_cluster, "fresh", "restored", "no_owner")
    restore = ("restore", "logical", "latest", "--config", config, COPY, "--target-dsn")

    # refused before anything moves, naming both roles and the options that work
    result = pgvdrill_cli(*restore, conninfo(fresh, "restored"))
    assert tables_in(fresh, "restored") == 0, result.stderr  # not half-restored
    hint = refused(result, "lacks role(s) the dump names: app_owner (default privileges, owns "
                   "objects); reader (default privileges, grants)", "nothing was restored",
                   "rerun with --with-globals", "--no-owner --no-privileges")
    assert "pgvdrill.logical" not in hint
    _, entry = only_entry(config)
    assert "globals.sql" in [f["path"] for f in entry["files"]]  # type: ignore[attr-defined]
    # --no-owner alone still meets the default privileges of app_owner and grants to reader
    refused(pgvdrill_cli(*restore, conninfo(fresh, "no_owner"), "--no-owner"),
            "app_owner (default privileges)", "or rerun with --no-owner --no-privileges")
    assert tables_in(fresh, "no_owner") == 0

    # the first option: the roles created from the backup's globals, the copy is exact
    out = ok(pgvdrill_cli(*restore, conninfo(fresh, "restored"), "--with-globals"))

    assert "created role(s) app_owner, reader from " in out
    with prod_source.connect(SOURCE_DB) as source, fresh.connect("restored") as restored:
        verify(snapshot(source), restored).raise_for_problems()  # owners and grants too

    # the second option, on another fresh server: everything owned by the connecting user
    bare = fresh_database(make_cluster, "bare", "no_owner")
    ok(pgvdrill_cli(*restore, conninfo(bare, "no_owner"), "--no-owner", "--no-privileges"))

    owners = bare.query("SELECT DISTINCT tableowner::text FROM pg_tables "
                        "WHERE schemaname = 'public'", "no_owner")
    assert owners == [("postgres",)]
    assert tables_in(bare, "no_owner") == tables_in(prod_source, SOURCE_DB)
    assert bare.query("SELECT count(*) FROM pg_roles WHERE rolname IN "
                      "('app_owner', 'reader')") == [(0,)]


def least_privilege_config(source: Cluster, tmp_path: Path) -> Path:
    """A configuration connecting as `backup` (LOGIN REPLICATION + pg_read_all_data, not a
    superuser), which pg_hba lets into the source's database only."""
    info = source.conninfo
    source.query("CREATE ROLE backup LOGIN REPLICATION PASSWORD 'backup-secret'; "
                 "GRANT pg_read_all_data TO backup")
    hba = source.read_file("pg_hba.conf").decode()
    source.write_file("pg_hba.conf", (
        f"host {SOURCE_DB} backup 127.0.0.1/32 scram-sha-256\n"
        "host all backup all reject\n" + hba).encode())
    source.reload()
    passfile = tmp_path / "backup.pgpass"
    passfile.write_text(f"{info.host}:{info.port}:*:backup:backup-secret\n")
    passfile.chmod(0o600)
    config = tmp_path / "pgvdrill.toml"
    config.write_text(f'[source]\nconninfo = "host={info.host} port={info.port} user=backup '
                      f'dbname={SOURCE_DB} passfile={passfile}"\n\n'
                      f'[repository]\npath = "{tmp_path / "repo"}"\n')
    return config


def test_least_privilege_backup_keeps_globals_verified_and_existing_roles_stay_unaltered(
        prod_source: Cluster, pgvdrill_cli: Cli, make_cluster: Callable[..., Cluster],
        tmp_path: Path) -> None:
    with_roles(prod_source)
    config = least_privilege_config(prod_source, tmp_path)
    as_backup = (conninfo(prod_source, "postgres")
                 .replace(f"user={prod_source.conninfo.user}", "user=backup")
                 .replace(f"passfile={prod_source.conninfo.passfile}",
                          f"passfile={tmp_path / 'backup.pgpass'}"))
    with pytest.raises(psycopg.OperationalError, match=r"pg_hba\.conf rejects connection"):
        psycopg.connect(as_backup)  # pg_dumpall's default database is out of its reach

    ok(pgvdrill_cli("backup", "logical", "--config", config))
    [backup_dir] = (tmp_path / "repo" / "logical").iterdir()
    assert (backup_dir / "globals.sql").is_file(), "no globals kept beside the dump"
    globals_sql = (backup_dir / "globals.sql").read_text()
    assert "CREATE ROLE app_owner;" in globals_sql and "backup-secret" not in globals_sql
    assert "PASSWORD" not in globals_sql and "SCRAM-SHA-256" not in globals_sql
    assert "ok: 1 backup(s) ok, 0 problem(s)" in ok(pgvdrill_cli("verify", "--all",
                                                                 "--config", config))

    # a target that already has reader, differently: --with-globals leaves it as it is
    target = fresh_database(make_cluster, "has-reader", "restored")
    target.query("CREATE ROLE reader LOGIN CONNECTION LIMIT 3")
    # ... but first as a user that may not create roles: refused, nothing created
    password = Path(target.conninfo.passfile).read_text().split(":")[-1].strip()
    target.query(f"CREATE ROLE restorer LOGIN PASSWORD '{password}'; "
                 "ALTER DATABASE restored OWNER TO restorer")
    restorer = tmp_path / "restorer.pgpass"
    restorer.write_text(f"*:*:*:restorer:{password}\n")
    restorer.chmod(0o600)
    as_restorer = (conninfo(target, "restored")
                   .replace(f"user={target.conninfo.user}", "user=restorer")
                   .replace(f"passfile={target.conninfo.passfile}", f"passfile={restorer}"))
    refused(pgvdrill_cli("restore", "logical", "latest", "--config", config, "--with-globals",
                         COPY, "--target-dsn", as_restorer),
            "failed at 'CREATE ROLE app_owner': permission denied to create role",
            "nothing was created", "needs CREATEROLE")
    assert target.query("SELECT count(*) FROM pg_roles WHERE rolname = 'app_owner'") == [(0,)]
    assert tables_in(target, "restored") == 0
    target.query("ALTER ROLE postgres CONNECTION LIMIT 50")  # the role pgvdrill connects as
    out = ok(pgvdrill_cli("restore", "logical", "latest", "--config", config, "--with-globals",
                          COPY, "--target-dsn", conninfo(target, "restored")))

    assert "created role(s) app_owner from " in out
    assert target.query("SELECT rolname::text, rolcanlogin, rolconnlimit FROM pg_roles "
                        "WHERE rolname IN ('app_owner', 'reader', 'postgres') ORDER BY 1") == [
        ("app_owner", False, -1), ("postgres", True, 50), ("reader", True, 3)]
    with prod_source.connect(SOURCE_DB) as source, target.connect("restored") as restored:
        verify(snapshot(source), restored).raise_for_problems()

    # damaged globals: verify names the file
    pristine = (backup_dir / "globals.sql").read_bytes()
    (backup_dir / "globals.sql").write_bytes(pristine.replace(b"app_owner", b"app_ownex"))
    result = pgvdrill_cli("verify", "--all", "--config", config)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "file globals.sql changed (sha256 differs)" in result.stdout + result.stderr
    (backup_dir / "globals.sql").write_bytes(pristine)

    # a backup taken before globals were kept: a note, not a problem; --with-globals says so
    backup_id = as_taken_before_globals(config)
    out = ok(pgvdrill_cli("verify", "--all", "--config", config))
    assert f"note: {backup_id} has no globals.sql" in out
    other = fresh_database(make_cluster, "old-backup", "restored")
    refused(pgvdrill_cli("restore", "logical", "latest", "--config", config, "--with-globals",
                         COPY, "--target-dsn", conninfo(other, "restored")),
            f"backup {backup_id} has no globals.sql")
    assert tables_in(other, "restored") == 0


def test_dr_drill_logical_takes_the_roles_from_the_backup_then_from_the_source(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        backend: Backend) -> None:
    with_roles(prod_source)
    config = ops_config()
    ok(pgvdrill_cli("backup", "logical", "--config", config))
    repo = Repository(config.parent / "repo")
    source = ExternalServer(parse_conninfo(conninfo(prod_source), "test"), client_tools(None))
    with prod_source.connect(SOURCE_DB) as conn:
        source_snapshot = snapshot(conn)
    prod_source.query("DROP OWNED BY reader; DROP ROLE reader", SOURCE_DB)  # gone since
    said: list[str] = []

    drill = drill_logical(backend, repo, read_entries(repo)[0], source, source_snapshot,
                          recall_threshold=0.5, say=said.append)

    assert drill["ok"], drill
    assert "  roles app_owner, reader created from the backup's globals.sql" in said

    as_taken_before_globals(config)
    said.clear()
    drill = drill_logical(backend, repo, read_entries(repo)[0], source, source_snapshot,
                          recall_threshold=0.5, say=said.append)

    assert not drill["ok"]  # the live source no longer has reader: the grants fail
    assert any("created from a live pg_dumpall --globals-only of" in line for line in said)


def test_a_restore_that_fails_leaves_the_target_database_as_it_was(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        make_cluster: Callable[..., Cluster]) -> None:
    config = ops_config()
    ok(pgvdrill_cli("backup", "logical", "--config", config))
    target = fresh_database(make_cluster, "in-the-way", "restored")
    # a view (no table: not refused up front) named like the dump's last table
    target.query("CREATE VIEW public.product_embeddings AS SELECT 1 AS x", "restored")

    result = pgvdrill_cli("restore", "logical", "latest", "--config", config, COPY,
                          "--target-dsn", conninfo(target, "restored"))

    assert result.returncode == 3, result.stdout + result.stderr
    assert tables_in(target, "restored") == 0, result.stderr  # not even the tables before it
    assert 'relation "product_embeddings" already exists' in result.stderr
    assert "nothing was restored (one transaction, rolled back)" in result.stderr
    assert target.query("SELECT count(*) FROM pg_namespace WHERE nspname = 'archive'",
                        "restored") == [(0,)]
