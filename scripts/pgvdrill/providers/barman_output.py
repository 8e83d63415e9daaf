"""What Barman 3 prints with `-f json`, read as untrusted input: every field is checked for
its type and form before pgvdrill uses it; anything else is a `ValueError` saying what
(the provider turns it into an error naming the command)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from pgvdrill.physical.manifest import MAX_TIMELINE
from pgvdrill.providers.base import ProviderBackup, check_backup_id
from pgvdrill.wal.names import is_archive_name, parse_lsn

VERSION = re.compile(r"(\d{1,4}\.\d{1,4}(?:\.\d{1,4})?(?:[a-z]+\d{0,4})?)\s+Barman\b")
CHECK_NAME = re.compile(r"[a-z0-9_]{1,100}")
MAX_TEXT = 500  # a hint or detail kept for the report
# Barman's show-backup fields kept in the report (besides those ProviderBackup has)
DETAILS = ("backup_type", "system_id", "begin_wal", "end_wal", "backup_method",
           "data_checksums", "backup_size_with_wals_bytes", "wal_num")


def version(text: str) -> str:
    """`barman --version` ("3.19.1 Barman by EnterpriseDB ...") as "barman 3.19.1"."""
    match = VERSION.match(text.strip())
    if match is None:
        raise ValueError(f"not Barman's version line: {text.strip()[:80]!r}")
    return f"barman {match.group(1)}"


def _load(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON ({str(exc)[:120]})") from None


def _server(text: str, server: str) -> Any:
    """The part of `-f json` output under the server's name."""
    found = _load(text)
    if not isinstance(found, dict) or server not in found:
        raise ValueError(f"no object for server {server!r}")
    return found[server]


def _text(value: object) -> str:
    """A string field for the report: printable, at most MAX_TEXT characters."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return ""
    return "".join(ch if ch.isprintable() else "?" for ch in str(value))[:MAX_TEXT]


def done_ids(text: str, server: str) -> list[str]:
    """`list-backups`: the ids of the DONE backups, in Barman's order (newest first)."""
    listed = _server(text, server)
    if not isinstance(listed, list):
        raise ValueError("the backup list is not a list")
    ids = []
    for entry in listed:
        if not isinstance(entry, dict) or not isinstance(entry.get("backup_id"), str):
            raise ValueError("a backup without a backup_id string")
        if entry.get("status") == "DONE":
            ids.append(check_backup_id(entry["backup_id"], "barman"))
    return ids


def _int(info: Mapping[str, Any], key: str, low: int = 0, high: int = 2**63) -> int | None:
    """info[key] as an int in [low, high] (Barman writes some as strings); None if absent."""
    value = info.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{key} is not a number: {_text(value)[:40]!r}")
    if isinstance(value, str) and not re.fullmatch(r"\d{1,19}", value):
        raise ValueError(f"{key} is not a number: {value[:40]!r}")
    number = int(value)
    if not low <= number <= high:
        raise ValueError(f"{key} {number} is out of range")
    return number


def _time(info: Mapping[str, Any], key: str) -> datetime | None:
    """A `*_timestamp` field (seconds since the epoch) as an aware UTC datetime."""
    seconds = _int(info, key, high=253402300799)  # up to 9999-12-31
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _lsn(info: Mapping[str, Any], key: str) -> str | None:
    value = info.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} is not an LSN")
    parse_lsn(value)  # ValueError unless one
    return value.strip().upper()


def _server_version(number: int | None) -> str | None:
    """PostgreSQL's server_version_num (180006) as "18.6"."""
    if number is None:
        return None
    return f"{number // 10000}.{number % 10000}"


def backup(text: str, server: str, backup_id: str) -> ProviderBackup:
    """`show-backup SERVER ID`: the backup, which must be `backup_id` and DONE."""
    shown = _server(text, server)
    if not isinstance(shown, dict) or shown.get("backup_id") != backup_id:
        raise ValueError(f"not backup {backup_id}")
    if shown.get("status") != "DONE":
        raise ValueError(f"backup {backup_id} is {_text(shown.get('status'))[:20]}, not DONE")
    base = shown.get("base_backup_information")
    if not isinstance(base, dict):
        raise ValueError("no base_backup_information object")
    details = {key: _text(value) for key, value in
               {**base, **shown, **(shown.get("server_information") or {})}.items()
               if key in DETAILS and value is not None}
    return ProviderBackup(
        id=backup_id, kind="physical",
        started=_time(base, "begin_time_timestamp"), finished=_time(base, "end_time_timestamp"),
        start_lsn=_lsn(base, "begin_lsn"), end_lsn=_lsn(base, "end_lsn"),
        timeline=_int(base, "timeline", 1, MAX_TIMELINE),
        size_bytes=_int(base, "backup_size_bytes"),
        source_version=_server_version(_int(shown, "postgresql_version", 90000, 999999)),
        details=details)


def tablespaces(text: str, server: str, backup_id: str) -> list[str] | None:
    """`show-backup SERVER ID`: the names of the backup's tablespaces ([] for none); None
    when Barman does not say (no `tablespaces` list)."""
    shown = _server(text, server)
    if not isinstance(shown, dict) or shown.get("backup_id") != backup_id:
        raise ValueError(f"not backup {backup_id}")
    listed = shown.get("tablespaces")
    if not isinstance(listed, list):
        return None
    return [_text(item.get("name") if isinstance(item, dict) else item)[:64] or "?"
            for item in listed]

def checks(text: str, server: str) -> list[tuple[str, bool, str]]:
    """`check SERVER`: (check name, OK?, hint) per check, in Barman's order."""
    found = _server(text, server)
    if not isinstance(found, dict) or not found:
        raise ValueError("no checks")
    results = []
    for name, result in found.items():
        if not CHECK_NAME.fullmatch(name) or not isinstance(result, dict):
            raise ValueError(f"a check {_text(name)[:60]!r} that is not one")
        status = result.get("status")
        if status not in ("OK", "FAILED"):
            raise ValueError(f"check {name}: status {_text(status)[:20]!r}")
        results.append((name, status == "OK", _text(result.get("hint"))))
    return results


def messages(text: str) -> list[str]:
    """The `_INFO` lines of a command's `-f json` output (list-files, verify-backup)."""
    found = _load(text)
    lines = found.get("_INFO", []) if isinstance(found, dict) else None
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise ValueError("no _INFO list of strings")
    return lines


def wal_names(text: str) -> list[str]:
    """`list-files --target wal`: the WAL file names, from the paths Barman prints."""
    names = []
    for line in messages(text):
        name = PurePosixPath(line).name
        if not is_archive_name(name):
            raise ValueError(f"{_text(line)[:120]!r} is not a WAL file's path")
        names.append(name)
    return names

