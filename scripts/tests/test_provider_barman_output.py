"""Barman's -f json output read as untrusted input (providers/barman_output.py): the shapes
Barman 3.19.1 prints (taken from a real run) and hostile variants of them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from pgvdrill.errors import ConfigError
from pgvdrill.providers import barman_output as output
from pgvdrill.providers.barman import _cannot_verify

# what `barman -f json show-backup prod 20261207T222308` printed (trimmed)
SHOWN: dict[str, Any] = {"prod": {
    "backup_id": "20261207T222308", "backup_type": "full", "status": "DONE",
    "postgresql_version": 180006, "system_id": "7716691150873193027",
    "server_information": {"data_checksums": "on", "summarize_wal": "off"},
    "base_backup_information": {
        "backup_method": "postgres", "backup_size_bytes": 41985304,
        "begin_lsn": "0/5000028", "begin_time": "2026-12-07 23:23:08.115466+01:00",
        "begin_time_timestamp": "1796682188", "begin_wal": "000000010000000000000005",
        "end_lsn": "0/6000000", "end_time_timestamp": "1796682192",
        "end_wal": "000000010000000000000005", "timeline": 1, "wal_num": 1}}}
LISTED = {"prod": [
    {"backup_id": "20261207T230000", "status": "FAILED"},
    {"backup_id": "20261207T222308", "status": "DONE"},
    {"backup_id": "20261207T220000", "status": "WAITING_FOR_WALS"},
    {"backup_id": "20261207T210000", "status": "DONE"}]}


def _show(**changes: Any) -> str:
    shown = json.loads(json.dumps(SHOWN))
    for key, value in changes.items():
        where = shown["prod"]
        if key.startswith("bb_"):  # a field of base_backup_information
            where, key = where["base_backup_information"], key[3:]
        where[key] = value
    return json.dumps(shown)


def test_a_real_show_backup() -> None:
    backup = output.backup(json.dumps(SHOWN), "prod", "20261207T222308")
    assert backup.started == datetime(2026, 12, 7, 22, 23, 8, tzinfo=UTC)  # UTC, not +01
    assert backup.finished == datetime(2026, 12, 7, 22, 23, 12, tzinfo=UTC)
    assert (backup.start_lsn, backup.end_lsn, backup.timeline) == ("0/5000028", "0/6000000", 1)
    assert (backup.size_bytes, backup.source_version) == (41985304, "18.6")
    assert backup.details["begin_wal"] == "000000010000000000000005"
    assert backup.details["data_checksums"] == "on"
    assert output.backup(_show(postgresql_version=160002), "prod",
                         "20261207T222308").source_version == "16.2"



def test_tablespaces_are_named_and_an_unsaid_list_is_none() -> None:
    backup_id = "20261207T222308"
    assert output.tablespaces(_show(tablespaces=[]), "prod", backup_id) == []
    assert output.tablespaces(_show(tablespaces=[{"name": "ts1", "location": "/x",
                                                  "oid": 16400}]), "prod", backup_id) == ["ts1"]
    assert output.tablespaces(_show(), "prod", backup_id) is None  # SHOWN has none
    with pytest.raises(ValueError):
        output.tablespaces(_show(), "prod", "20261207T000000")

def test_only_done_backups_are_listed() -> None:
    assert output.done_ids(json.dumps(LISTED), "prod") == ["20261207T222308",
                                                          "20261207T210000"]
    assert output.done_ids(json.dumps({"prod": []}), "prod") == []


@pytest.mark.parametrize("text", [
    "", "not json", "[1, 2]", '{"other": []}', '{"prod": {}}', '{"prod": [1]}',
    '{"prod": [{"status": "DONE"}]}', '{"prod": [{"backup_id": 7, "status": "DONE"}]}',
    "[" * 100000 + "]" * 100000,  # deep enough to exhaust the parser's recursion
])
def test_a_list_that_is_not_barmans_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        output.done_ids(text, "prod")


@pytest.mark.parametrize("backup_id", ["../../etc", "-rf", "a b", "x" * 200, "id\n2", ""])
def test_a_hostile_backup_id_is_refused(backup_id: str) -> None:
    listed = json.dumps({"prod": [{"backup_id": backup_id, "status": "DONE"}]})
    with pytest.raises(ConfigError, match="not a plain token"):
        output.done_ids(listed, "prod")


@pytest.mark.parametrize("changes", [
    {"backup_id": "20261207T000000"},  # another backup than the one asked for
    {"status": "FAILED"},
    {"base_backup_information": None},
    {"bb_begin_lsn": "0/5000028; rm -rf /"},
    {"bb_end_lsn": 5},
    {"bb_timeline": 0},
    {"bb_timeline": "1e3"},
    {"bb_timeline": True},
    {"bb_backup_size_bytes": -1},
    {"bb_backup_size_bytes": 1.5},
    {"bb_begin_time_timestamp": "99999999999999999"},
    {"bb_end_time_timestamp": "-5"},
    {"postgresql_version": "180006 "},
    {"postgresql_version": 18},
])
def test_a_hostile_show_backup_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        output.backup(_show(**changes), "prod", "20261207T222308")


def test_missing_facts_are_none_and_details_are_printable_text() -> None:
    text = _show(bb_begin_lsn=None, bb_end_time_timestamp=None, postgresql_version=None,
                 backup_type="full\x1b[2J" + "x" * 2000, system_id={"nested": [1]})
    backup = output.backup(text, "prod", "20261207T222308")
    assert (backup.start_lsn, backup.finished, backup.source_version) == (None, None, None)
    assert backup.details["backup_type"].startswith("full?[2J")
    assert len(backup.details["backup_type"]) == output.MAX_TEXT
    assert backup.details["system_id"] == ""


def test_checks_are_read_per_check() -> None:
    text = json.dumps({"prod": {
        "postgresql": {"hint": "", "status": "OK"},
        "receive_wal_running": {"hint": "", "status": "FAILED"},
        "minimum_redundancy_requirements": {"status": "FAILED",
                                            "hint": "have 0 backups\nexpected at least 1"}}})
    assert output.checks(text, "prod") == [
        ("postgresql", True, ""), ("receive_wal_running", False, ""),
        ("minimum_redundancy_requirements", False, "have 0 backups?expected at least 1")]


@pytest.mark.parametrize("found", [
    {}, {"prod": {}}, {"prod": {"x": {"status": "MAYBE"}}},
    {"prod": {"Bad Name;": {"status": "OK"}}}, {"prod": {"postgresql": "OK"}},
])
def test_checks_that_are_not_barmans_are_refused(found: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        output.checks(json.dumps(found), "prod")


def test_wal_names_are_the_archive_names_of_the_paths() -> None:
    text = json.dumps({"_INFO": [
        "/b/home/prod/wals/0000000100000000/000000010000000000000005",
        "/b/home/prod/wals/00000002.history"]})
    assert output.wal_names(text) == ["000000010000000000000005", "00000002.history"]


@pytest.mark.parametrize("line", ["/b/wals/../../etc/passwd", "/b/wals/000000010000000000000005.gz",
                                  "/b/wals/000000010000000000000005/..", ""])
def test_a_path_that_is_not_a_wal_file_is_refused(line: str) -> None:
    with pytest.raises(ValueError, match="not a WAL file's path"):
        output.wal_names(json.dumps({"_INFO": [line]}))
    with pytest.raises(ValueError):
        output.wal_names(json.dumps({"_INFO": "000000010000000000000005"}))


def test_version() -> None:
    assert output.version("3.19.1 Barman by EnterpriseDB (www.enterprisedb.com)\n") == \
        "barman 3.19.1"
    with pytest.raises(ValueError):
        output.version("barman: command not found")


# what `barman verify-backup` printed (stdout + stderr) in real runs
NO_MANIFEST = ("Verifying backup '20261207T222308' on server ['prod']\nCalling pg_verifybackup\n"
               "ERROR: verify backup failure on directory '/b/home/prod/base/20261207T222308/"
               "data'\nERROR: pg_verifybackup: error: could not open file \"/b/home/prod/base/"
               "20261207T222308/data/backup_manifest\": No such file or directory")
MISSING_FILE = ("Calling pg_verifybackup\nERROR: verify backup failure on directory '/b'\n"
                "ERROR: pg_verifybackup: error: \"base/5/1259\" is present in the manifest "
                "but not on disk")


def test_verify_backup_that_cannot_run_is_told_from_a_bad_backup() -> None:
    assert "no backup_manifest" in str(_cannot_verify(NO_MANIFEST))
    assert "no pg_verifybackup" in str(_cannot_verify("ERROR: pg_verifybackup not found"))
    assert _cannot_verify(MISSING_FILE) is None
    # a backup file merely named like the manifest is still a bad backup
    assert _cannot_verify('ERROR: pg_verifybackup: error: "base/1/backup_manifest_x" is '
                          "present in the manifest but not on disk") is None
