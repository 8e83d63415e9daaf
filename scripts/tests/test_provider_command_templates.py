"""The command provider's own parsing and exit-code rules (providers.command): its list
output (untrusted), restore_command's %f/%p, and what an exit status means; real sh."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgvdrill import config
from pgvdrill.errors import ConfigError, ToolError
from pgvdrill.providers.command import CommandProvider, parse_list

LINE = {"id": "base_01", "kind": "physical", "finished": "2026-12-01T02:00:00+00:00",
        "start_lsn": "0/2000028", "end_lsn": "0/2000100", "timeline": 1, "size_bytes": 42}


def _provider(tmp_path: Path, **keys: str) -> CommandProvider:
    return CommandProvider(config.Provider("team", "command", **{
        "restore": "cp -a {backup_id} {datadir}", **keys}))  # type: ignore[arg-type]


def test_list_lines_become_backups_oldest_first() -> None:
    older = {**LINE, "id": "base_00", "finished": "2026-11-30T02:00:00Z"}
    text = json.dumps(LINE) + "\n\n" + json.dumps(older) + "\n"
    first, second = parse_list(text, "physical")
    assert (first.id, second.id) == ("base_00", "base_01")
    assert (second.start_lsn, second.end_lsn, second.timeline) == ("0/2000028", "0/2000100", 1)


@pytest.mark.parametrize(("bad", "said"), [
    ({**LINE, "id": "../../etc"}, "not a plain token"),
    ({**LINE, "finished": "2026-12-01 02:00:00"}, "no time zone"),
    ({**LINE, "start_lsn": "0/2000028; rm"}, "not an LSN"),
    ({**LINE, "timeline": 0}, "timeline"),
    ({**LINE, "size_bytes": True}, "size_bytes"),
    ({**LINE, "kind": "snapshot"}, "neither physical nor logical"),
    ({**LINE, "path": "/etc"}, "unknown field"),
    ([LINE], "not a JSON object"),
])
def test_a_bad_list_line_is_refused_naming_it(bad: object, said: str) -> None:
    with pytest.raises(ToolError, match="line 2") as raised:
        parse_list(json.dumps(LINE) + "\n" + json.dumps(bad) + "\n", "physical")
    assert said in raised.value.message


def test_restore_command_values_are_quoted(tmp_path: Path) -> None:
    archive = tmp_path / "arch ive"
    archive.mkdir()
    (archive / "000000010000000000000002").write_text("wal")
    provider = _provider(tmp_path, restore_command=f"cp '{archive}'/%f %p && echo 100%%")
    dest = tmp_path / "it's here"
    assert provider.fetch_wal("000000010000000000000002", dest) is True
    assert dest.read_text() == "wal"


def test_restore_command_exit_status(tmp_path: Path) -> None:
    """1-125: not in the archive (PostgreSQL's rule); above, or 0 without the file: the
    tool failed."""
    dest = tmp_path / "seg"
    assert _provider(tmp_path, restore_command="exit 1").fetch_wal("x", dest) is False
    for command in ("exit 127", "exit 0", "ln -s /etc/passwd %p"):
        with pytest.raises(ToolError):
            _provider(tmp_path, restore_command=command).fetch_wal("x", tmp_path / "s2")


def test_an_unknown_escape_or_placeholder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown escape %r"):
        _provider(tmp_path, restore_command="cp %r %p").fetch_wal("x", tmp_path / "d")
    with pytest.raises(ConfigError, match=r"unknown placeholder \{pgdata\}"):
        _provider(tmp_path, restore="cp -a /b/x {pgdata}")


def test_without_list_the_newest_is_latest_and_without_verify_unknown(tmp_path: Path) -> None:
    provider = _provider(tmp_path)
    (backup,) = provider.backups()
    assert backup.id == "latest" and backup.finished is None
    assert provider.verify(backup).status == "unknown"
    (check,) = provider.checks()
    assert check.status == "unknown"


def test_check_and_verify_results(tmp_path: Path) -> None:
    provider = _provider(tmp_path, check="echo fine", verify="echo bad {backup_id}; exit 3")
    (check,) = provider.checks()
    assert (check.status, check.output.strip()) == ("pass", "fine")
    (backup,) = provider.backups()
    verified = provider.verify(backup)
    assert (verified.status, verified.reason, verified.output.strip()) == \
        ("fail", "exit 3", "bad latest")
