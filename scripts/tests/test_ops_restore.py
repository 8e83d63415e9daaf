"""Pure logic of `pgvdrill restore`: the recovery target from the options, which backup
`latest` means, the data directory rules, the recovery settings written, and when a
target database is the source (no server: a hand-made plain "backup" directory where
files are unpacked)."""

from __future__ import annotations

import argparse
import os
import shlex
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pgvdrill.cli.main import build_parser
from pgvdrill.cli.restore import PHYSICAL_EPILOG, PITR_EPILOG, target_from
from pgvdrill.config import Config
from pgvdrill.errors import BackupError, ConfigError, RestoreError
from pgvdrill.installation import Installation
from pgvdrill.ops.restore_choose import (
    choose,
    choose_timeline,
    parse_time,
    pitr_command,
    refuse_before_backup,
    target_options,
)
from pgvdrill.ops.restore_datadir import existing_names, make_safe, restore_datadir
from pgvdrill.ops.restore_target import Place, conninfo_places
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS, BaseBackup
from pgvdrill.repository import Entry
from pgvdrill.wal.names import parse_lsn
from pgvdrill.wal.pitr import BackupPoint, Target


def options(**given: str | bool) -> argparse.Namespace:
    defaults: dict[str, str | bool | None] = {
        "target_time": None, "target_xid": None, "target_lsn": None, "target_name": None,
        "target": None, "exclusive": False, "target_action": None}
    return argparse.Namespace(**{**defaults, **given})


def entry(backup_id: str, finished: str, end_lsn: str, kind: str = "physical") -> Entry:
    return Entry(id=backup_id, kind=kind, started=finished.replace(":05+", ":00+"),
                 finished=finished, seconds=5.0, source={}, settings={}, tools={}, files=[],
                 start_lsn="0/1000028", end_lsn=end_lsn, timeline=1)


ENTRIES = [entry("physical-1", "2025-11-01T01:00:05+00:00", "0/3000100"),
           entry("logical-2", "2025-11-01T02:00:05+00:00", "0/4000100", "logical"),
           entry("physical-3", "2025-11-02T01:00:05+00:00", "0/9000100")]


def test_times_need_a_zone() -> None:
    assert parse_time("2025-11-01 10:00:00+00") == datetime(2025, 11, 1, 10, tzinfo=UTC)
    with pytest.raises(ConfigError, match="has no time zone"):
        parse_time("2025-11-01 10:00:00")
    with pytest.raises(ConfigError, match="not an ISO 8601 time"):
        parse_time("yesterday")


def test_targets_from_options() -> None:
    assert target_from(options(target_time="2025-11-01 10:00:00+01")) == \
        Target("time", "2025-11-01T10:00:00+01:00")
    assert target_from(options(target_xid="7531", exclusive=True, target_action="pause")) == \
        Target("xid", "7531", False, "pause")
    assert target_from(options(target_lsn="16/b374d848")) == Target("lsn", "16/B374D848")
    assert target_from(options(target_name="before")) == Target("name", "before")
    assert target_from(options(target="immediate", target_action="shutdown")) == \
        Target("immediate", action="shutdown")
    assert target_from(options()) == Target("end")


@pytest.mark.parametrize(("given", "error"), [
    ({"target_xid": "12a"}, "not a transaction id"),
    ({"target_lsn": "16-B3"}, "not an LSN"),
    ({"target_name": "x", "exclusive": True}, "--exclusive applies to time, xid and lsn"),
    ({"target_action": "pause"}, "--target-action needs a target")])
def test_bad_target_options(given: dict[str, str | bool], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        target_from(options(**given))


def test_a_backup_by_id() -> None:
    assert choose(ENTRIES, {}, "physical", "physical-1").id == "physical-1"
    with pytest.raises(ConfigError, match="logical-2 is a logical backup, not physical"):
        choose(ENTRIES, {}, "physical", "logical-2")
    with pytest.raises(ConfigError, match="no backup physical-9 in the catalog"):
        choose(ENTRIES, {}, "physical", "physical-9")
    with pytest.raises(BackupError, match="broken entry"):
        choose(ENTRIES, {"physical-9": "broken entry"}, "physical", "physical-9")


def test_latest_is_the_newest_that_ends_before_the_target() -> None:
    assert choose(ENTRIES, {}, "physical", "latest").id == "physical-3"
    assert choose(ENTRIES, {}, "logical", "latest").id == "logical-2"
    assert choose(ENTRIES, {}, "physical", "latest",
                  Target("time", "2025-11-01T12:00:00+00:00")).id == "physical-1"
    assert choose(ENTRIES, {}, "physical", "latest", Target("lsn", "0/9000100")).id == \
        "physical-3"
    assert choose(ENTRIES, {}, "physical", "latest", Target("lsn", "0/90000FF")).id == \
        "physical-1"
    assert choose(ENTRIES, {}, "physical", "latest", Target("xid", "5")).id == "physical-3"
    with pytest.raises(RestoreError, match="no physical backup ends before the recovery "
                                           "target"):
        choose(ENTRIES, {}, "physical", "latest", Target("time", "2025-11-01T01:00:04+00:00"))
    with pytest.raises(ConfigError, match="take one first: pgvdrill backup physical"):
        choose(ENTRIES[1:2], {}, "physical", "latest")


def test_a_target_before_the_backup_is_refused() -> None:
    backup = ENTRIES[0]
    without_history = BackupPoint(parse_lsn("0/1000028"), 1, parse_lsn("0/3000100"), None)
    with pytest.raises(RestoreError, match="before base backup physical-1 started"):
        refuse_before_backup(backup, Target("time", "2025-11-01T00:59:59+00:00"),
                             without_history)
    refuse_before_backup(backup, Target("time", "2025-11-01T01:00:01+00:00"), without_history)
    with pytest.raises(RestoreError, match="before the base backup's end LSN"):
        refuse_before_backup(backup, Target("lsn", "0/3000000"), without_history)


def test_the_data_directory_must_be_empty_or_forced_beside_other_files(tmp_path: Path
                                                                         ) -> None:
    assert existing_names(tmp_path / "new", force=False) == []
    (tmp_path / "lost+found").mkdir()
    with pytest.raises(RestoreError, match=r"is not empty \(lost\+found\)"):
        existing_names(tmp_path, force=False)
    assert existing_names(tmp_path, force=True) == ["lost+found"]
    (tmp_path / "PG_VERSION").write_text("18\n")
    with pytest.raises(RestoreError, match="never restores over a cluster, not even with"):
        existing_names(tmp_path, force=True)
    with pytest.raises(RestoreError, match="is not a directory"):
        existing_names(tmp_path / "PG_VERSION", force=True)


@pytest.fixture
def plain_backup(tmp_path: Path) -> BaseBackup:
    path = tmp_path / "backup"
    (path / "base" / "1").mkdir(parents=True)
    (path / "PG_VERSION").write_text("18\n")
    (path / "base" / "1" / "1259").write_bytes(b"x" * 100)
    return BaseBackup(BASE_BACKUP_SETTINGS["plain"], path, 1.0, [])


TOOLS = Installation(Path("/nonexistent"), "18.0")  # a plain copy runs no tool


def test_forced_restore_beside_other_files_moves_everything_in(
        plain_backup: BaseBackup, tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    (pgdata / "lost+found").mkdir(parents=True)

    names = restore_datadir(TOOLS, plain_backup, pgdata, ["lost+found"])

    assert names == ["PG_VERSION", "base"]
    assert sorted(os.listdir(pgdata)) == ["PG_VERSION", "base", "lost+found"]
    assert (pgdata / "base" / "1" / "1259").read_bytes() == b"x" * 100


def test_a_clash_with_an_existing_name_replaces_nothing(plain_backup: BaseBackup,
                                                        tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    (pgdata / "base").mkdir(parents=True)
    (pgdata / "base" / "mine").write_text("keep")

    with pytest.raises(RestoreError, match="already holds base, which the backup restores"):
        restore_datadir(TOOLS, plain_backup, pgdata, ["base"])

    assert sorted(os.listdir(pgdata)) == ["base"]  # no staging directory left either
    assert os.listdir(pgdata / "base") == ["mine"]


def test_recovery_settings_are_the_only_ones_and_nothing_archives(tmp_path: Path) -> None:
    """An earlier PITR's target and a standby's settings in the backup's
    postgresql.auto.conf are commented out, standby.signal renamed; archive_mode off."""
    (tmp_path / "postgresql.conf").write_text("port = 5499\n")
    (tmp_path / "postgresql.auto.conf").write_text(
        "work_mem = '64MB'\narchive_mode = 'on'\nrecovery_target_time = '2020-01-01'\n"
        "Primary_Conninfo='host=prod'\n")
    (tmp_path / "standby.signal").touch()

    done = make_safe(tmp_path, "physical-1", {"restore_command": "cp '/wal/%f' %p",
                                               **Target("name", "it's here").settings()})

    lines = (tmp_path / "postgresql.auto.conf").read_text().splitlines()
    assert lines[:4] == ["work_mem = '64MB'", "archive_mode = 'on'",
                         "# neutralised by pgvdrill restore: recovery_target_time = '2020-01-01'",
                         "# neutralised by pgvdrill restore: Primary_Conninfo='host=prod'"]
    assert lines[4].startswith("# pgvdrill restore pitr physical-1")
    assert lines[5:] == ["archive_mode = 'off'", "primary_conninfo = ''",
                         "primary_slot_name = ''", "max_logical_replication_workers = 0",
                         "recovery_target = ''",
                         "recovery_target_time = ''", "recovery_target_xid = ''",
                         "recovery_target_lsn = ''",
                         "archive_cleanup_command = ''", "recovery_end_command = ''",
                         "recovery_min_apply_delay = 0",
                         "restore_command = 'cp ''/wal/%f'' %p'",
                         "recovery_target_timeline = 'latest'",
                         "recovery_target_name = 'it''s here'",
                         "recovery_target_inclusive = on",
                         "recovery_target_action = 'promote'"]
    assert (tmp_path / "recovery.signal").read_bytes() == b""
    assert not (tmp_path / "standby.signal").exists()
    assert (tmp_path / "standby.signal.moved-by-pgvdrill").exists()
    assert done.port == "5499" and done.archive_mode == "on"
    assert "ALTER SYSTEM SET archive_mode = 'on'" in done.archiving_back_on()
    assert [w for w in done.warnings if "pg_hba.conf" in w]


def test_a_debian_layout_backup_is_named_with_what_to_copy(tmp_path: Path) -> None:
    done = make_safe(tmp_path, "physical-1", None)

    assert "holds no postgresql.conf" in done.warnings[0]
    assert "remove data_directory, hba_file" in done.warnings[0]
    assert not (tmp_path / "recovery.signal").exists()
    assert "recovery_target" not in (tmp_path / "postgresql.auto.conf").read_text()


def test_a_forked_archive_without_the_source_is_refused(tmp_path: Path) -> None:
    """The source unknown (no [source]): one lineage is followed; a fork is refused with
    a command per timeline; a timeline not descending from the backup's is refused."""
    wal = tmp_path / "wal"
    wal.mkdir()
    for name in ("000000010000000000000004", "000000010000000000000005"):
        (wal / name).touch()
    config = Config(tmp_path / "pgvdrill.toml", None, tmp_path)
    point = BackupPoint(0x4000028, 1, 0x4000100, None)
    backup = ENTRIES[0]

    def follow(wanted: str | None) -> tuple[str, str]:
        return choose_timeline(config, wal, backup, point, Target("end"), tmp_path / "d",
                               wanted)

    assert follow(None) == ("1", "timeline: following 1, the archive's only lineage; the "
                                 f"source's current timeline is unknown ({config.path} has "
                                 "no [source])")
    (wal / "00000002.history").write_text("1\t0/5000060\tno recovery target specified\n")
    (wal / "000000020000000000000005").touch()
    assert follow(None)[0] == "2"  # one lineage still: timeline 1 ended where 2 began
    (wal / "000000010000000000000006").touch()  # timeline 1 went on: a fork
    with pytest.raises(RestoreError) as refusal:
        follow(None)
    assert "the archive's timelines fork" in refusal.value.message
    assert f"--target-timeline 1 --config {config.path}" in (refusal.value.hint or "")
    assert follow("2") == ("2", "timeline: following 2, as --target-timeline asks; not "
                                "following timeline(s) 1: branches timeline 2 does not "
                                "descend from (pgvdrill verify --all names their files)")
    assert follow("latest")[0] == "latest"
    with pytest.raises(RestoreError, match="cannot be read"):
        follow("current")
    with pytest.raises(RestoreError, match="timeline 3 has no history file"):
        follow("3")
    late = BackupPoint(0x6000028, 1, 0x6000100, None)  # taken on 1 after 2 branched off
    with pytest.raises(RestoreError, match="left it at 0/5000060, before the backup's end"):
        choose_timeline(config, wal, backup, late, Target("end"), tmp_path / "d", "2")


def test_the_places_a_conninfo_leads_to() -> None:
    """Host names looked up, several hosts, a socket directory; the database named."""
    places, db = conninfo_places({"host": "localhost,/var/run/postgresql", "port": "1,2",
                                  "dbname": "vector_db", "connect_timeout": "1"})
    assert Place("127.0.0.1", "1") in places
    assert Place(os.path.realpath("/var/run/postgresql"), "2") in places  # /run/postgresql
    assert db == "vector_db"
    places, db = conninfo_places({"hostaddr": "127.0.0.2", "port": "1", "user": "backup",
                                  "connect_timeout": "1"})
    assert places == {Place("127.0.0.2", "1")} and db == "backup"  # libpq's default database


def test_this_hosts_addresses_on_one_port_are_one_server() -> None:
    local = [Place("127.0.0.1", "5432"), Place("::1", "5432"), Place("/tmp", "5432"),
             Place("127.0.0.2", "5432")]
    assert all(a.same_server(b) for a in local for b in local)
    assert not Place("127.0.0.1", "5432").same_server(Place("127.0.0.1", "5433"))
    assert not Place("192.0.2.7", "5432").same_server(Place("127.0.0.1", "5432"))  # TEST-NET
    assert Place("192.0.2.7", "5432").same_server(Place("192.0.2.7", "5432"))


@pytest.mark.parametrize("epilog", [PHYSICAL_EPILOG, PITR_EPILOG])
def test_every_example_in_the_help_parses(epilog: str) -> None:
    examples = [line.split("  #")[0] for line in epilog.splitlines()
                if line.startswith("  pgvdrill restore")]

    assert examples
    for example in examples:
        build_parser().parse_args(shlex.split(example)[1:])  # SystemExit when rejected


@pytest.mark.parametrize("target", [
    Target("time", "2025-11-01T10:00:00+00:00", inclusive=False, action="pause"),
    Target("xid", "7531"), Target("lsn", "0/6000000", inclusive=False),
    Target("name", "it's here", action="shutdown"), Target("immediate"), Target("end")])
def test_the_commands_hints_name_parse_to_the_same_target(target: Target,
                                                          tmp_path: Path) -> None:
    config = Config(tmp_path / "pgvdrill.toml", None, tmp_path)
    command = pitr_command(config, "physical-1", tmp_path / "d",
                           [*target_options(target), "--target-timeline", "2"])

    args = build_parser().parse_args(shlex.split(command)[1:])

    assert target_from(args) == target and args.target_timeline == "2"


def test_an_include_outside_the_backup_is_named(tmp_path: Path) -> None:
    (tmp_path / "postgresql.conf").write_text("include_dir = '/etc/postgresql/18/main/conf.d'\n")

    done = make_safe(tmp_path, "physical-1", None)

    assert any("include_dir '/etc/postgresql/18/main/conf.d' lies outside the data directory"
               in w and "the copy reads it when it starts" in w for w in done.warnings)
