"""Attacks on issue 13 classes 4 and 5 (recovery never ends early; restores write only where
told). Each test asserts the behaviour the issue requires; one that fails found a hole.

restore_command rule (PostgreSQL xlogarchive.c): an exit status above 125 stops recovery
(FATAL), any other non-zero status is "not in the archive" and ends recovery there; 143
(128 + SIGTERM) is taken as a shutdown request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.cli import Cli
from fixtures.ops import conninfo
from fixtures.pgctl import StartFn
from fixtures.source_guard import source_check_cannot_log_in, spelled_localhost
from pgvdrill import osuser
from pgvdrill.cluster import Backend, Cluster
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.installation import Installation
from pgvdrill.proc import runner

SEGMENT = "000000010000000000000003"
TABLES = ("SELECT c.relname, c.oid::bigint FROM pg_class c JOIN pg_namespace n ON "
          "n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1")


def walcmd(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """restore-wal exactly as a restore_command runs it (python -m pgvdrill.wal.walcmd)."""
    return subprocess.run([sys.executable, "-m", "pgvdrill.wal.walcmd", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "archive"
    path.mkdir()
    (path / SEGMENT).write_bytes(os.urandom(8192))
    return path


def stops_recovery(code: int) -> bool:
    return code > 125 and code != 128 + 15


@pytest.mark.parametrize("mistake", ["misspelled-option", "no-source", "bad-expect",
                                     "extra-argument"])
@pytest.mark.parametrize("entry", ["walcmd", "cli"])
def test_fault_attack_restore_command_usage_error_stops_recovery(
        archive: Path, tmp_path: Path, pgvdrill_cli: Cli, mistake: str, entry: str) -> None:
    """A restore_command an operator wrote with a typo (the --help example is to be copied
    by hand), or one pgvdrill wrote with an option another pgvdrill version does not know,
    is not "the archive has no such file": argparse's exit 2 makes PostgreSQL end recovery
    at the backup and promote, the silent early end issue 13 class 4 forbids."""
    args: list[str | Path] = [SEGMENT, tmp_path / "RECOVERYXLOG"]
    mistakes: dict[str, list[str | Path]] = {
        "misspelled-option": ["--archive", archive],
        "no-source": [],
        "bad-expect": ["--source", archive, "--expect", "000000010000000000000001"],
        "extra-argument": ["--source", archive, "%r"]}
    args += mistakes[mistake]

    result = walcmd("restore-wal", *args) if entry == "walcmd" \
        else pgvdrill_cli("restore-wal", *args)

    assert stops_recovery(result.returncode), (result.returncode, result.stderr)
    assert not (tmp_path / "RECOVERYXLOG").exists()


def test_fault_attack_restore_logical_into_the_primary_while_source_names_its_standby(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        pg_ctl: StartFn, backend: Backend, reachable: Path) -> None:
    """Backups are often taken from a hot standby ([source] conninfo names it). The primary
    has the same system identifier and database OID but another postmaster start time, so
    refuse_the_source takes it for "a physical copy" of the source, and the configured
    source "spoke for" the catalog's record: `restore logical --clean` into the primary,
    production itself, goes ahead. Issue 13 class 5: the target is checked by system
    identifier and database OID, never over the source."""
    config = ops_config()
    backup = pgvdrill_cli("backup", "logical", "--config", config)
    assert backup.returncode == 0, backup.stderr
    tools = backend.tools()
    assert isinstance(tools, Installation)
    standby_dir = reachable / "standby"
    runner.run([tools.tool("pg_basebackup"), "-d", conninfo(prod_source, "postgres"),
                "-D", standby_dir, "-R", "-X", "stream", "-c", "fast"], timeout=600)
    osuser.chown_tree(standby_dir, osuser.server_user())
    standby = pg_ctl(standby_dir, prod_source)
    standby.promoted(recovering=True).close()  # a hot standby, accepting queries
    standby_source = f"{standby.dsn} dbname={SOURCE_DB}"
    config.write_text(config.read_text().replace(conninfo(prod_source), standby_source))
    prod_source.query("CREATE TABLE written_after_backup AS SELECT 42 AS answer", SOURCE_DB)
    before = prod_source.query(TABLES, SOURCE_DB)
    primary = spelled_localhost(prod_source)

    result = pgvdrill_cli("restore", "logical", "latest", "--target-dsn", primary, "--clean",
                          "--config", config)

    assert result.returncode == 5, result.stdout + result.stderr
    assert prod_source.query(TABLES, SOURCE_DB) == before  # --clean re-creates: new OIDs


def test_fault_attack_a_tampered_catalog_identity_lets_restore_logical_over_the_source(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        tmp_path: Path) -> None:
    """The issue's case (the source check cannot log in, the target spelled localhost), with
    the one guard left, the catalog's record of the source's system identifier, changed by
    whoever can write the repository (class 1: the catalog is untrusted; the new value
    passes the schema). The target's identity is then "verified" against a value an
    attacker chose, and `--clean` drops and re-creates production's tables. An identity
    that only the untrusted catalog vouches for is unverifiable: refuse."""
    config = ops_config()
    assert pgvdrill_cli("backup", "logical", "--config", config).returncode == 0
    [entry_file] = (tmp_path / "repo" / "catalog").glob("logical-*.json")
    data = json.loads(entry_file.read_text())
    data["source"]["system_identifier"] = "1234567890123456789"
    entry_file.write_text(json.dumps(data))
    source_check_cannot_log_in(config, prod_source, tmp_path)
    prod_source.query("CREATE TABLE written_after_backup AS SELECT 42 AS answer", SOURCE_DB)
    before = prod_source.query(TABLES, SOURCE_DB)
    target = spelled_localhost(prod_source)

    result = pgvdrill_cli("restore", "logical", "latest", "--target-dsn", target, "--clean",
                          "--config", config)

    assert result.returncode in (4, 5), result.stdout + result.stderr
    assert prod_source.query(TABLES, SOURCE_DB) == before
