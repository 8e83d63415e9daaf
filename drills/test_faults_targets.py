"""Issue 13, class 5: restores only ever write where they were told, and never over the
source.

restore logical tells the source by system identifier and database OID (recorded in the
catalog at backup time, and the live source's when it answers), not by how the host is
spelled, and refuses a target whose identity it cannot tell. restore physical|pitr
refuses shared and system directories, directories in or around a cluster's files or the
repository, and never changes the mode or owner of a directory it did not create.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from fixtures.cli import Cli
from fixtures.ops import ArchivedRepo, conninfo
from fixtures.pgctl import StartFn
from fixtures.source_guard import source_check_cannot_log_in, spelled_localhost
from pgvdrill import osuser
from pgvdrill.cluster import Backend, Cluster
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.errors import RestoreError
from pgvdrill.installation import Installation
from pgvdrill.ops.restore_place import refuse_unsafe_place
from pgvdrill.ops.restore_target import Identity
from pgvdrill.proc import runner

Done = subprocess.CompletedProcess[str]
AFTER_BACKUP = "CREATE TABLE written_after_backup AS SELECT 42 AS answer"
TABLES = ("SELECT c.relname, c.oid::bigint FROM pg_class c JOIN pg_namespace n ON "
          "n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1")


def refused(result: Done, code: int, words: str) -> None:
    assert result.returncode == code, result.stdout + result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr, result.stderr


def untouched(source: Cluster) -> list[tuple[object, ...]]:
    """What a restore of the dump over the source would change: --clean drops and re-creates
    the dump's tables (new OIDs); the table written after the backup stays, with its row."""
    return source.query(
        "SELECT c.relname, c.oid::bigint, (SELECT answer FROM written_after_backup) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1", SOURCE_DB)


def test_fault_restore_logical_into_the_source_spelled_localhost_is_refused(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        tmp_path: Path) -> None:
    """The issue's case: [source] says host=127.0.0.1, the target host=localhost (the same
    server), and the source check cannot log in (a wrong password in its passfile). Where
    the target's connection went (127.0.0.1, the port) is where the [source] conninfo
    leads: the same server and database, whatever the host is called, asked before any
    identity."""
    config = ops_config()
    assert pgvdrill_cli("backup", "logical", "--config", config).returncode == 0
    prod_source.query(AFTER_BACKUP, SOURCE_DB)
    before = untouched(prod_source)
    info = prod_source.conninfo
    source_check_cannot_log_in(config, prod_source, tmp_path)
    assert "127.0.0.1" in config.read_text()
    target = spelled_localhost(prod_source)

    result = pgvdrill_cli("restore", "logical", "latest", "--target-dsn", target, "--clean",
                          "--config", config)

    refused(result, 5, "is the configured source: it is reached at 127.0.0.1 port "
                       f"{info.port}, the same server as the [source] conninfo's 127.0.0.1")
    assert f"the same database {SOURCE_DB}" in result.stderr and "--force" in result.stderr
    assert untouched(prod_source) == before  # the same tables, the same OIDs (not re-created)


def test_fault_restore_logical_into_a_target_that_hides_its_identity_is_refused(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        make_cluster: Callable[..., Cluster], tmp_path: Path) -> None:
    """A target whose user may not run pg_control_system() cannot be told apart from the
    source: refused, never assumed safe (it was restored into)."""
    config = ops_config()
    assert pgvdrill_cli("backup", "logical", "--config", config).returncode == 0
    target = make_cluster("hidden")
    target.query("CREATE ROLE restorer LOGIN PASSWORD 'restorer-secret'")
    target.query("CREATE DATABASE restored OWNER restorer TEMPLATE template0")
    target.query("REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC", "restored")
    passfile = tmp_path / "restorer.pgpass"
    passfile.write_text("*:*:*:restorer:restorer-secret\n")
    passfile.chmod(0o600)
    dsn = (f"host={target.conninfo.host} port={target.conninfo.port} user=restorer "
           f"dbname=restored passfile={passfile}")

    result = pgvdrill_cli("restore", "logical", "latest", "--target-dsn", dsn, "--no-owner",
                          "--no-privileges", "--config", config)

    refused(result, 5, "cannot verify that restore target")
    assert "GRANT EXECUTE ON FUNCTION pg_control_system() TO" in result.stderr
    assert target.query("SELECT count(*) FROM pg_class WHERE relname = 'documents'",
                        "restored") == [(0,)]


def test_fault_with_globals_never_creates_roles_on_the_sources_server(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli) -> None:
    """Another database on the source's server is a fair target, but --with-globals would
    create the roles the dump names there: roles are the whole server's."""
    prod_source.query("CREATE ROLE app_owner NOLOGIN")
    prod_source.query("CREATE TABLE owned (x int)", SOURCE_DB)
    prod_source.query("ALTER TABLE owned OWNER TO app_owner", SOURCE_DB)
    config = ops_config()
    assert pgvdrill_cli("backup", "logical", "--config", config).returncode == 0
    prod_source.query("DROP TABLE owned", SOURCE_DB)
    prod_source.query("DROP ROLE app_owner")
    prod_source.query("CREATE DATABASE another TEMPLATE template0")

    result = pgvdrill_cli("restore", "logical", "latest", "--with-globals", "--target-dsn",
                          conninfo(prod_source, "another"), "--config", config)

    refused(result, 5, "would create roles on the source's server")
    assert prod_source.query("SELECT count(*) FROM pg_roles WHERE rolname = 'app_owner'") \
        == [(0,)]


def physical_copy(source: Cluster, backend: Backend, into: Path) -> Path:
    """A physical copy of `source` (pg_basebackup, no standby settings): started, it is a
    server of its own with the source's system identifier and database OIDs."""
    tools = backend.tools()
    assert isinstance(tools, Installation)
    runner.run([tools.tool("pg_basebackup"), "-d", conninfo(source, "postgres"), "-D", into,
                "-X", "stream", "-c", "fast"], timeout=600)
    osuser.chown_tree(into, osuser.server_user())
    return into


def test_fault_restore_logical_into_a_server_sharing_the_sources_identity_needs_saying(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        pg_ctl: StartFn, backend: Backend, reachable: Path) -> None:
    """A target with the source's system identifier and database OID was taken for "a
    physical copy" when its postmaster started at another time, and restored into; but a
    primary and its standbys share the identity too (R3: the primary, with [source] naming
    its standby). Now refused unless the operator says it is a copy
    (--into-copy-of-source), which then restores."""
    config = ops_config()
    assert pgvdrill_cli("backup", "logical", "--config", config).returncode == 0
    copy = pg_ctl(physical_copy(prod_source, backend, reachable / "copy"), prod_source)
    with copy.promoted() as conn:
        conn.execute(AFTER_BACKUP)
    target = f"{copy.dsn} dbname={SOURCE_DB}"

    def tables() -> list[tuple[object, ...]]:
        with psycopg.connect(target, autocommit=True) as conn:
            return conn.execute(TABLES).fetchall()
    before = tables()

    result = pgvdrill_cli("restore", "logical", "latest", "--target-dsn", target, "--clean",
                          "--config", config)

    refused(result, 5, "has the source's database identity (system identifier")
    assert "add --into-copy-of-source" in result.stderr
    assert tables() == before
    said = pgvdrill_cli("restore", "logical", "latest", "--target-dsn", target, "--clean",
                        "--into-copy-of-source", "--config", config)
    assert said.returncode == 0, said.stdout + said.stderr
    assert tables() != before  # --clean re-created the dump's tables (new OIDs)


@pytest.mark.parametrize("how", ["owned-by-the-server-user", "writable-by-others"])
def test_fault_a_catalog_entry_others_could_write_vouches_for_nothing(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        make_cluster: Callable[..., Cluster], tmp_path: Path, how: str) -> None:
    """With the source unable to answer, the catalog's record of its identity was the only
    witness, and whoever can write the entry (R4: the server's OS user, owning wal/, if
    the catalog is theirs too) chooses it. Such an entry vouches for nothing: refused,
    naming why, even for a target that is another server (it was restored into)."""
    config = ops_config()
    assert pgvdrill_cli("backup", "logical", "--config", config).returncode == 0
    [entry] = (tmp_path / "repo" / "catalog").glob("logical-*.json")
    if how == "owned-by-the-server-user":
        os.chown(entry, pwd.getpwnam(osuser.server_user()).pw_uid, -1)
        words = f"is owned by {osuser.server_user()}, not by root"
    else:
        entry.chmod(0o666)
        words = "is writable by others (mode 0666)"
    source_check_cannot_log_in(config, prod_source, tmp_path)
    other = make_cluster("other")  # a copy of one initdb: the source's system identifier,
    other.query("CREATE DATABASE filler TEMPLATE template0")  # but not its database's OID
    other.query("CREATE DATABASE restored TEMPLATE template0")
    oid = "SELECT oid::bigint FROM pg_database WHERE datname = current_database()"
    assert other.query(oid, "restored") != prod_source.query(oid, SOURCE_DB)
    documents = "SELECT count(*) FROM pg_class WHERE relname = 'documents'"

    result = pgvdrill_cli("restore", "logical", "latest", "--target-dsn",
                          conninfo(other, "restored"), "--config", config)

    refused(result, 5, "catalog entry cannot vouch for it")
    assert words in result.stderr and "chmod go-w" in result.stderr
    assert other.query(documents, "restored") == [(0,)]
    os.chown(entry, 0, 0)
    entry.chmod(0o600)
    assert pgvdrill_cli("restore", "logical", "latest", "--target-dsn",
                        conninfo(other, "restored"), "--config", config).returncode == 0
    assert other.query(documents, "restored") == [(1,)]  # the entry vouches: not the source


def test_the_primary_streaming_to_standbys_is_no_copy(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        pg_ctl: StartFn, backend: Backend, reachable: Path) -> None:
    """--into-copy-of-source does not let a restore into a server that streams WAL to a
    standby: [source] names the standby, the target is its primary, production itself."""
    config = ops_config()
    assert pgvdrill_cli("backup", "logical", "--config", config).returncode == 0
    tools = backend.tools()
    assert isinstance(tools, Installation)
    standby_dir = reachable / "standby"
    runner.run([tools.tool("pg_basebackup"), "-d", conninfo(prod_source, "postgres"),
                "-D", standby_dir, "-R", "-X", "stream", "-c", "fast"], timeout=600)
    info = prod_source.conninfo
    passfile = reachable / "standby.pgpass"  # the server's OS user cannot read root's
    shutil.copyfile(info.passfile, passfile)
    with (standby_dir / "postgresql.auto.conf").open("a") as conf:
        conf.write(f"primary_conninfo = 'host={info.host} port={info.port} user={info.user} "
                   f"passfile={passfile}'\n")
    osuser.chown_tree(standby_dir, osuser.server_user())
    osuser.chown_tree(passfile, osuser.server_user())
    passfile.chmod(0o600)
    standby = pg_ctl(standby_dir, prod_source)
    standby.promoted(recovering=True).close()
    config.write_text(config.read_text().replace(conninfo(prod_source),
                                                 f"{standby.dsn} dbname={SOURCE_DB}"))
    deadline = time.monotonic() + 120  # the standby's walreceiver connects once it runs
    while prod_source.query("SELECT count(*) FROM pg_stat_replication") == [(0,)]:
        assert time.monotonic() < deadline, "the standby never connected"
        time.sleep(0.1)
    before = prod_source.query(TABLES, SOURCE_DB)
    primary = conninfo(prod_source, SOURCE_DB).replace("127.0.0.1", "localhost")

    result = pgvdrill_cli("restore", "logical", "latest", "--target-dsn", primary, "--clean",
                          "--into-copy-of-source", "--config", config)

    refused(result, 5, "streams WAL to 1 standby(s): a primary of the source's replication")
    assert prod_source.query(TABLES, SOURCE_DB) == before


def test_catalog_entries_without_a_database_oid_compare_by_name() -> None:
    old = Identity.of({"system_identifier": "7", "dbname": "vector_db"})
    assert old is not None and Identity.of({"dbname": "x"}) is None
    assert old.same_database(Identity("7", 16384, "vector_db"))
    assert not old.same_database(Identity("7", 16384, "other"))
    assert not Identity("7", 1, "vector_db").same_database(Identity("7", 2, "vector_db"))
    assert not Identity("7", 1, "vector_db").same_database(Identity("8", 1, "vector_db"))


# -- restore physical|pitr: where the data directory goes ------------------------------------

@pytest.fixture
def repo_config(archived_repo: ArchivedRepo, reachable: Path) -> Path:
    """A config naming a copy of the module's repository (never changed by a test)."""
    repo = Path(shutil.copytree(archived_repo.repo, reachable / "repo", symlinks=True))
    config = reachable / "pgvdrill.toml"
    config.write_text(f'[repository]\npath = "{repo}"\n')
    return config


def restore_physical(cli: Cli, config: Path, pgdata: Path, *force: str) -> Done:
    return cli("restore", "physical", "latest", "--pgdata", pgdata, *force, "--config", config)


def test_fault_force_into_a_shared_sticky_directory_is_refused_and_its_mode_kept(
        repo_config: Path, pgvdrill_cli: Cli, reachable: Path) -> None:
    """The issue's case: --force into a 1777 directory made it 0700 (and the copy its
    owner's); now refused, the directory as it was."""
    shared = reachable / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "someone-elses").write_text("theirs")

    result = restore_physical(pgvdrill_cli, repo_config, shared, "--force")

    refused(result, 5, "a shared directory (mode 1777: sticky)")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777 and shared.stat().st_uid == 0
    assert sorted(os.listdir(shared)) == ["someone-elses"]


def test_fault_force_never_changes_a_directory_it_did_not_create(
        repo_config: Path, pgvdrill_cli: Cli, reachable: Path) -> None:
    """An existing group-readable directory (0750, root's group): restored into, it keeps
    its mode and group; what PostgreSQL needs is said, not done."""
    mine = reachable / "mine"
    mine.mkdir()
    mine.chmod(0o770)
    osuser.chown_tree(mine, osuser.server_user())
    os.chown(mine, -1, 0)
    (mine / "lost+found").mkdir()
    owner = mine.stat()

    result = restore_physical(pgvdrill_cli, repo_config, mine, "--force")

    assert result.returncode == 0, result.stdout + result.stderr
    after = mine.stat()
    assert (after.st_mode, after.st_uid, after.st_gid) == (owner.st_mode, owner.st_uid,
                                                           owner.st_gid)
    assert f"chmod 0700 {mine}" in result.stdout and (mine / "PG_VERSION").is_file()


@pytest.mark.parametrize("where", ["inside-data-directory", "tablespace", "pg_wal-elsewhere",
                                   "inside-repository", "holding-repository"])
def test_fault_restore_near_a_clusters_files_or_the_repository_is_refused(
        repo_config: Path, pgvdrill_cli: Cli, reachable: Path, prod_source: Cluster,
        where: str) -> None:
    """A new directory inside the running source's data directory, a tablespace location,
    a pg_wal kept outside the data directory, the repository: each was restored into."""
    repo = reachable / "repo"
    force: tuple[str, ...] = ()
    if where == "inside-data-directory":
        pgdata = Path(str(prod_source.query("SHOW data_directory")[0][0])) / "restored"
        words = "a PostgreSQL data directory (PG_VERSION)"
    elif where == "tablespace":
        (reachable / "tblspc" / "PG_18_202506181").mkdir(parents=True)
        pgdata, words = reachable / "tblspc" / "restored", "a tablespace location"
    elif where == "pg_wal-elsewhere":
        wal = reachable / "wal-disk"
        wal.mkdir(mode=0o700)
        (wal / "000000010000000000000007").write_bytes(bytes(16))
        pgdata, force, words = wal, ("--force",), "a WAL directory"
    elif where == "inside-repository":
        pgdata, words = repo / "restored", "in or around the backup repository"
    else:
        pgdata, force, words = reachable, ("--force",), "in or around the backup repository"
    before = sorted(os.listdir(pgdata.parent))

    result = restore_physical(pgvdrill_cli, repo_config, pgdata, *force)

    refused(result, 5, words)
    assert sorted(os.listdir(pgdata.parent)) == before
    assert "mkdir -m 0700 " in result.stderr


@pytest.mark.parametrize("place", ["/", "/usr/local", "/var/lib", "/tmp", "/root"])
def test_fault_system_and_home_directories_are_refused(place: str, tmp_path: Path) -> None:
    """--force would have restored into / (its names clash with no backup name)."""
    with pytest.raises(RestoreError, match=r"system directory|shared directory|home directory"):
        refuse_unsafe_place(Path(place), tmp_path / "repo")


@pytest.mark.parametrize("place", [
    "/etc/cron.d", "/etc/systemd/system", "/etc/cron.d/pgvdrill-new", "/usr/include",
    "/usr/lib/x86_64-linux-gnu", "/usr/local/lib", "/var/lib/dpkg", "/var/spool/cron", "/etc/ssl",
    "/var/www/new", "/boot/new", "/run/new", "/dev/shm/new", "/var/lib/postgresql",
    "/var/lib/postgresql-other/new"])
def test_fault_directories_anywhere_below_the_system_trees_are_refused(
        place: str, tmp_path: Path) -> None:
    """The list was matched exactly: one level below it (/etc/cron.d, whose files cron
    runs, /usr/include, /var/lib/dpkg) --force restored into. Now refused at any depth
    below /etc, /usr, /var, /boot, /run, /dev... (existing or not), with a place outside
    them as the hint."""
    with pytest.raises(RestoreError, match="is a system directory") as refused:
        refuse_unsafe_place(Path(place), tmp_path / "repo")
    assert refused.value.hint.endswith("mkdir -m 0700 /srv/pgvdrill-restore")


@pytest.mark.parametrize("place", ["/var/lib/postgresql/18/restore", "/var/lib/pgsql/restore",
                                   "/usr/local/pgsql/data", "/srv/pg/restore", "/opt/pg/data"])
def test_the_usual_data_directory_places_are_accepted(place: str, tmp_path: Path) -> None:
    """Below the places PostgreSQL's packages and docs use (new directories: none exists)."""
    assert not Path(place).exists()
    refuse_unsafe_place(Path(place), tmp_path / "repo")


def test_a_directory_of_its_own_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "new").mkdir(mode=0o700)
    refuse_unsafe_place(tmp_path / "new", tmp_path / "repo")
    refuse_unsafe_place(tmp_path / "not-yet", tmp_path / "repo")
