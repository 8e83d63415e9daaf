"""The pgbackrest provider against the real pgBackRest 2.45 and Debian's PostgreSQL 15
(fixtures/provider_pgbackrest.py): it lists the stanza's backup as pgBackRest took it,
restores it into an empty directory, fetches its WAL, and a scratch server of 15 recovers
from that to the end of the archive with the source's data; pgBackRest's own check and
verify pass. Broken copies of the repository (a file of the backup removed, a WAL segment
after the backup's end removed) make verify fail naming the file or the gap, and the
listing of the archive shows the gap. The stand-in has no pgvector (Debian's 15 has none):
its tables carry float8[] embeddings, so nothing here says anything about vectors."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import Cli
from fixtures.ops import _toml
from fixtures.production import ADMIN, PROD_USER, connection_problems, read_report
from fixtures.provider_pgbackrest import PG15, Stanza
from pgvdrill import config
from pgvdrill.backends import default_workdir, make_backend
from pgvdrill.cluster.wal_commands import restore_command
from pgvdrill.errors import BackupError, ConfigError, RestoreError
from pgvdrill.osuser import server_user
from pgvdrill.providers.base import ProviderBackup
from pgvdrill.providers.pgbackrest import PgBackRest
from pgvdrill.providers.registry import make
from pgvdrill.wal.names import Segment, parse_lsn, recorded_segment_size
from pgvdrill.wal.pitr import BackupPoint, Target, recover

# the module's stand-in and tool set-up are built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("provider-pgbackrest")


TABLES = ("public.documents", "public.events")
CONTENT = "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY id)) FROM {} t"


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A directory of the test's own below the drill work directory (root's, 0711)."""
    made = Path(tempfile.mkdtemp(prefix="pgbackrest-drill-", dir=default_workdir()))
    made.chmod(0o711)
    yield made
    shutil.rmtree(made, ignore_errors=True)


def provider(stanza: Stanza) -> PgBackRest:
    made = make(stanza.provider())
    assert isinstance(made, PgBackRest)
    return made


def newest(stanza: Stanza) -> ProviderBackup:
    return provider(stanza).backups()[-1]


def test_it_lists_the_backup_pgbackrest_took(pgbackrest_stanza: Stanza) -> None:
    tool = provider(pgbackrest_stanza)
    assert tool.version() == "pgbackrest 2.45"
    (backup,) = tool.backups()
    label = pgbackrest_stanza.run("info").stdout
    assert f"full backup: {backup.id}" in label
    assert backup.kind == "physical" and backup.source_version == "15"
    assert backup.timeline == 1 and backup.size_bytes and backup.size_bytes > 0
    assert backup.started and backup.finished and backup.started <= backup.finished
    assert backup.start_lsn and backup.end_lsn
    assert parse_lsn(backup.start_lsn) < parse_lsn(backup.end_lsn)
    # the backup history file production archived names the same start
    start = parse_lsn(backup.start_lsn)
    history = f"{Segment.containing(start, 1).name}.{start % (16 << 20):08X}.backup"
    assert history in (tool.wal_names() or [])


def test_it_fetches_wal_and_says_what_is_not_there(pgbackrest_stanza: Stanza,
                                                    workdir: Path) -> None:
    tool = provider(pgbackrest_stanza)
    names = tool.wal_names() or []
    segment = str(newest(pgbackrest_stanza).details["archive_stop"])
    assert segment in names
    assert tool.fetch_wal(segment, workdir / "got") is True
    got = (workdir / "got").read_bytes()
    assert len(got) == 16 << 20 and recorded_segment_size(got) == 16 << 20
    assert (workdir / "got").stat().st_uid == 0  # the drill's own file, not the tool user's
    assert tool.fetch_wal("0000000100000000000000FE", workdir / "none") is False
    assert not (workdir / "none").exists()
    with pytest.raises(ConfigError, match="not a WAL file name"):
        tool.fetch_wal("../../etc/passwd", workdir / "x")
    assert sorted(p.name for p in workdir.iterdir()) == ["got"]


def test_its_own_check_and_verify_pass(pgbackrest_stanza: Stanza) -> None:
    tool = provider(pgbackrest_stanza)
    checks = {check.name: check.status for check in tool.checks()}
    assert checks == {"pgbackrest info: stanza status": "pass",
                      "pgbackrest info: repository status": "pass",
                      "pgbackrest info: archive": "pass"}, checks
    verified = tool.verify(newest(pgbackrest_stanza))
    assert verified.status == "pass", verified.output
    assert "is valid" in verified.output


def test_the_restored_backup_recovers_to_the_sources_data(pgbackrest_stanza: Stanza,
                                                          workdir: Path) -> None:
    """Restore, fetch every archived WAL file into a directory the scratch server reads,
    recover to the end with a `system` backend of 15: the source's rows, exactly. The
    repository and production's configuration are what they were."""
    production = pgbackrest_stanza.production
    before_files = pgbackrest_stanza.files()
    before = production.fingerprint()
    tool = provider(pgbackrest_stanza)
    backup = newest(pgbackrest_stanza)
    (workdir / "data").mkdir()
    restored = tool.restore(backup, workdir / "data")
    print(f"pgbackrest restore of {backup.size_bytes} bytes: {restored.seconds:.2f}s")
    assert restored.argv[-3:] == (f"--set={backup.id}", f"--pg1-path={workdir / 'data'}",
                                  "--type=none")
    auto = (workdir / "data" / "postgresql.auto.conf").read_text()
    assert "restore_command" not in auto  # --type=none: nothing of pgBackRest's runs
    wal = workdir / "wal"
    wal.mkdir(mode=0o755)
    for name in tool.wal_names() or []:
        assert tool.fetch_wal(name, wal / name)
        (wal / name).chmod(0o644)
    assert backup.start_lsn and backup.end_lsn and backup.timeline
    point = BackupPoint(parse_lsn(backup.start_lsn), backup.timeline,
                        parse_lsn(backup.end_lsn), None)
    backend = make_backend("system", pg_bin=PG15, workdir=workdir)
    try:
        cluster = backend.adopt("pgbackrest", workdir / "data", superuser=ADMIN)
        try:
            recover(cluster, Target("end"), restore_command(wal, server_user()), point,
                    timeout=300)
            for table in TABLES:
                query = CONTENT.format(table)
                assert cluster.query(query, "vector_db") == production.admin(query)
            assert cluster.query("SELECT count(*) FROM pg_extension WHERE extname = "
                                 "'vector'", "vector_db") == [(0,)]  # no vectors here
        finally:
            cluster.destroy()
    finally:
        backend.close()
    assert pgbackrest_stanza.files() == before_files
    assert production.fingerprint().unchanged_problems(before) == []


def test_a_file_removed_from_the_backup_fails_verify_and_restore(
        pgbackrest_stanza: Stanza, workdir: Path) -> None:
    broken = pgbackrest_stanza.copy("file-removed")
    backup = newest(broken)
    documents = pgbackrest_stanza.production.admin(
        "SELECT pg_relation_filepath('public.documents')")[0][0]
    stored = broken.repo / "backup" / broken.name / backup.id / "pg_data" / f"{documents}.gz"
    stored.unlink()
    verified = provider(broken).verify(backup)
    assert verified.status == "fail"
    assert f"file missing '{backup.id}/pg_data/{documents}.gz'" in verified.output
    assert f"backup {backup.id} is invalid" in verified.output
    (workdir / "data").mkdir()
    with pytest.raises(RestoreError, match=f"could not restore backup {backup.id}"):
        provider(broken).restore(backup, workdir / "data")


def test_a_wal_gap_after_the_backup_fails_verify_and_shows_in_the_listing(
        pgbackrest_stanza: Stanza, workdir: Path) -> None:
    broken = pgbackrest_stanza.copy("wal-removed")
    backup = newest(broken)
    stop = Segment.from_name(str(backup.details["archive_stop"]))
    gone = Segment(stop.timeline, stop.number + 1).name
    after = Segment(stop.timeline, stop.number + 2).name
    digest = hashlib.sha256(pgbackrest_stanza.stored(after).read_bytes()).hexdigest()
    broken.stored(gone).unlink()
    tool = provider(broken)
    names = tool.wal_names() or []
    assert gone not in names and after in names
    assert tool.fetch_wal(gone, workdir / "gone") is False
    verified = tool.verify(backup)
    assert verified.status == "fail", verified.output
    assert f"WAL after {stop.name} up to {after} (exclusive) is missing" in verified.output
    # the repository the stand-in archives into is untouched by all of it
    assert hashlib.sha256(pgbackrest_stanza.stored(after).read_bytes()).hexdigest() == digest


def test_a_misconfigured_provider_says_what_to_fix(pgbackrest_stanza: Stanza) -> None:
    conf = pgbackrest_stanza.provider()
    with pytest.raises(ConfigError, match="not a plain name"):
        make(config.Provider(**{**conf.__dict__, "stanza": "--repo1-path=/"}))
    with pytest.raises(ConfigError, match="no such OS user"):
        make(config.Provider(**{**conf.__dict__, "user": "no-such-user-here"}))
    wrong = make(config.Provider(**{**conf.__dict__, "stanza": "other"}))
    with pytest.raises(BackupError, match="missing stanza path") as caught:
        wrong.backups()
    assert "check" in str(caught.value)


# the DR drill end to end: `pgvdrill dr-drill --config` with [provider.pgbackrest]

e2e = pytest.mark.installations("the DR drill restores a 15 source on Debian's 15, named in "
                                "[drill] installations")


def _dr_drill(cli: Cli, cli_cache: Path, tmp_path: Path, stanza: Stanza, *args: str
              ) -> tuple[int, str, dict[str, Any]]:
    conninfo, _ = stanza.production.conninfo("pgpass")
    config_file = tmp_path / "pgvdrill.toml"
    config_file.write_text(f"[source]\nconninfo = {_toml(conninfo)}\n\n{stanza.toml()}\n"
                           f"[drill]\ninstallations = [{_toml(str(PG15))}]\n")
    result = cli("dr-drill", "--config", config_file, "--cache-dir", cli_cache,
                 "--reports-dir", "reports", *args, timeout=900)
    output = result.stdout + result.stderr
    assert list(tmp_path.glob("reports/*/report.json")), output
    return result.returncode, output, read_report(tmp_path)


def _problems(drill: dict[str, Any]) -> str:
    return "\n".join([drill.get("error") or "", *(drill.get("problems") or [])])


def repository_problems(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Files of the repository or its configuration changed, gone or new since `before`
    (a segment archived by a check, a promoted copy's timeline 2 history or segments)."""
    problems = [f"{name} changed or vanished" for name, digest in before.items()
                if after.get(name) != digest]
    return problems + [f"{name} appeared" for name in sorted(set(after) - set(before))]


def _failed_without(stored: Path, cli: Cli, cli_cache: Path, tmp_path: Path,
                    stanza: Stanza) -> dict[str, Any]:
    """The failed drill's entry of a DR drill run while the repository lacks `stored` (put
    back afterwards); pgBackRest's own verify failed too."""
    aside = tmp_path / "aside"
    shutil.move(stored, aside)
    try:
        code, output, report = _dr_drill(cli, cli_cache, tmp_path, stanza)
    finally:
        shutil.move(aside, stored)
    assert code == 1, output
    (drill,) = report["drills"]
    assert drill["ok"] is False
    assert drill["backup"]["tool_verify"]["status"] == "fail", drill["backup"]["tool_verify"]
    return dict(drill)


def _tool_logs(stanza: Stanza) -> dict[str, int]:
    """pgBackRest's log files in the stand-in's log-path but the archiver's, with sizes."""
    return {p.name: p.stat().st_size for p in (stanza.directory / "log").iterdir()
            if "archive-push" not in p.name}


@e2e
def test_the_dr_drill_passes_on_a_good_backup(pgbackrest_stanza: Stanza, pgvdrill_cli: Cli,
                                              cli_cache: Path, tmp_path: Path) -> None:
    production = pgbackrest_stanza.production
    files = pgbackrest_stanza.files()
    before = production.fingerprint()
    logs = _tool_logs(pgbackrest_stanza)

    code, output, report = _dr_drill(pgvdrill_cli, cli_cache, tmp_path, pgbackrest_stanza)

    assert code == 0, output
    (drill,) = report["drills"]
    label = newest(pgbackrest_stanza).id
    assert drill["drill"] == f"provider:pgbackrest:{label}" and drill["ok"] is True, \
        _problems(drill)
    assert drill["backup"]["tool_version"] == "pgbackrest 2.45"
    assert drill["backup"]["tool_verify"]["status"] == "pass"
    assert [c["status"] for c in drill["backup"]["tool_checks"]] == ["pass"] * 3
    assert drill["restore"]["major"] == 15 and drill["restore"]["wal"]["segments"] >= 1
    print(f"pgbackrest restore in the DR drill: {drill['restore']['tool_seconds']}s, "
          f"recovery {drill['restore']['recovery_seconds']}s")
    checks = {c["name"]: c for c in drill["verification"]["checks"]}
    assert checks["row_counts"]["ok"] and checks["fingerprints"]["ok"], checks
    # no pgvector on Debian's 15: the vector checks measured nothing and say so
    for name in ("ann_recall", "planner", "ann_answers"):
        assert checks[name].get("unknown", "").startswith("not applicable"), checks[name]
    assert drill["restore"]["pgvector"] is None
    # the whole drill, its checks included, leaves the repository as it was: no new file
    # (pgvdrill never runs `pgbackrest check`, which archives a segment into it)
    assert repository_problems(files, pgbackrest_stanza.files()) == []
    after = production.fingerprint()
    assert after.unchanged_problems(before) == []
    assert connection_problems(after, before) == []  # pgBackRest connected nowhere
    # pgvdrill's runs of pgBackRest write no log into production's log-path (the
    # archiver's own archive-push log is production's, left out)
    assert _tool_logs(pgbackrest_stanza) == logs


@e2e
def test_the_dr_drill_fails_on_a_file_removed_from_the_backup(
        pgbackrest_stanza: Stanza, pgvdrill_cli: Cli, cli_cache: Path, tmp_path: Path) -> None:
    label = newest(pgbackrest_stanza).id
    documents = pgbackrest_stanza.production.admin(
        "SELECT pg_relation_filepath('public.documents')")[0][0]
    stored = (pgbackrest_stanza.repo / "backup" / pgbackrest_stanza.name / label / "pg_data"
              / f"{documents}.gz")
    drill = _failed_without(stored, pgvdrill_cli, cli_cache, tmp_path, pgbackrest_stanza)
    assert f"file missing '{label}/pg_data/{documents}.gz'" in _problems(drill), \
        _problems(drill)


@e2e
def test_the_dr_drill_fails_on_a_wal_segment_removed_after_the_backup(
        pgbackrest_stanza: Stanza, pgvdrill_cli: Cli, cli_cache: Path, tmp_path: Path) -> None:
    backup = newest(pgbackrest_stanza)
    stop = Segment.from_name(str(backup.details["archive_stop"]))
    gone = Segment(stop.timeline, stop.number + 1).name
    drill = _failed_without(pgbackrest_stanza.stored(gone), pgvdrill_cli, cli_cache,
                            tmp_path, pgbackrest_stanza)
    assert f"WAL segment {gone} is missing" in _problems(drill), _problems(drill)


def test_a_backup_with_a_tablespace_is_refused_before_anything_is_restored(
        pgbackrest_stanza: Stanza, workdir: Path) -> None:
    """pgBackRest restores a tablespace to its original path, the source's own: refused
    before pgBackRest runs. (Last in the module: it takes backups of the shared stand-in,
    the newest again one without the tablespace.)"""
    production = pgbackrest_stanza.production
    space = production.directory / "space"
    space.mkdir()
    shutil.chown(space, PROD_USER, PROD_USER)
    production.admin(f"CREATE TABLESPACE elsewhere LOCATION '{space}'", "postgres")
    try:
        pgbackrest_stanza.backup("incr")
        listing = sorted(str(p) for p in space.rglob("*"))
        backup = newest(pgbackrest_stanza)
        (workdir / "data").mkdir()
        with pytest.raises(RestoreError, match="holds tablespaces") as caught:
            provider(pgbackrest_stanza).restore(backup, workdir / "data")
        assert "without tablespaces" in caught.value.hint
        assert list((workdir / "data").iterdir()) == []
        assert sorted(str(p) for p in space.rglob("*")) == listing
    finally:
        production.admin("DROP TABLESPACE elsewhere", "postgres")
        pgbackrest_stanza.backup("incr")
