"""The barman-cloud provider's reading of what the tool prints (untrusted input): the real
`barman-cloud-backup-list --format json` of Barman 3.19.1 (data/), and hostile variants
of it; and the checks it makes before it runs the tool at all."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pgvdrill import config
from pgvdrill.errors import BackupError, ConfigError, DrillError, RestoreError
from pgvdrill.providers import registry
from pgvdrill.providers.barman_cloud import BarmanCloud
from pgvdrill.providers.barman_cloud_catalog import (
    parse_backups,
    parse_missing,
    parse_wal_names,
    server_version,
)
from pgvdrill.providers.base import ProviderBackup

REAL = json.loads((Path(__file__).parent / "data" / "barman_cloud_backup_list.json")
                  .read_text())


def _listing(*changes: dict[str, Any]) -> str:
    """The real listing with one entry per `changes` (the real entry, updated)."""
    (entry,) = REAL["backups_list"]
    return json.dumps({"backups_list": [{**copy.deepcopy(entry), **c} for c in changes]})


def _provider(tmp_path: Path, **options: Any) -> BarmanCloud:
    conf = config.Provider(name="cloud", type="barman-cloud", bin=tmp_path / "no-bin",
                           server="main", **{"source_url": "s3://bucket/prefix", **options})
    made = registry.make(conf)
    assert isinstance(made, BarmanCloud)
    return made


def test_the_real_listing_reads_as_the_tool_wrote_it() -> None:
    (backup,) = parse_backups(json.dumps(REAL))
    assert (backup.id, backup.kind, backup.timeline) == ("20261207T222024", "physical", 1)
    assert (backup.start_lsn, backup.end_lsn) == ("0/4000028", "0/4000120")
    assert backup.started == datetime(2026, 12, 7, 22, 20, 24, 305145, UTC)
    assert backup.finished == datetime(2026, 12, 7, 22, 20, 27, 138989, UTC)
    assert (backup.size_bytes, backup.source_version) == (42230560, "18.6")
    assert backup.details["begin_wal"] == "000000010000000000000004"
    assert "config_file" not in backup.details  # production's paths stay out of reports


def test_only_done_backups_oldest_first() -> None:
    text = _listing({"backup_id": "20261208T000000", "end_time_iso": "2026-12-08T00:00:00+00:00"},
                    {"backup_id": "20261207T000000", "end_time_iso": "2026-12-07T00:00:00+00:00"},
                    {"backup_id": "20261209T000000", "status": "FAILED", "begin_wal": None},
                    {"backup_id": "20261210T000000", "status": "STARTED", "begin_xlog": "x"})
    assert [b.id for b in parse_backups(text)] == ["20261207T000000", "20261208T000000"]


@pytest.mark.parametrize("change", [
    {"backup_id": "../../etc"}, {"backup_id": "-rf"}, {"backup_id": "a b"},
    {"backup_id": 7}, {"backup_id": None},
    {"begin_xlog": "0/4000028; rm -rf /"}, {"end_xlog": 5},
    {"begin_wal": "../000000010000000000000004"}, {"end_wal": None},
    {"timeline": True}, {"timeline": "1"}, {"timeline": 0},
    {"end_time_iso": "yesterday"}, {"begin_time_iso": "2026-12-07T23:20:24"},
    {"end_time_iso": 1765148427}, {"size": -1}, {"cluster_size": "big"},
    {"version": "18.6"}, {"version": 180006.5},
])
def test_a_hostile_entry_is_refused_naming_it(change: dict[str, Any]) -> None:
    with pytest.raises(DrillError) as raised:
        parse_backups(_listing(change))
    assert isinstance(raised.value, (BackupError, ConfigError))
    assert "barman-cloud" in str(raised.value)


@pytest.mark.parametrize("text", [
    "", "not json", "[]", '{"backups_list": {}}', '{"backups_list": ["x"]}', "null",
    '{"other": []}',
])
def test_a_listing_that_is_not_barman_clouds_is_refused(text: str) -> None:
    with pytest.raises(BackupError, match="barman-cloud reported"):
        parse_backups(text)


def test_a_backup_listed_twice_is_refused() -> None:
    with pytest.raises(BackupError, match="twice"):
        parse_backups(_listing({}, {}))


def test_server_versions() -> None:
    assert [server_version(n) for n in (180006, 160002, 150015, 90624, None)] == \
        ["18.6", "16.2", "15.15", "9.6.24", None]


def test_wal_names_are_archive_names_only() -> None:
    names = ["000000010000000000000004", "000000010000000000000004.00000028.backup",
             "00000002.history", "000000010000000000000005.partial"]
    assert parse_wal_names(json.dumps(names)) == names
    for hostile in (["../../etc/passwd"], ["000000010000000000000004/x"], [4], {"a": 1},
                    ["000000010000000000000004.gz"]):
        with pytest.raises(BackupError):
            parse_wal_names(json.dumps(hostile))


def test_missing_files_and_wal() -> None:
    assert parse_missing('{"missing_files": [], "missing_wals": ["00"]}') == ([], ["00"])
    for hostile in ('{"missing_files": null, "missing_wals": []}', "[]",
                    '{"missing_files": [1], "missing_wals": []}', "x"):
        with pytest.raises(BackupError):
            parse_missing(hostile)


def test_a_backup_with_tablespaces_is_listed_but_not_restored(tmp_path: Path) -> None:
    (backup,) = parse_backups(_listing({"tablespaces": [["tbs", 16400, "/srv/tbs"]]}))
    assert backup.details["tablespaces"] == 1
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(RestoreError, match="original locations"):
        _provider(tmp_path).restore(backup, into)
    assert list(into.iterdir()) == []


def test_only_wal_names_reach_the_tool(tmp_path: Path) -> None:
    for name in ("../x", "000000010000000000000004 --help", ""):
        with pytest.raises(ConfigError, match="not a WAL file name"):
            _provider(tmp_path).fetch_wal(name, tmp_path / "dest")


def test_source_url_must_be_object_storage(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not an object storage URL"):
        _provider(tmp_path, source_url="/local/dir")


def test_the_catalog_python_is_the_tools_own(tmp_path: Path) -> None:
    """The catalog script runs with the interpreter of barman-cloud's scripts; a script
    without a plain #! line is refused (and wal_names never guesses one)."""
    bindir = tmp_path / "no-bin"
    bindir.mkdir()
    script = bindir / "barman-cloud-wal-restore"
    for first in ("#!/bin/sh -e\n", "#!python3\n", "not a script\n"):
        script.write_text(first)
        with pytest.raises(ConfigError, match="interpreter"):
            _provider(tmp_path).wal_names()


def test_tool_failures_are_unknown_or_fail_never_pass(tmp_path: Path) -> None:
    """No barman-cloud installed: the checks fail (the bucket could not be listed) and
    the verification is unknown, with the reason."""
    provider = _provider(tmp_path)
    listed, archive = provider.checks()
    assert (listed.status, archive.status) == ("fail", "unknown")
    assert "not found" in listed.output and archive.reason
    backup = ProviderBackup(id="20261207T222024", kind="physical")
    verified = provider.verify(backup)
    assert verified.status == "unknown" and verified.reason
