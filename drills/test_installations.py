"""Installations as a first-class choice, on real installations: `pgvdrill installations
--probe` tells a pgvector that cannot run on this CPU, a dataset built on it says why, and
the DR drill of a PostgreSQL 16 source (a server started from the 16.2 installation as an
operator would: raw initdb as its own OS user, its own postgresql.conf) restores with 16's
programs when the configuration names that installation, and refuses clearly when not."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import Cli
from fixtures.installed import PG16, sigill_build
from fixtures.ops import _toml
from fixtures.options import DrillOptions
from fixtures.production import PROD_USER, ensure_os_user
from pgvdrill.backends import default_workdir
from pgvdrill.cluster.ports import PortLease, lease
from pgvdrill.cluster.wal_commands import archive_command
from pgvdrill.installation import Installation, from_bindir
from pgvdrill.proc import runner
from pgvdrill.repository import Repository

pytestmark = pytest.mark.installations("the DR drill, backup and restore choose the 16.2 "
                                       "installation, or refuse, by the source's major")
ADMIN = "ops16"
ROWS = 300
SOURCE_SQL = f"""
CREATE EXTENSION vector;
CREATE TABLE items (id bigint PRIMARY KEY, note text, embedding vector(16));
INSERT INTO items SELECT i, 'item ' || i,
    (SELECT array_agg(sin(i * d)::real ORDER BY d) FROM generate_series(1, 16) d)::vector
    FROM generate_series(1, {ROWS}) i;
CREATE INDEX items_embedding_idx ON items USING hnsw (embedding vector_cosine_ops);
ANALYZE items;
"""


def _installed(options: DrillOptions, major: int, default: Path) -> Installation:
    """The installation of PostgreSQL `major` among --drill-installations, else `default`;
    skipped (saying how to install it) when neither is there."""
    for bindir in (*options.installations, default):
        if (bindir / "postgres").is_file():
            inst = from_bindir(bindir)
            if inst.major == major:
                return inst
    pytest.skip(f"no PostgreSQL {major} installation (--drill-installations, {default}): "
                "scripts/install-installations.sh installs it")


def _give(path: Path) -> None:
    shutil.chown(path, PROD_USER, PROD_USER)


@dataclass
class Source16:
    """A PostgreSQL 16 server run by its own OS user (PROD_USER) from `installation`."""

    directory: Path
    installation: Installation
    port_lease: PortLease
    repository: Path

    @property
    def datadir(self) -> Path:
        return self.directory / "data"

    def pg_ctl(self, *args: str) -> None:
        runner.run([self.installation.tool("pg_ctl"), "-D", self.datadir, "-w", "-t", "120",
                    *args], user=PROD_USER, cwd=self.directory / "run", timeout=180)

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        return runner.run([self.installation.tool("psql"), "-X", "-q", "-At", "-v",
                           "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port_lease.port),
                           "-U", ADMIN, "-d", dbname, "-c", sql], timeout=120).stdout

    def write_config(self, directory: Path, drill: str = "") -> Path:
        path = directory / "pgvdrill.toml"
        conninfo = f"host=127.0.0.1 port={self.port_lease.port} dbname=vector_db user={ADMIN}"
        path.write_text(f"[source]\nconninfo = {_toml(conninfo)}\n\n"
                        f"[repository]\npath = {_toml(self.repository)}\n\n"
                        '[physical]\nformat = "plain"\n\n'  # pg_verifybackup 16 reads plain
                        f"[drill]\n{drill}")
        return path


@pytest.fixture(scope="module")
def source16(options: DrillOptions) -> Iterator[Source16]:
    """initdb as PROD_USER with the 16.2 installation, the operator's own settings
    (archiving into a repository), started with pg_ctl, a small vector table loaded."""
    inst = _installed(options, 16, PG16)
    ensure_os_user(PROD_USER)
    directory = Path(tempfile.mkdtemp(prefix="source16-", dir=default_workdir()))
    directory.chmod(0o711)
    repo = Repository(directory / "repo").ensure()
    repo.root.chmod(0o711)
    _give(repo.wal)
    source = Source16(directory, inst, lease(), repo.root)
    for name in ("data", "run"):
        (directory / name).mkdir(mode=0o700)
        _give(directory / name)
    try:
        runner.run([inst.tool("initdb"), "-D", source.datadir, "-U", ADMIN, "--auth", "trust",
                    "--encoding", "UTF8", "--locale", "C.UTF-8", "--data-checksums"],
                   user=PROD_USER, cwd=directory / "run", timeout=300)
        with (source.datadir / "postgresql.conf").open("a") as conf:
            conf.write(f"\n# the operator's settings\nport = {source.port_lease.port}\n"
                       "listen_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{directory / 'run'}'\n"
                       "archive_mode = on\narchive_command = '"
                       + archive_command(repo.wal, PROD_USER).replace("'", "''") + "'\n")
        source.pg_ctl("-l", str(directory / "run" / "server.log"), "start")
        source.psql("CREATE DATABASE vector_db")
        source.psql(SOURCE_SQL, "vector_db")
        yield source
    finally:
        try:
            if (source.datadir / "postmaster.pid").exists():
                source.pg_ctl("-m", "fast", "stop")
        finally:
            source.port_lease.release()
            shutil.rmtree(directory, ignore_errors=True)


def _report(directory: Path, reports: str = "reports") -> dict[str, Any]:
    (path,) = directory.glob(f"{reports}/*/report.json")
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def _verified_but_amcheck(drill: dict[str, Any]) -> None:
    """Every check of `drill` passed but amcheck, which 16.2's installation lacks (its check
    is `unknown` once verification says so: then the drill is ok)."""
    checks = {c["name"]: c["ok"] for c in drill["verification"]["checks"]}
    assert all(ok for name, ok in checks.items() if name != "amcheck"), checks
    assert drill["ok"] or drill["problems"] == [
        'amcheck: amcheck is not available, btree indexes unchecked: extension "amcheck" is '
        "not available"], drill.get("error") or drill["problems"]


def _installations(source: Source16) -> str:
    return f"installations = [{_toml(source.installation.bindir)}]\n"


def test_dr_drill_of_a_16_source_restores_with_16s_programs(
        pgvdrill_cli: Cli, cli_cache: Path, source16: Source16, tmp_path: Path) -> None:
    assert source16.psql("SHOW server_version").strip() == "16.2"
    config = source16.write_config(tmp_path, _installations(source16))
    taken = pgvdrill_cli("backup", "physical", "--config", config)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert "(PostgreSQL 16.2) into" in taken.stdout

    result = pgvdrill_cli("dr-drill", "--config", config, "--kinds", "physical",
                          "--cache-dir", cli_cache, "--reports-dir", "reports")

    report = _report(tmp_path)
    (physical,) = report["drills"]
    assert physical["backup"]["source_postgresql"] == "16.2"
    assert (physical["restore"]["into_postgresql"], physical["restore"]["into_pgvector"]) == \
        ("16.2", "0.6.2")
    assert report["server"]["source_postgresql"] == "16.2"
    checks = {c["name"]: c["ok"] for c in physical["verification"]["checks"]}
    assert checks["wal_replay"] is True  # 16's own WAL read by 16's programs
    _verified_but_amcheck(physical)
    assert "from PostgreSQL 16.2 into PostgreSQL 16.2 (system backend)" in result.stdout


def test_without_a_16_installation_physical_restores_are_refused(
        pgvdrill_cli: Cli, cli_cache: Path, source16: Source16, tmp_path: Path) -> None:
    with_16 = source16.write_config(tmp_path, _installations(source16))
    taken = pgvdrill_cli("backup", "physical", "--config", with_16)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    (tmp_path / "without").mkdir()
    without = source16.write_config(tmp_path / "without")

    backup = pgvdrill_cli("backup", "physical", "--config", without)
    restore = pgvdrill_cli("restore", "physical", "latest", "--config", without,
                           "--pgdata", tmp_path / "restored")
    drill = pgvdrill_cli("dr-drill", "--config", without, "--kinds", "physical",
                         "--cache-dir", cli_cache, "--reports-dir", "reports")

    assert backup.returncode == 2, backup.stdout + backup.stderr
    assert "needs PostgreSQL 16's pg_basebackup, pg_verifybackup and pg_waldump; the client " \
           "tools in" in backup.stderr and "are PostgreSQL 18." in backup.stderr
    assert restore.returncode == 2, restore.stdout + restore.stderr
    assert not (tmp_path / "restored").exists()
    for said in (restore.stderr, json.dumps(_report(tmp_path))):
        assert "of a PostgreSQL 16.2 source needs PostgreSQL 16's own programs" in said
        assert "no installation of PostgreSQL 16 was found: PostgreSQL 18." in said
        assert "[drill] installations" in said
    assert drill.returncode != 0, drill.stdout + drill.stderr
    assert "Traceback" not in restore.stderr + drill.stderr


def test_logical_restores_go_into_the_target_version(
        pgvdrill_cli: Cli, cli_cache: Path, source16: Source16, tmp_path: Path) -> None:
    config = source16.write_config(tmp_path, _installations(source16))
    taken = pgvdrill_cli("backup", "logical", "--config", config)
    assert taken.returncode == 0, taken.stdout + taken.stderr

    missing = pgvdrill_cli("dr-drill", "--config", config, "--kinds", "logical",
                           "--target-version", "17", "--cache-dir", cli_cache,
                           "--reports-dir", "reports-17")
    pgvdrill_cli("dr-drill", "--config", config, "--kinds", "logical", "--target-version",
                 "16", "--cache-dir", cli_cache, "--reports-dir", "reports")

    (refused,) = _report(tmp_path, "reports-17")["drills"]
    assert missing.returncode != 0 and refused["ok"] is False
    assert "the target version is PostgreSQL 17, and no installation of it was found: " \
           "PostgreSQL 18." in refused["error"]
    assert "PostgreSQL 16.2 in " in refused["error"]
    (logical,) = _report(tmp_path)["drills"]
    assert logical["backup"]["source_postgresql"] == "16.2"
    assert logical["restore"]["into_postgresql"] == "16.2"
    _verified_but_amcheck(logical)


def test_probe_flags_a_pgvector_this_cpu_cannot_run(
        pgvdrill_cli: Cli, cli_cache: Path, options: DrillOptions) -> None:
    pg16 = _installed(options, 16, PG16)
    sigill = sigill_build()

    result = pgvdrill_cli("installations", "--probe", "--json", "--cache-dir", cli_cache,
                          "--installation", pg16.bindir, "--installation", sigill)

    assert result.returncode == 2, result.stdout + result.stderr
    found = {i["bindir"]: i for i in json.loads(result.stdout)["installations"]}
    broken, good = found[str(sigill)], found[str(pg16.bindir)]
    assert (broken["postgresql"], broken["pgvector"]) == ("18.3", "0.8.2")
    assert broken["probe"]["available"] is False
    assert broken["probe"]["reason"].startswith(
        f"pgvector in {sigill} uses CPU instructions this machine lacks (the server "
        "process died of SIGILL")
    assert (good["postgresql"], good["pgvector"], good["probe"]["available"]) == \
        ("16.2", "0.6.2", True)
    assert good["capabilities"]["amcheck"]["available"] is False
    assert good["capabilities"]["tar verify"] == {
        "available": False,
        "reason": "pg_verifybackup 16.2 reads plain-format backups only (tar from "
                  "PostgreSQL 18)"}


def test_a_dataset_built_on_that_pgvector_says_why(
        pgvdrill_cli: Cli, cli_cache: Path) -> None:
    sigill = sigill_build()

    result = pgvdrill_cli("drill", "--backend", "system", "--pg-bin", sigill,
                          "--rows", "300", "--cache-dir", cli_cache,
                          "--reports-dir", "reports")

    assert result.returncode == 2, result.stdout + result.stderr
    assert f"pgvector in {sigill} uses CPU instructions this machine lacks (the " \
           "server process died of SIGILL" in result.stderr
    assert "EnvironmentFailure" not in result.stderr and "Traceback" not in result.stderr


def test_an_installation_that_cannot_be_used_is_named(pgvdrill_cli: Cli) -> None:
    result = pgvdrill_cli("installations", "--installation", "/nonexistent/bin")

    assert result.returncode == 2, result.stdout + result.stderr
    assert "left out: --installation /nonexistent/bin: postgres not found in " \
           "/nonexistent/bin" in result.stdout
    assert "(embedded)" in result.stdout  # what was found is still listed
