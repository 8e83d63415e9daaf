"""Upgrade drills: PostgreSQL 16 + pgvector 0.6 to the embedded 18 + pgvector 0.8 by
dump/restore and by pg_upgrade, each verified; a downgrade refused before anything starts;
and meta-drills proving the verification catches an upgrade done wrong (an index lost,
the extension update skipped).

The upgrade ends on the lane's installation (the session's backend), from an older one
named by --drill-installations; a lane older than the embedded installation upgrades to
that one. scripts/install-installations.sh installs 16.2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.cli import Cli
from fixtures.clusters import shared_tmp
from fixtures.options import DrillOptions
from pgvdrill import installation, osuser
from pgvdrill.backends import default_workdir
from pgvdrill.cluster import Backend, Cluster
from pgvdrill.cluster.local import LocalBackend
from pgvdrill.dataset import DatasetSpec, generate
from pgvdrill.drill.upgrade import Mode, Tamper, UpgradeDrill, UpgradePlan
from pgvdrill.drill.upgrade_run import run_upgrades
from pgvdrill.drill.upgrade_source import HNSW_L2
from pgvdrill.installation import Installation

ROWS, DIM = 1000, 32  # small: the drills time steps, they do not benchmark them


def lane_installation(options: DrillOptions) -> Installation:
    """The installation the session's servers run: the lane's."""
    if options.backend == "system" and options.pg_bin is not None:
        return installation.from_bindir(options.pg_bin)
    return installation.embedded(osuser.server_user())


@pytest.fixture(scope="module")
def installations(options: DrillOptions) -> tuple[Installation, Installation]:
    """(from, to): an older installation with pgvector upgraded to the lane's, or the
    lane's upgraded to the embedded one when the lane's is the older."""
    lane = lane_installation(options)
    others = [installation.from_bindir(b) for b in options.installations]
    for inst in others:
        if inst.major < lane.major and inst.pgvector_version() is not None:
            return inst, lane
    embedded = installation.embedded(osuser.server_user())
    if lane.major < embedded.major:
        return lane, embedded
    named = [str(b) for b in options.installations] or "no --drill-installations"
    pytest.skip(f"no PostgreSQL older than the lane's {lane.version} with pgvector to "
                f"upgrade from (looked at {named}): pass --drill-installations <its bin dir> "
                "(scripts/install-installations.sh installs PostgreSQL 16.2 + pgvector 0.6.2)")


@pytest.fixture(scope="module")
def old_installation(installations: tuple[Installation, Installation]) -> Installation:
    return installations[0]


@pytest.fixture(scope="module")
def new_installation(installations: tuple[Installation, Installation]) -> Installation:
    return installations[1]


def local_backend(inst: Installation, options: DrillOptions, cache: Path) -> LocalBackend:
    return LocalBackend(inst, options.workdir or default_workdir(), cache, name="system")


@pytest.fixture(scope="module")
def backends(old_installation: Installation, new_installation: Installation,
             options: DrillOptions, tmp_path_factory: pytest.TempPathFactory, worker_id: str
             ) -> Iterator[tuple[LocalBackend, LocalBackend]]:
    cache = shared_tmp(tmp_path_factory, worker_id) / "pgvdrill-cache"
    old = local_backend(old_installation, options, cache)
    new = local_backend(new_installation, options, cache)
    yield old, new
    old.close()
    new.close()


def upgrade(backends: tuple[Backend, Backend], mode: Mode, tmp_path: Path,
            tamper: Tamper | None = None, target: LocalBackend | None = None) -> UpgradeDrill:
    old, new = backends
    assert isinstance(old, LocalBackend) and isinstance(new, LocalBackend)
    plan = UpgradePlan(generate(DatasetSpec(rows=ROWS, dim=DIM)), (mode,),
                       tamper=tamper or Tamper())
    [result] = run_upgrades(old, target or new, plan, tmp_path, print)
    assert isinstance(result, UpgradeDrill), result.problems()
    return result


def assert_ran_on(result: UpgradeDrill, old: Installation, new: Installation) -> None:
    """Each side really ran the version the drill claims (as its server reported it)."""
    assert result.source["postgresql"] == old.version
    assert result.source["pgvector"] == old.pgvector_version()
    assert result.target["postgresql"] == new.version
    assert result.target["pgvector"] == new.pgvector_version()


def test_dump_upgrade_by_the_cli(pgvdrill_cli: Cli, tmp_path: Path, cli_cache: Path,
                                 old_installation: Installation,
                                 new_installation: Installation) -> None:
    """pgvdrill upgrade-drill --mode dump passes, and its report states each side's
    versions, every timed step and the downtime."""
    done = pgvdrill_cli("upgrade-drill", "--from", old_installation.bindir, "--to",
                        new_installation.bindir, "--mode", "dump", "--rows", ROWS, "--dim", DIM,
                        "--cache-dir", cli_cache)
    assert done.returncode == 0, done.stdout + done.stderr
    [report] = (tmp_path / "reports").glob("*/report.json")
    payload = json.loads(report.read_text())
    assert payload["server"]["version"] == (f"{old_installation.version} -> "
                                            f"{new_installation.version}")
    [entry] = payload["drills"]
    assert entry["kind"] == "upgrade" and entry["ok"], entry
    measures = entry["measures"]
    assert measures["source"]["postgresql"] == old_installation.version
    assert measures["source"]["pgvector"] == old_installation.pgvector_version()
    assert measures["target"]["postgresql"] == new_installation.version
    assert measures["target"]["pgvector"] == new_installation.pgvector_version()
    assert [p["phase"] for p in entry["phases"]] == [
        "dump", "createdb", "restore", "extension-update", "analyze", "verify"]
    assert measures["downtime_seconds"] > 0
    checks = {c["name"]: c for c in entry["verification"]["checks"]}
    assert checks["extension"]["details"]["installed"] == new_installation.pgvector_version()
    assert "halfvec" in checks["vector_types"]["details"]["present"]
    assert all(t["equal"] for t in checks["content"]["details"].values())
    # started unable to run a subscription, and the check says none is enabled
    assert checks["settings"]["details"]["max_logical_replication_workers"] == "0"
    assert checks["settings"]["details"]["subscriptions"] == {}


def test_pg_upgrade(backends: tuple[LocalBackend, LocalBackend], tmp_path: Path) -> None:
    """pg_upgrade carries the HNSW index, which answers exactly as before; the update
    script it wrote brings vector to 0.8 (halfvec available)."""
    result = upgrade(backends, "pg_upgrade", tmp_path)
    assert result.ok, result.problems()
    assert_ran_on(result, backends[0].installation, backends[1].installation)
    assert "update_extensions.sql: applied" in result.notes[0]
    assert [s.phase for s in result.steps] == [
        "stop", "initdb", "check", "pg_upgrade", "start", "extension-update", "analyze"]
    ann = result.verification.check("ann").details
    assert any(HNSW_L2 in key for key in ann), ann
    settings = result.verification.check("settings").details
    assert (settings["archive_mode"], settings["max_logical_replication_workers"]) == ("off", "0")


def test_pg_upgrade_without_the_extension_update_is_caught(
        backends: tuple[LocalBackend, LocalBackend], tmp_path: Path) -> None:
    """META: pg_upgrade's update_extensions.sql left unapplied (vector stays 0.6.2 on the
    0.8 library) fails the drill, naming the extension and the missing halfvec."""
    result = upgrade(backends, "pg_upgrade", tmp_path, Tamper(skip_extension_update=True))
    assert not result.ok
    old_vector = backends[0].installation.pgvector_version()
    problems = "\n".join(result.problems())
    assert f"extension vector is at {old_vector}" in problems, problems
    assert "type halfvec is not available" in problems, problems


def drop_hnsw(cluster: Cluster, dbname: str) -> None:
    with cluster.connect(dbname) as conn:
        conn.execute(f"DROP INDEX {HNSW_L2}")


def test_upgrade_that_drops_an_index_is_caught(
        backends: tuple[LocalBackend, LocalBackend], tmp_path: Path) -> None:
    """META: a dump upgrade that loses the HNSW index fails the drill, naming the index."""
    result = upgrade(backends, "dump", tmp_path, Tamper(after_upgrade=drop_hnsw))
    assert not result.ok
    assert_ran_on(result, backends[0].installation, backends[1].installation)
    problems = "\n".join(result.problems())
    assert f"index public.{HNSW_L2} on public.documents (hnsw) is missing" in problems, problems


def test_dump_restored_with_the_old_extension_version_is_caught(
        backends: tuple[LocalBackend, LocalBackend], installable_old_backend: Backend,
        tmp_path: Path) -> None:
    """META: a dump restored into a database whose vector extension is older than the
    target offers (created there beforehand; the restore's CREATE EXTENSION IF NOT EXISTS
    keeps it), without ALTER EXTENSION UPDATE, fails the drill."""
    assert isinstance(installable_old_backend, LocalBackend)

    def old_extension(cluster: Cluster, dbname: str) -> None:
        with cluster.connect(dbname) as conn:
            conn.execute("CREATE EXTENSION vector VERSION '0.7.0'")

    result = upgrade(backends, "dump", tmp_path, Tamper(skip_extension_update=True,
                                                        before_restore=old_extension),
                     target=installable_old_backend)
    assert not result.ok
    problems = "\n".join(result.problems())
    assert "extension vector is at 0.7.0 in the upgraded database" in problems, problems


def test_downgrade_refused(pgvdrill_cli: Cli, tmp_path: Path, old_installation: Installation,
                           new_installation: Installation) -> None:
    """The newer to the older (e.g. 18 -> 16) is refused before anything starts: exit 5,
    the reason, no report."""
    done = pgvdrill_cli("upgrade-drill", "--from", new_installation.bindir, "--to",
                        old_installation.bindir)
    assert done.returncode == 5, done.stdout + done.stderr
    assert "is a downgrade" in done.stderr and "nothing was started" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "reports").exists()


@pytest.mark.bench
def test_upgrade_at_production_size(pgvdrill_cli: Cli, cli_cache: Path,
                                    old_installation: Installation,
                                    new_installation: Installation) -> None:
    """Both modes at 100k x 768 (--drill-bench on): the report's per-step timings."""
    done = pgvdrill_cli("upgrade-drill", "--from", old_installation.bindir, "--to",
                        new_installation.bindir, "--rows", 100000, "--dim", 768,
                        "--cache-dir", cli_cache, timeout=7200)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
