"""Physical drills: every base-backup form restored into a fresh data directory, started,
verified against the source and answering ANN queries exactly like it; incremental vs full;
the low-level API; the runbook's outdated steps; tampered backups; unsafe targets.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from fixtures.cli import Cli
from fixtures.options import DrillOptions
from fixtures.ran_on import entry_problems
from pgvdrill import installation, osuser
from pgvdrill.capabilities import VERIFYBACKUP_TAR_MAJOR, server_capabilities
from pgvdrill.cluster import Backend, Cluster
from pgvdrill.dataset import Dataset
from pgvdrill.drill.physical import (
    SEQUENCE_SLACK,
    PhysicalDrill,
    enable_summarize_wal,
    incremental_backup,
    restore_backup_and_verify,
    run_physical,
)
from pgvdrill.drill.record import DrillFailure
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.errors import BackupError, ConfigError, RestoreError
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS, BaseBackup, BaseBackupSetting
from pgvdrill.physical.backup import base_backup
from pgvdrill.physical.restore import restore_base_backup, unpack
from pgvdrill.physical.runbook import runbook_recovery_conf, runbook_start_backup
from pgvdrill.physical.unpack import extract
from pgvdrill.physical.verifybackup import check_backup
from pgvdrill.proc.runner import ToolCall
from pgvdrill.verify import Snapshot, same_ann_answers, snapshot, verify
from pgvdrill.wal.records import check_records

FULL_SETTINGS = [s for s in BASE_BACKUP_SETTINGS.values() if s.method != "incremental"]
RUNBOOK = "tar-gz"  # taken as the runbook writes it: no --checkpoint=fast


@pytest.fixture(scope="module")
def physical_source(backend: Backend, source_template: str) -> Iterator[Cluster]:
    """A source of our own (base backups checkpoint and write WAL), summarize_wal on where
    the server has it."""
    with backend.cluster("physical-source", template=source_template) as cluster:
        enable_summarize_wal(cluster)
        yield cluster


@pytest.fixture(scope="module")
def physical_snapshot(physical_source: Cluster) -> Snapshot:
    with physical_source.connect(SOURCE_DB) as conn:
        return snapshot(conn)


@pytest.fixture(scope="module")
def backups(physical_source: Cluster, tmp_path_factory: pytest.TempPathFactory
            ) -> Callable[[BaseBackupSetting], BaseBackup]:
    """Each setting's base backup of the physical source, taken once. Read-only: a test
    that damages one copies it first."""
    taken: dict[str, BaseBackup] = {}
    outdir = tmp_path_factory.mktemp("base-backups")

    def get(setting: BaseBackupSetting) -> BaseBackup:
        if setting.name not in taken:
            taken[setting.name] = base_backup(physical_source, setting, outdir / setting.name,
                                              fast_checkpoint=setting.name != RUNBOOK)
        return taken[setting.name]

    return get


@pytest.mark.parametrize("setting", FULL_SETTINGS, ids=lambda s: s.name)
def test_physical_restore(
    backend: Backend, backups: Callable[[BaseBackupSetting], BaseBackup],
    physical_source: Cluster, physical_snapshot: Snapshot, setting: BaseBackupSetting,
    record_drill: Callable[[PhysicalDrill], None],
) -> None:
    """Backup, pg_verifybackup, restore into a fresh directory, WAL replay, verification:
    counts, bit-exact content, schema, valid indexes, amcheck, recall, same ANN answers."""
    backup = backups(setting)

    drill = restore_backup_and_verify(backend, backup, physical_source, physical_snapshot)
    record_drill(drill)

    drill.verification.raise_for_problems()
    assert drill.verification.check("ann_answers").details, "no vector index was compared"
    assert len(drill.checks) == (0 if setting.method == "low-level" else 1)
    version = str(physical_source.query("SHOW server_version")[0][0]).split()[0]
    server = drill.entry().server
    assert server and server["postgresql"] == version and version.startswith(f"{backend.major}.")
    assert backup.end_lsn and backup.start_lsn and backup.size_bytes > 0


def test_physical_runbook_tar_gz_streams_wal_by_default(
    backups: Callable[[BaseBackupSetting], BaseBackup]
) -> None:
    """The runbook's first form has no -X: pg_basebackup streams WAL anyway (pg_wal.tar.gz)
    and the backup is self-contained."""
    assert backups(BASE_BACKUP_SETTINGS[RUNBOOK]).files() == [
        "backup_manifest", "base.tar.gz", "pg_wal.tar.gz"]


def test_physical_incremental_equals_full_at_the_same_point(
    backend: Backend, make_cluster: Callable[..., Cluster], source_template: str,
    tmp_path: Path, record_drill: Callable[[PhysicalDrill], None],
) -> None:
    """A full backup, changes, an incremental backup and a full one right after it: the
    combined incremental restores to exactly what the full backup restores to."""
    source = make_cluster("incr-source", template=source_template)
    summaries = enable_summarize_wal(source)
    if not summaries.available:
        pytest.skip(f"incremental backups need WAL summaries: {summaries.reason}")
    full = base_backup(source, BASE_BACKUP_SETTINGS["plain"], tmp_path / "full",
                       fast_checkpoint=True)
    incremental = incremental_backup(source, tmp_path, full, fast_checkpoint=True)
    full_now = base_backup(source, BASE_BACKUP_SETTINGS["plain"], tmp_path / "full-now",
                           fast_checkpoint=True)
    with source.connect(SOURCE_DB) as conn:
        changed = snapshot(conn)

    drill = restore_backup_and_verify(backend, incremental, source, changed)
    record_drill(drill)

    drill.verification.raise_for_problems()
    assert [c.format for c in drill.checks] == ["plain", "plain", "plain"]  # full, incr, combined
    assert incremental.size_bytes < full_now.size_bytes / 2
    combined = restore_base_backup(backend, incremental, "combined")
    from_full = restore_base_backup(backend, full_now, "from-full")
    try:
        combined.start()
        from_full.start()
        with combined.connect(SOURCE_DB) as c, from_full.connect(SOURCE_DB) as f:
            verify(f, c, sequence_slack=SEQUENCE_SLACK).raise_for_problems()
            answers = same_ann_answers(f, c)
            assert answers.ok, answers.problems
    finally:
        combined.destroy()
        from_full.destroy()


def test_physical_low_level_copy_has_the_backup_label(
    backups: Callable[[BaseBackupSetting], BaseBackup], physical_source: Cluster
) -> None:
    """pg_backup_stop's label is in the copy, the server is out of backup mode, and the
    temporary slot that held the WAL is gone."""
    backup = backups(BASE_BACKUP_SETTINGS["low-level"])

    label = (backup.path / "backup_label").read_text()
    assert "LABEL: pgvdrill low-level" in label
    assert f"START WAL LOCATION: {backup.start_lsn} " in label
    assert not (backup.path / "postmaster.pid").exists()
    assert physical_source.query("SELECT count(*) FROM pg_replication_slots") == [(0,)]
    physical_source.query("SELECT pg_backup_start('again', true)")  # ends with the session


def test_physical_runbook_pg_start_backup_is_reported_as_removed(
    physical_source: Cluster
) -> None:
    with pytest.raises(ConfigError) as caught:
        runbook_start_backup(physical_source)

    message = str(caught.value)
    assert "function pg_start_backup(unknown) does not exist" in message
    assert "removed in PostgreSQL 15" in message and "pg_backup_start" in message


def test_physical_runbook_recovery_conf_is_rejected(
    backend: Backend, backups: Callable[[BaseBackupSetting], BaseBackup]
) -> None:
    """The runbook's recovery.conf in a restored base backup: the server refuses to start,
    and pgvdrill says so with the server's own words and the PostgreSQL 12+ way."""
    cluster = restore_base_backup(backend, backups(BASE_BACKUP_SETTINGS["plain"]), "recconf")
    try:
        with pytest.raises(RestoreError) as caught:
            runbook_recovery_conf(cluster, {
                "restore_command": "cp /backup/wal/%f %p",
                "recovery_target_time": "2025-11-01 10:00:00",
                "recovery_target_action": "promote"})

        message = str(caught.value)
        assert 'using recovery command file "recovery.conf" is not supported' in message
        assert "recovery.signal" in message
        assert not cluster.is_running()
    finally:
        cluster.destroy()


def _relation_file(source: Cluster) -> str:
    """The data file of the documents table, relative to the data directory."""
    return str(source.query("SELECT pg_relation_filepath('documents')", SOURCE_DB)[0][0])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


TAMPERING: dict[str, Callable[[Path], None]] = {
    "changed": _flip,
    "truncated": _truncate,
    "missing": Path.unlink,
    "extra": lambda path: path.with_name("99999").write_bytes(b"\0" * 8192),
}


@pytest.mark.parametrize("how", TAMPERING)
def test_physical_tampered_plain_backup_is_broken(
    backups: Callable[[BaseBackupSetting], BaseBackup], physical_source: Cluster,
    backend: Backend, tmp_path: Path, how: str,
) -> None:
    good = backups(BASE_BACKUP_SETTINGS["plain"])
    copy = Path(shutil.copytree(good.path, tmp_path / "plain"))
    relfile = _relation_file(physical_source)
    TAMPERING[how](copy / relfile)
    named = relfile if how != "extra" else str(Path(relfile).with_name("99999"))

    with pytest.raises(BackupError, match=f"is broken .*{named}"):
        check_backup(backend.tools(), copy)


@pytest.mark.parametrize("remove_manifest", [False, True])
def test_physical_drill_refuses_a_tampered_backup(
    backups: Callable[[BaseBackupSetting], BaseBackup], physical_source: Cluster,
    physical_snapshot: Snapshot, backend: Backend, tmp_path: Path, remove_manifest: bool,
) -> None:
    """The drill checks before it restores; a backup without its manifest is not waved
    through unchecked."""
    good = backups(BASE_BACKUP_SETTINGS["plain"])
    copy = Path(shutil.copytree(good.path, tmp_path / "plain"))
    _flip(copy / _relation_file(physical_source))
    if remove_manifest:
        (copy / "backup_manifest").unlink()
    tampered = BaseBackup(good.setting, copy, good.seconds, good.wal)

    with pytest.raises(BackupError, match="backup_manifest" if remove_manifest else "checksum"):
        restore_backup_and_verify(backend, tampered, physical_source, physical_snapshot)


@pytest.mark.parametrize("archive", ["base.tar.gz", "pg_wal.tar.gz"])
def test_physical_truncated_tar_backup_is_broken(
    backups: Callable[[BaseBackupSetting], BaseBackup], backend: Backend, tmp_path: Path,
    archive: str,
) -> None:
    """pg_wal.tar.gz is in no manifest: pg_verifybackup -n passes it (where it reads tar),
    the WAL parse does not."""
    copy = Path(shutil.copytree(backups(BASE_BACKUP_SETTINGS[RUNBOOK]).path, tmp_path / "t"))
    _truncate(copy / archive)

    with pytest.raises(BackupError, match=r"is broken|cannot extract"):
        check_backup(backend.tools(), copy)
    if archive == "pg_wal.tar.gz" and backend.major >= VERIFYBACKUP_TAR_MAJOR:
        backend.tools().run_tool(ToolCall("pg_verifybackup", ["--no-parse-wal", copy]))


def test_physical_incremental_is_not_applicable_without_wal_summaries(
    backend: Backend, dataset: Dataset, physical_source: Cluster, tmp_path: Path
) -> None:
    """Before PostgreSQL 17 (no summarize_wal) `--physical incremental` is not drilled, and
    says why, instead of failing to start the source."""
    with physical_source.connect() as conn:
        server = server_capabilities(conn)
    if server.setting("summarize_wal").available:
        pytest.skip(f"PostgreSQL {server.version} has summarize_wal: incremental is drilled")
    said: list[str] = []

    results = run_physical(backend, dataset, [BASE_BACKUP_SETTINGS["incremental"]], tmp_path,
                           said.append)

    assert server.major == backend.major < 17
    assert results == []
    assert said == ["  restore incremental: not applicable (incremental backups need WAL "
                    f"summaries: PostgreSQL {server.version} has no summarize_wal setting)"]


def test_a_physical_drill_that_fails_outright_says_which_server_it_ran_on(
    backend: Backend, dataset: Dataset, tmp_path: Path
) -> None:
    """A base backup pg_basebackup refuses: the drill fails, and its report entry still
    names the server it drilled (the session's ran-on check needs it)."""
    plain = BASE_BACKUP_SETTINGS["plain"]
    refused = replace(plain, name="refused", args=(*plain.args, "--no-such-option"))

    [result] = run_physical(backend, dataset, [refused], tmp_path, lambda line: None)

    assert isinstance(result, DrillFailure) and not result.ok
    entry = result.entry().as_dict()
    assert entry_problems(entry, backend.facts()) == [], entry
    assert entry["server"]["postgresql"].split(".")[0] == str(backend.major), entry


def _with_member_changed(archive: Path, name: str, out: Path) -> None:
    """A copy of the tar `archive` at `out`, a byte in the middle of member `name` flipped."""
    with tarfile.open(archive) as src, tarfile.open(out, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member) if member.isreg() else None
            if data is not None and member.name == name:
                content = bytearray(data.read())
                content[len(content) // 2] ^= 0xFF
                data = io.BytesIO(bytes(content))
            dst.addfile(member, data)


def test_physical_tar_backup_is_checked_by_the_tools_of_its_major(
    backend: Backend, backups: Callable[[BaseBackupSetting], BaseBackup],
    physical_source: Cluster, tmp_path: Path,
) -> None:
    """pg_verifybackup reads tar backups from PostgreSQL 18 on; an older one checks the
    backup extracted into a plain copy: an intact backup passes, a changed file is named."""
    backup = backups(BASE_BACKUP_SETTINGS["tar-stream"])
    version_num = int(str(physical_source.query("SHOW server_version_num")[0][0]))

    check = check_backup(backend.tools(), backup.path)

    assert check.major == backend.major == version_num // 10000
    assert check.extracted == (backend.major < 18) and check.wal_parsed
    copy = tmp_path / "tar"
    copy.mkdir()
    for path in backup.path.iterdir():
        if path.name != "base.tar":
            shutil.copy(path, copy / path.name)
    relfile = _relation_file(physical_source)
    _with_member_changed(backup.path / "base.tar", relfile, copy / "base.tar")
    with pytest.raises(BackupError, match=f"is broken .*{relfile}"):
        check_backup(backend.tools(), copy)


def _another_major(backend: Backend, options: DrillOptions) -> installation.Installation:
    """Client tools of another PostgreSQL major than the backend's: the embedded
    installation's, or one named with --drill-installations."""
    for bindir in (installation.embedded(osuser.server_user()).bindir, *options.installations):
        found = installation.from_bindir(bindir)
        if found.major != backend.major:
            return found
    pytest.skip(f"no installation of another major than PostgreSQL {backend.major}: name one "
                "with --drill-installations")


@pytest.mark.parametrize("setting", ["plain", "tar-stream"])
def test_physical_tools_of_another_major_are_refused_not_blamed_on_the_backup(
    backend: Backend, backups: Callable[[BaseBackupSetting], BaseBackup],
    options: DrillOptions, setting: str,
) -> None:
    """18's pg_waldump cannot read 16's WAL: a tool of another major is refused, saying
    what to run instead, and never calls the backup broken."""
    other = _another_major(backend, options)
    backup = backups(BASE_BACKUP_SETTINGS[setting])

    with pytest.raises(ConfigError) as caught:
        check_backup(other, backup.path)

    assert (f"pg_verifybackup is PostgreSQL {other.major}'s, base backup {backup.path} is "
            f"PostgreSQL {backend.major}'s") in caught.value.message
    assert f"client tools of PostgreSQL {backend.major}" in caught.value.hint
    if setting == "plain":
        with pytest.raises(ConfigError, match=f"pg_waldump is PostgreSQL {other.major}'s, the "
                           f"WAL in .* is PostgreSQL {backend.major}'s"):
            check_records(other, backup.path / "pg_wal")


def test_physical_refuses_a_non_empty_target(
    backend: Backend, backups: Callable[[BaseBackupSetting], BaseBackup], tmp_path: Path
) -> None:
    backup = backups(BASE_BACKUP_SETTINGS["tar-stream"])
    target = tmp_path / "pgdata"
    target.mkdir()
    (target / "PG_VERSION").write_text("17\n")

    with pytest.raises(RestoreError, match="is not empty"):
        unpack(backend.tools(), backup, target)
    assert (target / "PG_VERSION").read_text() == "17\n"
    unpack(backend.tools(), backup, target, force=True)
    assert (target / "PG_VERSION").read_text().strip() == str(backend.major)


@pytest.mark.parametrize("name", ["../escape", "/etc/escape"])
def test_physical_unsafe_tar_member_is_refused(tmp_path: Path, name: str) -> None:
    archive = tmp_path / "base.tar"
    with tarfile.open(archive, "w") as tar:
        member = tarfile.TarInfo(name)
        member.size = 2
        tar.addfile(member, io.BytesIO(b"x\n"))

    with pytest.raises(BackupError, match="a path outside the data directory"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "escape").exists()


def test_physical_cli_verify_backup(
    backups: Callable[[BaseBackupSetting], BaseBackup], tmp_path: Path, pgvdrill_cli: Cli
) -> None:
    good = backups(BASE_BACKUP_SETTINGS["server-gzip"]).path
    result = pgvdrill_cli("verify-backup", good)
    assert result.returncode == 0, result.stderr
    assert "ok:" in result.stdout

    copy = Path(shutil.copytree(good, tmp_path / "broken"))
    _truncate(copy / "base.tar.gz")
    result = pgvdrill_cli("verify-backup", copy)
    assert result.returncode == 4, result.stderr
    assert "Traceback" not in result.stderr and "base.tar.gz" in result.stderr


def test_physical_cli_drill(tmp_path: Path, pgvdrill_cli: Cli, cli_cache: Path) -> None:
    """`pgvdrill drill --no-logical --physical ...`: the same drill from the command line."""
    result = pgvdrill_cli("drill", "--no-logical", "--physical", "low-level",
                          "--fast-checkpoint", "--cache-dir", cli_cache, "--reports-dir",
                          tmp_path / "reports")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "restore low-level: copy" in result.stdout
    run_dir = next((tmp_path / "reports").glob("*/report.json")).parent
    report = json.loads((run_dir / "report.json").read_text())
    assert [(d["drill"], d["kind"], d["ok"]) for d in report["drills"]] == \
        [("physical:low-level", "physical", True)]
    drill = report["drills"][0]
    assert [p["phase"] for p in drill["phases"]] == ["copy", "start", "verify"]
    assert drill["restore"]["seconds"] == pytest.approx(
        sum(p["seconds"] for p in drill["phases"][:2]), abs=0.01)
    assert {v["name"]: v["status"] for v in drill["verdicts"]}["rto.physical"] == "pass"
    assert {v["name"] for v in drill["verdicts"]} == {"rto.physical", "throughput.physical_backup"}
    assert drill["measures"]["source_bytes"] > 0
    assert "physical:low-level" in (run_dir / "report.md").read_text()
    assert ('pgvdrill_drill_success{kind="physical",backup="low-level",restore="copy"} 1'
            in (run_dir / "metrics.prom").read_text())
