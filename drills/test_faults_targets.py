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
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.cli import Cli
from fixtures.ops import ArchivedRepo, conninfo
from pgvdrill import osuser
from pgvdrill.cluster import Cluster
from pgvdrill.errors import RestoreError
from pgvdrill.ops.restore_logical import Identity
from pgvdrill.ops.restore_place import refuse_unsafe_place
from pgvdrill.source import SOURCE_DB

Done = subprocess.CompletedProcess[str]
AFTER_BACKUP = "CREATE TABLE written_after_backup AS SELECT 42 AS answer"


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
    server), and the source check cannot log in (a wrong password in its passfile). The
    catalog recorded the source's system identifier and database OID at backup time: the
    target is the source, whatever its host is called."""
    config = ops_config()
    assert pgvdrill_cli("backup", "logical", "--config", config).returncode == 0
    prod_source.query(AFTER_BACKUP, SOURCE_DB)
    before = untouched(prod_source)
    info = prod_source.conninfo
    wrong = tmp_path / "wrong.pgpass"
    wrong.write_text(f"*:*:*:{info.user}:not-the-password\n")
    wrong.chmod(0o600)
    config.write_text(config.read_text().replace(str(info.passfile), str(wrong)))
    assert "127.0.0.1" in config.read_text()
    target = (f"host=localhost port={info.port} user={info.user} dbname={SOURCE_DB} "
              f"passfile={info.passfile}")

    result = pgvdrill_cli("restore", "logical", "latest", "--target-dsn", target, "--clean",
                          "--config", config)

    refused(result, 5, "is the source's database: backup logical-")
    assert "system identifier" in result.stderr and "--force" in result.stderr
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
    "/usr/lib/x86_64-linux-gnu", "/usr/local/lib", "/var/lib/dpkg", "/var/spool/cron",
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
