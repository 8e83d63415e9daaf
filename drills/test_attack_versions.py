"""Attacks on the version matrix (issue 15), with real servers of the installed versions.

Each test names the installation it attacks explicitly (16.2/0.6.2, 18.3/0.8.2, the
SIGILL build of 18.3) and asserts the version every drill ran on, so it cannot pass by
running on the session's embedded 18.6. Expected behaviour, as a demanding DBA sees it:
- a build that cannot run pgvector on this CPU is a bad installation (exit 2, the cause
  named), never "the machine failed" (exit 8) and never a pass;
- a drill states the PostgreSQL and pgvector it ran on; the schema it drills uses
  halfvec/sparsevec only where that pgvector has them; what could not be checked is
  listed as unknown with its reason;
- a logical restore refuses only what the dump needs and the target lacks, naming it
  (exit 5), and restores a newer pgvector's dump into an older one that has its types.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import Cli
from fixtures.clusters import shared_tmp
from fixtures.installed import PG16, PG183, sigill_build
from fixtures.installed import installed as _installed
from fixtures.ops import conninfo
from fixtures.options import DrillOptions
from pgvdrill.backends import default_workdir, make_backend
from pgvdrill.cluster import Backend, Cluster
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.ops.restore_logical import USER_TABLES
from pgvdrill.verify import snapshot, verify

SMALL = ("--rows", "300", "--dump", "custom-z1", "--restore", "fresh", "--fail-on", "none")



@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the server's OS user can read (tmp_path is root's alone)."""
    workdir = default_workdir()
    workdir.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="pgvdrill-attack-", dir=workdir))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _drill(cli: Cli, bindir: Path, cache: Path, *args: str) -> tuple[
        subprocess.CompletedProcess[str], dict[str, Any] | None]:
    """`pgvdrill drill --backend system --pg-bin BINDIR ARGS` and its report.json, if any."""
    result = cli("drill", "--backend", "system", "--pg-bin", bindir, "--cache-dir", cache,
                 "--reports-dir", "reports", *args)
    return result, _report(result)


def _report(result: subprocess.CompletedProcess[str]) -> dict[str, Any] | None:
    for word in (result.stdout + result.stderr).split():
        if word.endswith("report.json") and Path(word).is_file():
            found: dict[str, Any] = json.loads(Path(word).read_text())
            return found
    return None


def _servers(entry: object) -> set[tuple[str, str | None]]:
    """Every (postgresql, pgvector) a drill's report entry says it ran on, wherever the
    entry puts it (a dict with a "postgresql" key, as ServerCapabilities.as_dict writes)."""
    found: set[tuple[str, str | None]] = set()
    if isinstance(entry, dict):
        if isinstance(entry.get("postgresql"), str):
            found.add((entry["postgresql"], entry.get("pgvector")))
        for value in entry.values():
            found |= _servers(value)
    elif isinstance(entry, list):
        for value in entry:
            found |= _servers(value)
    return found


def _unknown_checks(entry: object) -> list[dict[str, Any]]:
    """Every check of a report entry whose status is unknown (it carries its reason)."""
    found: list[dict[str, Any]] = []
    if isinstance(entry, dict):
        if entry.get("unknown") and "name" in entry:
            found.append(entry)
        for value in entry.values():
            found += _unknown_checks(value)
    elif isinstance(entry, list):
        for value in entry:
            found += _unknown_checks(value)
    return found


def _schema_sql(bindir: Path, dump: Path) -> str:
    """The schema a custom-format dump holds, as SQL (pg_restore of the dump's own major)."""
    return subprocess.run([bindir / "pg_restore", "--schema-only", "-f", "-", dump],
                          capture_output=True, text=True, check=True).stdout


def test_the_sigill_build_is_refused_as_a_bad_installation(
        pgvdrill_cli: Cli, cli_cache: Path) -> None:
    """pgvector's vector.so of the AVX-512 build (fixtures.installed.AVX512) kills the
    backend (SIGILL) at the first distance. Expected: refused before drilling, exit 2,
    naming the installation and the cause (illegal instruction / SIGILL: built for
    another CPU). Not exit 8 ("the machine failed": rerunning will not help), not exit 1
    (the backup is not broken), no traceback."""
    bindir = sigill_build()

    result, report = _drill(pgvdrill_cli, bindir, cli_cache, *SMALL)

    said = result.stdout + result.stderr
    assert result.returncode == 2, said
    assert "Traceback" not in said
    assert "SIGILL" in said or "illegal instruction" in said.lower(), said
    assert str(bindir) in said, said
    assert report is None or report["ok"] is False


def test_a_drill_on_16_2_named_18_states_16_2_and_drills_only_what_0_6_2_has(
        pgvdrill_cli: Cli, cli_cache: Path, shared_dir: Path) -> None:
    """--pg-bin .../pg18/bin, a symlink to the 16.2 installation: every drill of the run
    says PostgreSQL 16.2 and pgvector 0.6.2; the dump holds vector columns and HNSW indexes
    but no halfvec or sparsevec (0.7+); amcheck, missing from 16.2, is an unknown check with
    its reason (not a pass, not left out); the logical and the tar physical drill pass."""
    _installed(PG16)
    link = shared_dir / "pg18"
    link.symlink_to(PG16, target_is_directory=True)

    result, report = _drill(pgvdrill_cli, link, cli_cache, *SMALL, "--physical", "tar-gz")

    said = result.stdout + result.stderr
    assert "Traceback" not in said
    assert result.returncode == 0, said
    assert report is not None and report["drills"], said
    for entry in report["drills"]:
        assert _servers(entry) == {("16.2", "0.6.2")}, (entry["drill"], _servers(entry))
        unknown = _unknown_checks(entry)
        assert any("amcheck" in json.dumps(c) for c in unknown), (entry["drill"], unknown)
        assert all(isinstance(c["unknown"], str) and c["unknown"] for c in unknown)
    assert "unknown" in result.stdout  # the operator's summary says so too
    logical = next(e for e in report["drills"] if e["kind"] == "logical")
    sql = _schema_sql(PG16, Path(logical["backup"]["path"]))
    assert "vector(" in sql and "USING hnsw" in sql, sql
    assert "halfvec" not in sql and "sparsevec" not in sql


def test_a_drill_on_18_3_keeps_halfvec_and_sparsevec(
        pgvdrill_cli: Cli, cli_cache: Path) -> None:
    """pgvector 0.8.2 offers halfvec and sparsevec but a fresh database has none installed:
    a schema gated on the types *installed* before CREATE EXTENSION would silently drop
    them on every version. Expected: 18.3's drill holds both, and says 18.3 / 0.8.2."""
    bindir = _installed(PG183)

    result, report = _drill(pgvdrill_cli, bindir, cli_cache, *SMALL)

    said = result.stdout + result.stderr
    assert result.returncode == 0 and "Traceback" not in said, said
    assert report is not None
    for entry in report["drills"]:
        assert _servers(entry) == {("18.3", "0.8.2")}, (entry["drill"], _servers(entry))
    logical = next(e for e in report["drills"] if e["kind"] == "logical")
    sql = _schema_sql(bindir, Path(logical["backup"]["path"]))
    assert "halfvec(" in sql and "sparsevec(" in sql, sql


@pytest.fixture
def system_backend(options: DrillOptions, tmp_path_factory: pytest.TempPathFactory,
                   worker_id: str) -> Iterator[Callable[[Path, str], Backend]]:
    """system_backend(bindir, name): a backend over an installed version (closed after)."""
    made: list[Backend] = []

    def make(bindir: Path, name: str) -> Backend:
        backend = make_backend("system", pg_bin=_installed(bindir), workdir=options.workdir,
                               cache_dir=shared_tmp(tmp_path_factory, worker_id)
                               / f"pgvdrill-cache-attack-{name}-{worker_id}")
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


def _pgvector(cluster: Cluster, dbname: str = SOURCE_DB) -> str:
    return str(cluster.query("SELECT extversion FROM pg_extension WHERE extname = 'vector'",
                             dbname)[0][0])


def _latest_into(pgvdrill_cli: Cli, config: Path, target: Cluster, version: str
                 ) -> subprocess.CompletedProcess[str]:
    """A logical backup of `config`'s source restored into a new database `restored` of
    `target` (PostgreSQL `version`): the restore's completed process."""
    assert pgvdrill_cli("backup", "logical", "--config", config).returncode == 0
    assert target.query("SHOW server_version")[0][0] == version
    target.query("CREATE DATABASE restored TEMPLATE template0")
    return pgvdrill_cli("restore", "logical", "latest", "--target-dsn",
                        conninfo(target, "restored"), "--config", config)


def test_restore_logical_of_a_newer_pgvector_into_18_3_restores_and_says_so(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        system_backend: Callable[[Path, str], Backend]) -> None:
    """A dump of 18.6/0.8.6 uses vector, halfvec, sparsevec and HNSW: pgvector 0.8.2 has
    them all, and pg_restore restores it bit-exactly. Expected: restored (exit 0), the
    pgvector difference stated, and the copy equal to the source except that version."""
    source_version = prod_source.query("SHOW server_version")[0][0]
    if not str(source_version).startswith("18.6"):
        pytest.skip(f"the source is PostgreSQL {source_version}: this attack needs 18.6 "
                    "(the embedded backend)")
    shipped = _pgvector(prod_source)
    with system_backend(PG183, "pg183").cluster("newer-dump") as target:
        result = _latest_into(pgvdrill_cli, ops_config(), target, "18.3")

        said = result.stdout + result.stderr
        assert result.returncode == 0, said
        assert "0.8.2" in result.stdout and shipped in result.stdout, result.stdout
        assert _pgvector(target, "restored") == "0.8.2"
        with prod_source.connect(SOURCE_DB) as source, target.connect("restored") as copy:
            problems = verify(snapshot(source), copy).problems()
        assert all("vector" in p and "version" in p for p in problems), problems


def test_restore_logical_of_halfvec_into_pgvector_0_6_is_refused_naming_halfvec(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        system_backend: Callable[[Path, str], Backend]) -> None:
    """The dump's tables use halfvec and sparsevec; 16.2's pgvector 0.6.2 has neither.
    Expected: refused before anything is restored (exit 5), the reason naming the missing
    type(s), not a pg_restore failure halfway (exit 3) nor a traceback."""
    with system_backend(PG16, "pg16").cluster("no-halfvec") as target:
        result = _latest_into(pgvdrill_cli, ops_config(), target, "16.2")

        said = result.stdout + result.stderr
        assert result.returncode == 5, said
        assert "halfvec" in result.stderr and "Traceback" not in said, said
        assert target.query(USER_TABLES, "restored") == [(0,)]


# --- upgrade drills: subtle damage the verification must catch -------------------------
# Each tamper runs on the upgraded cluster before verification (Tamper.after_upgrade, or
# before_restore for the dump mode's empty database). The drill must fail (not pass, not
# unknown) and its problems must name the damage.

def _invalidate_hnsw(cluster: Cluster, db: str) -> None:
    """An HNSW index left invalid (as a failed CREATE INDEX CONCURRENTLY leaves it)."""
    cluster.query("UPDATE pg_index SET indisvalid = false WHERE indexrelid = "
                  "'documents_embedding_hnsw_cos'::regclass", db)


def _rebuild_hnsw_thinner(cluster: Cluster, db: str) -> None:
    """Same name and column, built with m = 4: answers worse, definition different."""
    cluster.query("DROP INDEX documents_embedding_hnsw_cos", db)
    cluster.query("CREATE INDEX documents_embedding_hnsw_cos ON documents USING hnsw "
                  "(embedding vector_cosine_ops) WITH (m = 4, ef_construction = 8)", db)


def _drop_ivfflat(cluster: Cluster, db: str) -> None:
    cluster.query("DROP INDEX account_behaviors_behavior_ivfflat_l2", db)


def _nudge_one_vector(cluster: Cluster, db: str) -> None:
    """One component of one vector off by a float32 ulp-sized step: not bit-exact."""
    cluster.query("UPDATE documents SET embedding = (SELECT (array_agg(x) || ARRAY[]::real[])"
                  "::real[]::vector FROM (SELECT CASE WHEN n = 1 THEN x + 1e-6 ELSE x END AS x"
                  " FROM unnest(embedding::real[]) WITH ORDINALITY AS u(x, n)) s)"
                  " WHERE id = (SELECT min(id) FROM documents WHERE embedding IS NOT NULL)", db)


def _enabled_subscription(cluster: Cluster, db: str) -> None:
    """An enabled subscription: its apply worker keeps connecting to 'production'."""
    cluster.query("CREATE SUBSCRIPTION to_production CONNECTION 'host=127.0.0.1 port=1 "
                  "dbname=vector_db' PUBLICATION p WITH (connect = false, "
                  "create_slot = false, slot_name = 'to_production', enabled = false)", db)
    cluster.query("ALTER SUBSCRIPTION to_production ENABLE", db)


def _primary_conninfo(cluster: Cluster, db: str) -> None:
    cluster.query("ALTER SYSTEM SET primary_conninfo = 'host=production.example'", db)
    cluster.query("SELECT pg_reload_conf()", db)


TAMPERS = {
    "invalid-hnsw": (_invalidate_hnsw, "documents_embedding_hnsw_cos"),
    "thinner-hnsw": (_rebuild_hnsw_thinner, "documents_embedding_hnsw_cos"),
    "dropped-ivfflat": (_drop_ivfflat, "account_behaviors_behavior_ivfflat_l2"),
    "one-vector-nudged": (_nudge_one_vector, "documents"),
    "enabled-subscription": (_enabled_subscription, "subscription"),
    "primary-conninfo": (_primary_conninfo, "primary_conninfo"),
}


def _upgrade(mode: str, damage: Callable[[Cluster, str], None] | None,
             options: DrillOptions, cache: Path, outdir: Path) -> tuple[dict[str, Any], list[str]]:
    """16.2/0.6.2 -> embedded 18.6/0.8.6 by `mode` (600 x 16), `damage` done to the upgraded
    database before its verification; the drill's report entry and its progress lines."""
    from pgvdrill import installation, osuser
    from pgvdrill.cluster.local import LocalBackend
    from pgvdrill.dataset import DatasetSpec, generate
    from pgvdrill.drill.upgrade import Tamper, UpgradePlan
    from pgvdrill.drill.upgrade_run import run_upgrades

    old = installation.from_bindir(_installed(PG16))
    new = installation.embedded(osuser.server_user())
    assert (old.version, new.major) == ("16.2", 18)
    workdir = options.workdir or default_workdir()
    source = LocalBackend(old, workdir, cache, name="system")
    target = LocalBackend(new, workdir, cache, name="system")
    plan = UpgradePlan(generate(DatasetSpec(rows=600, dim=16)), (mode,),  # type: ignore[arg-type]
                       tamper=Tamper(after_upgrade=damage))
    said: list[str] = []
    try:
        [result] = run_upgrades(source, target, plan, outdir, said.append)
    finally:
        source.close()
        target.close()
    entry: dict[str, Any] = result.as_dict()
    return entry, said


# each damage in one mode by default (they alternate; the verification after the upgrade
# is the same for both modes), in the other too with --drill-matrix full
DAMAGE_CASES = [
    pytest.param(tamper, mode, marks=() if (i + j) % 2 == 0 else (pytest.mark.full,))
    for i, tamper in enumerate(sorted(TAMPERS)) for j, mode in enumerate(["pg_upgrade", "dump"])]


@pytest.mark.parametrize(("tamper", "mode"), DAMAGE_CASES)
def test_an_upgrade_damaged_after_the_fact_fails_its_verification(
        tamper: str, mode: str, options: DrillOptions, tmp_path_factory: pytest.TempPathFactory,
        worker_id: str, tmp_path: Path) -> None:
    """Damage on the upgraded database that a careless upgrade (or operator) leaves: the
    drill must fail, a problem naming it."""
    damage, named = TAMPERS[tamper]
    cache = shared_tmp(tmp_path_factory, worker_id) / f"pgvdrill-cache-attack-up-{worker_id}"

    entry, said = _upgrade(mode, damage, options, cache, tmp_path)

    assert entry["ok"] is False, (tamper, mode, said)
    assert any(named in p for p in entry["problems"]), (named, entry["problems"])


@pytest.mark.parametrize("mode", ["pg_upgrade", "dump"])
def test_an_undamaged_upgrade_of_the_same_size_passes(
        mode: str, options: DrillOptions, tmp_path_factory: pytest.TempPathFactory,
        worker_id: str, tmp_path: Path) -> None:
    """The control of the test above: without damage the same upgrade passes, so each
    failure above is the damage's (and the drill gives no false failures at this size)."""
    cache = shared_tmp(tmp_path_factory, worker_id) / f"pgvdrill-cache-attack-up-{worker_id}"

    entry, said = _upgrade(mode, None, options, cache, tmp_path)

    assert entry["ok"] is True, (entry["problems"], said)
    assert _servers(entry) >= {("16.2", "0.6.2"), ("18.6", "0.8.6")}, _servers(entry)


# --- a 16 source's physical backup, judged by which tools? ------------------------------

def _config(path: Path, cluster: Cluster, repo: Path, extra: str = "") -> Path:
    path.write_text(f'[source]\nconninfo = "{conninfo(cluster)}"\n\n'
                    f'[repository]\npath = "{repo}"\n\n[physical]\nformat = "tar"\n{extra}')
    return path


def _never_broken(result: subprocess.CompletedProcess[str]) -> None:
    """A tool of the wrong major is pgvdrill's configuration problem, not the backup's."""
    said = result.stdout + result.stderr
    assert "Traceback" not in said
    assert result.returncode in (0, 2), said
    if result.returncode == 2:
        assert "16" in result.stderr and "installation" in result.stderr.lower(), said


def test_a_16_physical_backup_is_never_called_broken_by_18s_tools(
        pgvdrill_cli: Cli, system_backend: Callable[[Path, str], Backend],
        tmp_path: Path) -> None:
    """A 16.2 source backed up by an operator whose configuration names no 16 tools: the
    embedded 18's pg_waldump cannot read 16's WAL. Expected: `backup physical` and
    `verify` either use 16.2's tools or refuse with exit 2 naming the PostgreSQL 16
    installation to configure; never exit 4 ("the backup is broken") nor a traceback.
    With [drill] installations naming 16.2, both succeed. And `verify --pg-bin <18>`
    judging the 16 backup is refused as a mismatch (exit 2), not a pass nor exit 4."""
    with system_backend(PG16, "pg16-prod").cluster("prod16") as prod:
        assert prod.query("SHOW server_version")[0][0] == "16.2"
        prod.query(f"CREATE DATABASE {SOURCE_DB}")
        prod.query("CREATE EXTENSION vector; CREATE TABLE items (id int PRIMARY KEY, "
                   "embedding vector(3)); INSERT INTO items SELECT i, ARRAY[i, 1, 2]::vector"
                   " FROM generate_series(1, 100) i", SOURCE_DB)
        bare = _config(tmp_path / "bare.toml", prod, tmp_path / "repo-bare")
        taken = pgvdrill_cli("backup", "physical", "--config", bare)
        _never_broken(taken)
        if taken.returncode == 0:
            _never_broken(pgvdrill_cli("verify", "--config", bare))

        named = _config(tmp_path / "named.toml", prod, tmp_path / "repo-named",
                        f'\n[drill]\ninstallations = ["{PG16}"]\n')
        taken = pgvdrill_cli("backup", "physical", "--config", named)
        assert taken.returncode == 0, taken.stdout + taken.stderr
        checked = pgvdrill_cli("verify", "--config", named)
        assert checked.returncode == 0, checked.stdout + checked.stderr

        from pgvdrill import installation, osuser
        eighteen = installation.embedded(osuser.server_user()).bindir
        judged = pgvdrill_cli("verify", "--config", named, "--pg-bin", eighteen)
        said = judged.stdout + judged.stderr
        assert judged.returncode == 2 and "Traceback" not in said, said
        assert "PostgreSQL 16" in said and "PostgreSQL 18" in said, said
        assert "not checked" in said and "backup(s) ok" in said, said  # listed, went on


# --- installations that lie about pgvector -----------------------------------------------

def test_installations_probe_fails_the_sigill_build(pgvdrill_cli: Cli, cli_cache: Path
                                                    ) -> None:
    """`pgvdrill installations --probe` of the SIGILL build: exit 2, its probe FAILED with
    the cause; the other installations listed are unaffected."""
    bindir = sigill_build()

    result = pgvdrill_cli("installations", "--installation", bindir, "--probe", "--json",
                          "--cache-dir", cli_cache)

    said = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in said, said
    listing = json.loads(result.stdout)["installations"]
    [bad] = [i for i in listing if i["bindir"] == str(bindir.resolve())]
    assert bad["probe"]["available"] is False and "SIGILL" in bad["probe"]["reason"], bad
    assert all(i["probe"]["available"] for i in listing if i is not bad), listing


def _mislabelled(shared_dir: Path) -> Path:
    """A copy of 16.2 whose vector.control and script say pgvector 0.8.2 (18.3's SQL)
    while its vector.so is still 0.6.2's: no halfvec functions in the library."""
    root = shared_dir / "pg16-mislabelled"
    shutil.copytree(PG16.parents[2], root, symlinks=True)
    extension = root / "pgserver" / "pginstall" / "share" / "postgresql" / "extension"
    new = PG183.parent / "share" / "postgresql" / "extension"
    for path in extension.glob("vector*"):
        path.unlink()
    shutil.copy(new / "vector.control", extension / "vector.control")
    shutil.copy(new / "vector--0.8.2.sql", extension / "vector--0.8.2.sql")
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))
    return root / "pgserver" / "pginstall" / "bin"


def test_a_vector_library_older_than_its_control_file_is_a_clear_error(
        pgvdrill_cli: Cli, cli_cache: Path, shared_dir: Path) -> None:
    """vector.control says 0.8.2, vector.so is 0.6.2: CREATE EXTENSION vector fails (no
    halfvec_in in the library). Expected: `installations --probe` fails it (exit 2), and
    a drill on it stops with exit 2 naming pgvector and the installation, no traceback,
    not "the machine failed" (8) and not a broken backup (1/4)."""
    _installed(PG16)
    _installed(PG183)
    bindir = _mislabelled(shared_dir)

    probed = pgvdrill_cli("installations", "--installation", bindir, "--probe", "--json",
                          "--cache-dir", cli_cache)
    said = probed.stdout + probed.stderr
    assert probed.returncode == 2 and "Traceback" not in said, said

    result, report = _drill(pgvdrill_cli, bindir, cli_cache, *SMALL)
    said = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in said, said
    assert "vector" in result.stderr and "pg16-mislabelled" in result.stderr, said
    assert report is None or report["ok"] is False


def test_the_dr_drill_of_a_16_source_restores_on_16_and_says_so(
        pgvdrill_cli: Cli, system_backend: Callable[[Path, str], Backend],
        tmp_path: Path, cli_cache: Path) -> None:
    """A 16.2 source, [drill] installations naming 16.2, the default embedded 18.6 backend:
    the DR drill's physical restore runs on 16.2 (the source's major: a base backup
    starts only there) and its report entry says 16.2; the logical one restores where the
    configuration says (the embedded 18.6 by default) and states the difference, without
    false differences (MAINTAIN, extension version) failing it."""
    with system_backend(PG16, "pg16-dr").cluster("dr16") as prod:
        prod.query(f"CREATE DATABASE {SOURCE_DB}")
        prod.query("CREATE EXTENSION vector; CREATE TABLE items (id int PRIMARY KEY, "
                   "embedding vector(3)); INSERT INTO items SELECT i, ARRAY[i, 1, 2]::vector"
                   " FROM generate_series(1, 100) i; CREATE INDEX ON items USING hnsw "
                   "(embedding vector_l2_ops)", SOURCE_DB)
        config = _config(tmp_path / "dr.toml", prod, tmp_path / "repo",
                         f'\n[drill]\ninstallations = ["{PG16}"]\n').read_text()
        path = tmp_path / "dr.toml"
        path.write_text(config.replace('format = "tar"', 'format = "plain"'))
        for kind in ("logical", "physical"):
            taken = pgvdrill_cli("backup", kind, "--config", path)
            assert taken.returncode == 0, taken.stdout + taken.stderr

        result = pgvdrill_cli("dr-drill", "--config", path, "--backend", "embedded",
                              "--cache-dir", cli_cache, "--reports-dir", "reports",
                              "--fail-on", "none")

        said = result.stdout + result.stderr
        report = _report(result)
        assert report is not None, said
        problems = [(e["drill"], e["problems"]) for e in report["drills"] if e["problems"]]
        assert result.returncode == 0 and "Traceback" not in said, (problems, said)
        physical = [e for e in report["drills"] if e["kind"] == "physical"]
        assert physical and all(("16.2", "0.6.2") in _servers(e) for e in physical), physical
        assert all(not any(v.startswith("18") for v, _ in _servers(e)) for e in physical)


# --- same PostgreSQL major, older pgvector API: what a restore must refuse, and not ----

@pytest.fixture
def old_api_backend(options: DrillOptions, system_backend: Callable[[Path, str], Backend],
                    shared_dir: Path) -> Backend:
    """A copy of the embedded PostgreSQL 18 whose pgvector installs as 0.6.2: 16.2's
    vector--0.6.2.sql and control over the shipped library (which still has every 0.6.2
    function). A target of the source's major with a pgvector that has no halfvec,
    sparsevec, l2_normalize or vector || vector."""
    from fixtures.installations import copy_installation
    from pgvdrill import installation, osuser

    if options.backend != "embedded":
        pytest.skip("the doctored installation is a copy of the embedded one")
    _installed(PG16)
    shipped = installation.embedded(osuser.server_user()).bindir
    bindir = copy_installation(shipped, shared_dir / "pg18-pgvector062", old_pgvector=None)
    lib = bindir.parent / "lib"
    shutil.copy(shipped.parent / "lib" / "vector.so", lib / "vector.so")
    old = PG16.parent / "share" / "postgresql" / "extension"
    for name in ("vector.control", "vector--0.6.2.sql"):
        shutil.copy(old / name, bindir.parent / "share" / "extension" / name)
    for path in [lib / "vector.so", *(bindir.parent / "share" / "extension").glob("vector*")]:
        path.chmod(0o644)
    backend = system_backend(bindir, "pgvector062")
    assert backend.pgvector_version() == "0.6.2"
    return backend


def _vector_source(make_cluster: Callable[..., Cluster], extra_sql: str) -> Cluster:
    """A session-backend source whose vector_db has a vector(3) table with an HNSW index
    (0.5+ only), plus `extra_sql`."""
    source = make_cluster("vector-source")
    source.query(f"CREATE DATABASE {SOURCE_DB}")
    source.query("CREATE EXTENSION vector; CREATE TABLE items (id int PRIMARY KEY, "
                 "embedding vector(3)); INSERT INTO items SELECT i, ARRAY[i, i % 7, 1]"
                 "::vector FROM generate_series(1, 200) i; CREATE INDEX items_hnsw ON items "
                 "USING hnsw (embedding vector_l2_ops);" + extra_sql, SOURCE_DB)
    return source


def _restore_into(pgvdrill_cli: Cli, source: Cluster, target: Cluster, tmp_path: Path
                  ) -> subprocess.CompletedProcess[str]:
    config = _config(tmp_path / "pgvdrill.toml", source, tmp_path / "repo")
    taken = pgvdrill_cli("backup", "logical", "--config", config)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    target.query("CREATE DATABASE restored TEMPLATE template0")
    return pgvdrill_cli("restore", "logical", "latest", "--target-dsn",
                        conninfo(target, "restored"), "--config", config)


def test_a_newer_pgvectors_dump_of_old_types_restores_into_0_6_2(
        make_cluster: Callable[..., Cluster], old_api_backend: Backend, pgvdrill_cli: Cli,
        tmp_path: Path) -> None:
    """The dump (pgvector 0.8.6) uses only vector, hnsw and vector_l2_ops, all in 0.6.2:
    Expected: restored (exit 0), the pgvector difference stated, rows and index there."""
    source = _vector_source(make_cluster, "")
    with old_api_backend.cluster("old-api") as target:
        result = _restore_into(pgvdrill_cli, source, target, tmp_path)

        said = result.stdout + result.stderr
        assert result.returncode == 0, said
        assert "0.6.2" in result.stdout, result.stdout
        assert _pgvector(target, "restored") == "0.6.2"
        assert target.query("SELECT count(*) FROM items", "restored") == [(200,)]
        assert target.query("SELECT count(*) FROM pg_indexes WHERE indexname = 'items_hnsw'",
                            "restored") == [(1,)]


@pytest.mark.parametrize(("extra", "named"), [
    ("CREATE TABLE halves (id int, h halfvec(3))", "halfvec"),
    ("CREATE VIEW normalized AS SELECT id, l2_normalize(embedding) AS e FROM items",
     "l2_normalize"),
    ("CREATE VIEW doubled AS SELECT id, embedding || embedding AS e FROM items", "||"),
    ("CREATE INDEX items_half ON items USING hnsw ((embedding::halfvec(3)) "
     "halfvec_l2_ops)", "halfvec"),
])
def test_what_0_6_2_lacks_is_refused_before_restoring_naming_it(
        extra: str, named: str, make_cluster: Callable[..., Cluster],
        old_api_backend: Backend, pgvdrill_cli: Cli, tmp_path: Path) -> None:
    """A dump using something pgvector 0.7+ added (a halfvec column, l2_normalize in a
    view, vector concatenation, a halfvec expression index): refused before anything is
    restored (exit 5) naming it; not a pg_restore failure halfway (exit 3)."""
    source = _vector_source(make_cluster, extra)
    with old_api_backend.cluster("old-api") as target:
        result = _restore_into(pgvdrill_cli, source, target, tmp_path)

        said = result.stdout + result.stderr
        assert result.returncode == 5 and "Traceback" not in said, said
        assert named in result.stderr, said
        assert target.query(USER_TABLES, "restored") == [(0,)]
