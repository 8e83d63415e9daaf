"""What pgBackRest prints, read as untrusted: `info --output=json`, `repo-ls` of its
archive and `verify` (the texts are pgBackRest 2.45's own, captured from a real stanza,
then made hostile)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pgvdrill import config
from pgvdrill.errors import BackupError, ConfigError
from pgvdrill.providers import pgbackrest_parse as parse
from pgvdrill.providers.pgbackrest import PgBackRest

LABEL = "20261207-222038F"
INFO: list[dict[str, Any]] = [{
    "archive": [{"database": {"id": 1, "repo-key": 1}, "id": "15-1",
                 "max": "000000010000000000000005", "min": "000000010000000000000002"}],
    "backup": [{
        "archive": {"start": "000000010000000000000004", "stop": "000000010000000000000004"},
        "backrest": {"format": 5, "version": "2.45"},
        "database": {"id": 1, "repo-key": 1}, "error": False,
        "info": {"delta": 34024357, "repository": {"delta": 6286734, "size": 6286734},
                 "size": 34024357},
        "label": LABEL, "lsn": {"start": "0/4000028", "stop": "0/4000100"},
        "prior": None, "reference": None,
        "timestamp": {"start": 1796682038, "stop": 1796682046}, "type": "full"}],
    "cipher": "none",
    "db": [{"id": 1, "repo-key": 1, "system-id": 7716690551702865499, "version": "15"}],
    "name": "main",
    "repo": [{"cipher": "none", "key": 1, "status": {"code": 0, "message": "ok"}}],
    "status": {"code": 0, "lock": {"backup": {"held": False}}, "message": "ok"}}]


def info(change: Any = None) -> str:
    """INFO as pgBackRest prints it, after `change(the stanza, its one backup)`."""
    data = copy.deepcopy(INFO)
    if change is not None:
        change(data[0], data[0]["backup"][0])
    return json.dumps(data)


def test_a_real_listing_reads_as_it_is() -> None:
    (backup,) = parse.backups(info(), "main")
    assert backup.id == LABEL and backup.kind == "physical"
    assert backup.started == datetime(2026, 12, 7, 22, 20, 38, tzinfo=UTC)
    assert backup.finished == datetime(2026, 12, 7, 22, 20, 46, tzinfo=UTC)
    assert (backup.start_lsn, backup.end_lsn, backup.timeline) == ("0/4000028", "0/4000100", 1)
    assert (backup.size_bytes, backup.source_version) == (34024357, "15")
    assert backup.details["archive_start"] == "000000010000000000000004"
    assert backup.details["archive_id"] == "15-1"
    assert backup.details["page_checksum_error"] is False


def test_backups_come_oldest_first_and_all_types_count() -> None:
    def two(stanza: dict[str, Any], backup: dict[str, Any]) -> None:
        newer = copy.deepcopy(backup)
        newer.update(label=f"{LABEL}_20261208-010000I", type="incr", prior=LABEL,
                     timestamp={"start": 1796700000, "stop": 1796700010})
        stanza["backup"] = [newer, backup]
    listed = parse.backups(info(two), "main")
    assert [b.id for b in listed] == [LABEL, f"{LABEL}_20261208-010000I"]
    assert listed[1].details["prior"] == LABEL


def test_a_stanza_without_backups_lists_none() -> None:
    def empty(stanza: dict[str, Any], _: dict[str, Any]) -> None:
        stanza["backup"] = []
        stanza["status"] = {"code": 2, "message": "no valid backups"}
    assert parse.backups(info(empty), "main") == []


def _set(path: str, value: Any) -> Any:
    """A change setting backup[path] (dotted) to `value`."""
    def change(_: dict[str, Any], backup: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = backup
        for key in parents:
            target = target[key]
        target[last] = value
    return change


@pytest.mark.parametrize(("change", "said"), [
    (_set("lsn.start", "0/4000028; rm -rf /"), "start LSN"),
    (_set("lsn.stop", 7), "stop LSN"),
    (_set("timestamp.start", "yesterday"), "start time"),
    (_set("timestamp.stop", True), "stop time"),
    (_set("timestamp.stop", 10**15), "stop time"),
    (_set("timestamp.stop", 1796682000), "ending before it started"),
    (_set("archive.start", "../../../etc/passwd"), "archive start"),
    (_set("archive.stop", None), "archive stop"),
    (_set("info.size", "34 MB"), "size"),
    (_set("info.size", -1), "negative size"),
    (_set("type", "snapshot"), "unknown type"),
    (_set("database.id", 9), "db list lacks"),
    (_set("timestamp", []), "timestamp"),
    (lambda stanza, _: stanza["db"][0].update(version="15; DROP"), "db version"),
    (lambda stanza, _: stanza.update(backup={"a": 1}), "backup list"),
    (lambda stanza, _: stanza.update(name="other"), "0 entries"),
    (lambda stanza, _: stanza.pop("status"), "stanza status"),
])
def test_a_hostile_listing_is_refused_naming_the_field(change: Any, said: str) -> None:
    with pytest.raises(BackupError, match=said) as caught:
        parse.backups(info(change), "main")
    assert "pgbackrest" in caught.value.hint


@pytest.mark.parametrize("label", ["../../etc", "--set=x", "", "a b", "x" * 200, "é"])
def test_a_label_that_is_not_a_plain_token_is_refused(label: str) -> None:
    with pytest.raises(ConfigError, match="not a plain"):
        parse.backups(info(_set("label", label)), "main")


@pytest.mark.parametrize("text", ["", "not json", "{}", "[1, 2]", "[" * 100000 + "]" * 100000,
                                  json.dumps(INFO * 2)])
def test_output_that_is_no_listing_is_refused(text: str) -> None:
    with pytest.raises(BackupError):
        parse.backups(text, "main")


def test_an_unusable_stanza_says_what_pgbackrest_said() -> None:
    def missing(stanza: dict[str, Any], _: dict[str, Any]) -> None:
        stanza["status"] = {"code": 1, "message": "missing stanza path"}
    with pytest.raises(BackupError, match="missing stanza path") as caught:
        parse.backups(info(missing), "main")
    assert "check" in caught.value.hint


def test_archive_ids_are_the_current_databases() -> None:
    def upgraded(stanza: dict[str, Any], _: dict[str, Any]) -> None:
        stanza["db"].append({"id": 2, "repo-key": 1, "system-id": 1, "version": "16"})
        stanza["archive"].append({"database": {"id": 2, "repo-key": 1}, "id": "16-2"})
    assert parse.archive_ids(info(upgraded), "main") == ["16-2"]
    with pytest.raises(BackupError, match="archive id"):
        parse.archive_ids(info(lambda s, _: s["archive"][0].update(id="../../x")), "main")


SHA = "94a9c4e296858105ccd92c8f8eca6d1ecf62535b"


def test_wal_names_are_only_files_where_archive_get_finds_them() -> None:
    listing = {
        ".": {"type": "path"}, "0000000100000000": {"type": "path"},
        f"0000000100000000/000000010000000000000002-{SHA}.gz": {"type": "file"},
        f"0000000100000000/000000010000000000000003-{SHA}": {"type": "file"},
        f"0000000100000000/000000010000000000000004.partial-{SHA}.zst": {"type": "file"},
        "0000000100000000/000000010000000000000004.00000028.backup": {"type": "file"},
        "00000002.history": {"type": "file"},
        "archive.info": {"type": "file"},
        # not where archive-get looks, not a file, not a name
        f"0000000100000001/000000010000000000000009-{SHA}.gz": {"type": "file"},
        f"000000010000000000000008-{SHA}.gz": {"type": "file"},
        f"0000000100000000/00000001000000000000000A-{SHA}.gz": {"type": "link"},
        f"0000000100000000/../00000001000000000000000B-{SHA}.gz": {"type": "file"},
        f"0000000100000000/00000001000000000000000c-{SHA}.gz": {"type": "file"},
        "0000000100000000/00000001000000000000000D": "file",
        "0000000100000000/00000003.history": {"type": "file"},
    }
    assert parse.wal_names(json.dumps(listing), "main") == [
        "000000010000000000000002", "000000010000000000000003",
        "000000010000000000000004.00000028.backup", "000000010000000000000004.partial",
        "00000002.history"]
    for text in ("[]", "nope"):
        with pytest.raises(BackupError, match="repo-ls"):
            parse.wal_names(text, "main")


SUMMARY = f"""stanza: main
status: {{status}}
  archiveId: 15-1, total WAL checked: 6, total valid WAL: 6
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
  backup: {LABEL}, status: {{backup}}, total files checked: 1298, total valid files: 1297
    missing: 1, checksum invalid: 0, size invalid: 0, other: 0
"""
RANGES = """INFO: verify command begin 2.45: --stanza=main
DETAIL: archiveId: 15-1, wal start: 000000010000000000000002, wal stop: 000000010000000000000002
DETAIL: archiveId: 15-1, wal start: 000000010000000000000004, wal stop: 000000010000000000000005
DETAIL: archiveId: 15-1, wal start: 000000010000000000000007, wal stop: 000000010000000000000009
"""
START = "000000010000000000000004"


def test_verify_of_a_good_repository() -> None:
    ok = parse.verified(SUMMARY.format(status="ok", backup="valid"),
                        RANGES.splitlines()[0], LABEL, "15-1", START)
    assert (ok.status, ok.backup_status, ok.problems) == ("ok", "valid", [])


def test_verify_names_a_missing_backup_file() -> None:
    log = f"P01   INFO: file missing '{LABEL}/pg_data/global/pg_control.gz'\n"
    seen = parse.verified(SUMMARY.format(status="error", backup="invalid"), log, LABEL,
                          "15-1", START)
    assert (seen.status, seen.backup_status) == ("error", "invalid")
    assert seen.problems == [f"file missing '{LABEL}/pg_data/global/pg_control.gz'"]


def test_verify_ranges_with_a_gap_after_the_backup_are_a_problem() -> None:
    # pgBackRest 2.45 says "status: ok" here: a gap between ranges is no error to it
    seen = parse.verified(SUMMARY.format(status="ok", backup="valid"), RANGES, LABEL, "15-1",
                          START)
    assert len(seen.problems) == 1
    assert "after 000000010000000000000005 up to 000000010000000000000007" in seen.problems[0]
    # a gap before the backup's start does not matter to it; other archive ids neither
    later = "000000010000000000000007"
    assert parse.verified("status: ok", RANGES, LABEL, "15-1", later).problems == []
    assert parse.verified("status: ok", RANGES, LABEL, "16-2", START).problems == []


def test_verify_without_the_wal_the_backup_starts_in() -> None:
    seen = parse.verified("status: ok", RANGES, LABEL, "15-1", "000000010000000000000003")
    assert "000000010000000000000003, where backup" in seen.problems[0]


def test_verify_that_printed_nothing_readable_is_not_a_verdict() -> None:
    seen = parse.verified("garbage\nstatus: \n", "", LABEL, "15-1", START)
    assert seen.status is None and seen.backup_status is None


@pytest.mark.parametrize("env", ["PGBACKREST_CONFIG_INCLUDE_PATH", "PGBACKREST_CONFIG_PATH",
                                 None])
def test_an_included_configuration_others_can_write_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str | None) -> None:
    """pgBackRest reads every *.conf of its config-include-path (cmd-ssh, repo paths: what
    it runs and restores) unless a --config is named and neither variable is set."""
    base = tmp_path / "etc"
    (base / "conf.d").mkdir(parents=True)
    conf = base / "pgbackrest.conf"
    conf.write_text("[global]\n")
    loose = base / "conf.d" / "repo.conf"
    loose.write_text("[global]\ncmd-ssh=/tmp/x\n")
    loose.chmod(0o666)
    (base / "conf.d" / "notes.txt").write_text("not read\n")
    if env is not None:
        monkeypatch.setenv(env, str(base / "conf.d" if env.endswith("INCLUDE_PATH") else base))
    provider = config.Provider(name="p", type="pgbackrest", stanza="main", config=conf)
    if env is None:
        PgBackRest(provider)  # pgBackRest reads no include path: nothing to refuse
        monkeypatch.setenv("PGBACKREST_CONFIG_PATH", str(base))
        provider = config.Provider(name="p", type="pgbackrest", stanza="main")
    with pytest.raises(ConfigError, match=r"included configuration .*repo\.conf"):
        PgBackRest(provider)
    loose.chmod(0o644)
    PgBackRest(provider)
    (base / "conf.d").chmod(0o777)
    with pytest.raises(ConfigError, match="config-include-path"):
        PgBackRest(provider)


def test_health_of_a_good_stanza_is_read_from_info_alone() -> None:
    assert parse.health(info(), "main") == [("stanza status", None),
                                            ("repository status", None), ("archive", None)]


def _problems(change: Any) -> dict[str, str | None]:
    return dict(parse.health(info(change), "main"))


def test_health_names_a_bad_stanza_repository_or_archive() -> None:
    def unreachable(stanza: dict[str, Any], _: dict[str, Any]) -> None:
        stanza["repo"][0]["status"] = {"code": 99, "message": "[PathOpenError] denied"}
        stanza["status"] = {"code": 99, "message": "other"}
    found = _problems(unreachable)
    assert found["stanza status"] == "code 99: other"
    assert found["repository status"] == "repo1: code 99: [PathOpenError] denied"

    def short(stanza: dict[str, Any], _: dict[str, Any]) -> None:
        stanza["archive"][0]["max"] = "000000010000000000000003"
    assert "before 000000010000000000000004, where the newest backup" in str(
        _problems(short)["archive"])

    def none(stanza: dict[str, Any], _: dict[str, Any]) -> None:
        stanza["archive"] = [{"database": {"id": 1, "repo-key": 1}, "id": "15-1",
                              "max": None, "min": None}]
        stanza["backup"] = []
        stanza["status"] = {"code": 2, "message": "no valid backups"}
    found = _problems(none)
    assert found["stanza status"] == "code 2: no valid backups"
    assert found["archive"] == "the archive holds no WAL of the stanza's current database"


def test_health_of_hostile_info_is_a_backup_error() -> None:
    def hostile(stanza: dict[str, Any], _: dict[str, Any]) -> None:
        stanza["archive"][0]["max"] = "../../x"
    with pytest.raises(BackupError, match="archive max"):
        parse.health(info(hostile), "main")
    with pytest.raises(BackupError):
        parse.health("[" * 100_000, "main")
