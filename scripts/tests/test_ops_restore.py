"""Pure logic of `pgvdrill restore`: the recovery target from the options, which backup
`latest` means, the data directory rules, the recovery settings written, and when a
target database is the source (no server: a hand-made plain "backup" directory where
files are unpacked)."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pgvdrill.errors import BackupError, ConfigError, RestoreError
from pgvdrill.installation import Installation
from pgvdrill.ops.restore_choose import choose, parse_time, refuse_before_backup, target_from
from pgvdrill.ops.restore_datadir import existing_names, restore_datadir, write_recovery
from pgvdrill.ops.restore_logical import place
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


def test_recovery_settings_are_appended_after_the_sources(tmp_path: Path) -> None:
    (tmp_path / "postgresql.auto.conf").write_text("work_mem = '64MB'\n")

    write_recovery(tmp_path, "cp '/wal/%f' %p", Target("name", "it's here"), "physical-1")

    lines = (tmp_path / "postgresql.auto.conf").read_text().splitlines()
    assert lines[0] == "work_mem = '64MB'" and lines[1].startswith("# pgvdrill restore pitr")
    assert lines[2:] == ["restore_command = 'cp ''/wal/%f'' %p'",
                         "recovery_target_timeline = 'latest'",
                         "recovery_target_name = 'it''s here'",
                         "recovery_target_inclusive = on",
                         "recovery_target_action = 'promote'"]
    assert (tmp_path / "recovery.signal").read_bytes() == b""


def test_the_place_a_conninfo_names() -> None:
    assert place({"host": "db1", "dbname": "vector_db"}) == ("", "db1", "5432", "vector_db")
    assert place({"user": "backup"}) == ("", "localhost", "5432", "backup")
    assert place({"hostaddr": "10.0.0.1", "port": "5433", "dbname": "x"}) == \
        ("", "10.0.0.1", "5433", "x")
