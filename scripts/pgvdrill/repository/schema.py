"""The schema of a catalog entry, checked field by field before anything uses it.

A catalog entry is read from a directory others may write, so every field a command uses
(as a path, a time, an LSN, a size, a hash, an identity) is checked here, and an entry that
fails is refused as a whole with one error naming its file and the field.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard

from pgvdrill.errors import BackupError
from pgvdrill.repository.paths import parts_of

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")  # no '.', '/': a plain name
LSN_RE = re.compile(r"[0-9A-F]{1,8}/[0-9A-F]{1,8}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
FIELDS = frozenset({"schema", "id", "kind", "started", "finished", "seconds", "source",
                    "settings", "tools", "files", "start_lsn", "end_lsn", "timeline",
                    "extra", "size_bytes"})
FILE_FIELDS = frozenset({"path", "bytes", "sha256"})
# A catalog time is between these (in UTC): every later use (astimezone(UTC), adding up to
# [retention] monthly_months = 1200 months, subtracting from now) stays inside datetime's
# years 1..9999, and nothing pgvdrill wrote can be older than the Unix epoch.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
MAX_SIZE = 2**63  # bytes: a file size the kernel can report (off_t)
MAX_SECONDS = 1e9  # a backup that took 31 years was not timed


class Invalid(ValueError):
    """One field of an entry that does not fit the schema."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"field {name}: {why}")


def check_entry(data: dict[str, Any], kinds: tuple[str, ...], where: Path) -> None:
    """BackupError naming `where` and the first field of `data` that does not fit."""
    try:
        _check(data, kinds)
    except Invalid as exc:
        raise BackupError(f"catalog entry {where} is invalid: {exc}",
                          "pgvdrill uses none of it: restore the entry from an off-site copy "
                          "(pgvdrill sync keeps one), or move it out of the catalog "
                          "directory once you know who changed it") from None


def _check(data: dict[str, Any], kinds: tuple[str, ...]) -> None:
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise Invalid(unknown[0], "not a field of a catalog entry")
    _match("id", data.get("id"), ID_RE, "a plain name (letters, digits, - and _)")
    if data.get("kind") not in kinds:
        raise Invalid("kind", f"{data.get('kind')!r} is not one of {', '.join(kinds)}")
    started, finished = (_time(name, data.get(name)) for name in ("started", "finished"))
    if started > finished:
        raise Invalid("started", f"{data['started']!r} is after finished "
                      f"({data['finished']!r})")
    seconds = data.get("seconds")
    if not (_number(seconds) and math.isfinite(seconds)
            and (seconds == 0 or 0.001 <= seconds < MAX_SECONDS)):
        raise Invalid("seconds", f"{seconds!r} is not a duration (0, or 0.001 .. "
                      f"{MAX_SECONDS:.0f} seconds)")
    for name in ("source", "settings", "tools", "extra"):
        if not isinstance(data.get(name, {}), dict):
            raise Invalid(name, "not a JSON object")
    if not all(isinstance(v, str) for v in data.get("tools", {}).values()):
        raise Invalid("tools", "a tool's version is not a string")
    _source(data.get("source", {}))
    for name in ("start_lsn", "end_lsn"):
        if data.get(name) is not None:
            _match(name, data[name], LSN_RE, "an LSN like 0/A000028")
    timeline = data.get("timeline")
    if timeline is not None and not (_integer(timeline) and 0 < timeline < 2**32):
        raise Invalid("timeline", f"{timeline!r} is not a timeline (1 .. 4294967295)")
    paths = _files(data.get("files"))
    _extra(data.get("extra", {}), paths)
    if "size_bytes" in data and not _size(data["size_bytes"]):
        raise Invalid("size_bytes", f"{data['size_bytes']!r} is not a size")


def _files(files: Any) -> set[str]:
    if not isinstance(files, list):
        raise Invalid("files", "not a list")
    paths: set[str] = set()
    for index, item in enumerate(files):
        name = f"files[{index}]"
        if not isinstance(item, dict) or set(item) != FILE_FIELDS:
            raise Invalid(name, "not an object of path, bytes and sha256")
        try:
            parts_of(item["path"] if isinstance(item["path"], str) else "")
        except ValueError as exc:
            raise Invalid(f"{name}.path", str(exc)) from None
        if item["path"] in paths:
            raise Invalid(f"{name}.path", f"{item['path']!r} is listed twice")
        paths.add(item["path"])
        if not _size(item["bytes"]):
            raise Invalid(f"{name}.bytes", f"{item['bytes']!r} is not a size in bytes")
        _match(f"{name}.sha256", item["sha256"], SHA256_RE, "64 lowercase hex digits")
    return paths


def _extra(extra: dict[str, Any], paths: set[str]) -> None:
    artifact = extra.get("artifact")
    if artifact is not None and (not isinstance(artifact, str) or artifact not in paths
                                 or "/" in artifact):
        raise Invalid("extra.artifact", f"{artifact!r} is not one of the backup's top-level "
                      "files")
    size = extra.get("source_bytes")
    if size is not None and not _size(size):
        raise Invalid("extra.source_bytes", f"{size!r} is not a size in bytes")


def _source(source: dict[str, Any]) -> None:
    ident = source.get("system_identifier")
    if ident is not None and not (isinstance(ident, str) and ident.isdigit()
                                  and int(ident) < 2**64):
        raise Invalid("source.system_identifier", f"{ident!r} is not a system identifier")
    for name in ("describe", "dbname", "pgvector", "server_version"):
        if source.get(name) is not None and not isinstance(source[name], str):
            raise Invalid(f"source.{name}", "not a string")


def _time(name: str, value: Any) -> datetime:
    """The moment `value` names, in UTC, when it is an ISO 8601 time with a zone between
    EARLIEST and LATEST."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Invalid(name, f"{value!r} is not an ISO 8601 time with a zone")
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # a zone's offset pushed it past year 1 or 9999
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise Invalid(name, f"{value!r} is not a time between {EARLIEST:%Y-%m-%d} and "
                      f"{LATEST:%Y-%m-%d} (UTC)")
    return utc


def _match(name: str, value: Any, pattern: re.Pattern[str], what: str) -> None:
    if not (isinstance(value, str) and pattern.fullmatch(value)):
        raise Invalid(name, f"{value!r} is not {what}")


def _size(value: Any) -> bool:
    return _integer(value) and 0 <= value < MAX_SIZE


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
