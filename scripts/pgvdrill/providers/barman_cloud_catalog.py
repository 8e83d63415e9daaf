"""What barman-cloud prints, read as untrusted input: `barman-cloud-backup-list --format
json` (its backups) and the output of CATALOG_SCRIPT, a few lines run by the tool's own
Python (barman's CloudBackupCatalog) for what no barman-cloud command prints: the names
in its WAL archive, and whether a backup's files and the WAL it needs are in the bucket.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, TypeGuard

from pgvdrill.errors import BackupError
from pgvdrill.physical.manifest import MAX_TIMELINE
from pgvdrill.providers.base import ProviderBackup, check_backup_id
from pgvdrill.wal.names import SEGMENT_RE, is_archive_name

TOOL = "barman-cloud"
LSN = re.compile(r"[0-9A-F]{1,8}/[0-9A-F]{1,8}")
# the catalog fields kept for the report, when they are short plain text
DETAILS = ("backup_name", "systemid", "begin_wal", "end_wal", "compression", "encryption",
           "data_checksums", "status")

# Run as `python -c CATALOG_SCRIPT MODE [BACKUP_ID] -- <barman-cloud options> URL SERVER`
# with the python of barman-cloud's own scripts. MODE "wals": prints the JSON list of the
# WAL names in the archive (get_wal_paths: what barman-cloud-check-wal-archive reads).
# MODE "verify": prints JSON {"missing_files": [...], "missing_wals": [...]}: the backup's
# tar files (get_backup_files, as barman-cloud-restore finds them) and the segments from
# its begin_wal to its end_wal (barman's own generate_segment_names) absent from the bucket.
CATALOG_SCRIPT = r"""
import json, sys
from barman.clients.cloud_cli import create_argument_parser
from barman.cloud import CloudBackupCatalog
from barman.cloud_providers import get_cloud_interface
from barman.xlog import generate_segment_names
mode, rest = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
config = create_argument_parser(description="pgvdrill")[0].parse_args(rest)
interface = get_cloud_interface(config)
catalog = CloudBackupCatalog(interface, config.server_name)
wals = catalog.get_wal_paths()
if mode == "wals":
    print(json.dumps(sorted(wals)))
else:
    info = catalog.get_backup_info(sys.argv[2])
    if info is None:
        print(json.dumps({"missing_files": ["backup.info"], "missing_wals": []}))
        sys.exit(0)
    files = catalog.get_backup_files(info, allow_missing=True)
    missing = [f.base for f in files.values() if f.path is None]
    needed = generate_segment_names(info.begin_wal, info.end_wal, info.version,
                                    info.xlog_segment_size)
    print(json.dumps({"missing_files": missing,
                      "missing_wals": [w for w in needed if w not in wals]}))
"""


def _bad(what: str, value: object) -> BackupError:
    return BackupError(f"{TOOL} reported {what} {str(value)[:80]!r}, which pgvdrill cannot "
                       "use", "check the bucket's backup.info files with "
                       "barman-cloud-backup-show; pgvdrill drills only well-formed entries")


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deep for Python
        raise _bad(f"{what} that is not JSON:", text.strip()[:80]) from None


def _lsn(entry: dict[str, Any], key: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not LSN.fullmatch(value):
        raise _bad(f"a {key} of", value)
    return value


def _int(entry: dict[str, Any], key: str, least: int, most: int = 2**63 - 1) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if type(value) is not int or not least <= value <= most:
        raise _bad(f"a {key} of", value)
    return value


def _time(entry: dict[str, Any], key: str) -> datetime | None:
    value = entry.get(key)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise _bad(f"a {key} of", value)
    return parsed


def server_version(number: int | None) -> str | None:
    """PostgreSQL's server_version_num as "18.6" (10 and later) or "9.6.24"."""
    if number is None:
        return None
    if number >= 100000:
        return f"{number // 10000}.{number % 10000}"
    return f"{number // 10000}.{number // 100 % 100}.{number % 100}"


def _backup(entry: object) -> ProviderBackup | None:
    """One backups_list entry; None unless its status is DONE."""
    if not isinstance(entry, dict):
        raise _bad("a backup entry", entry)
    if entry.get("status") != "DONE":
        return None
    backup_id = entry.get("backup_id")
    if not isinstance(backup_id, str):
        raise _bad("a backup_id of", backup_id)
    check_backup_id(backup_id, TOOL)
    for key in ("begin_wal", "end_wal"):
        value = entry.get(key)
        if not isinstance(value, str) or not SEGMENT_RE.fullmatch(value):
            raise _bad(f"backup {backup_id}: a {key} of", value)
    size = _int(entry, "size", 0)
    details: dict[str, object] = {key: entry[key] for key in DETAILS
                                  if isinstance(entry.get(key), str) and len(entry[key]) <= 200}
    tablespaces = entry.get("tablespaces")
    if tablespaces:  # restore() refuses them
        details["tablespaces"] = len(tablespaces) if isinstance(tablespaces, list) else -1
    return ProviderBackup(
        id=backup_id, kind="physical",
        started=_time(entry, "begin_time_iso"), finished=_time(entry, "end_time_iso"),
        start_lsn=_lsn(entry, "begin_xlog"), end_lsn=_lsn(entry, "end_xlog"),
        timeline=_int(entry, "timeline", 1, MAX_TIMELINE),  # PostgreSQL's: 32 bits
        size_bytes=size if size is not None else _int(entry, "cluster_size", 0),
        source_version=server_version(_int(entry, "version", 90000, 999999)),
        details=details)


def parse_backups(text: str) -> list[ProviderBackup]:
    """The DONE backups of `barman-cloud-backup-list --format json`, oldest first."""
    listed = _json(text, "a backup list")
    entries = listed.get("backups_list") if isinstance(listed, dict) else None
    if not isinstance(entries, list):
        raise _bad("a backup list without backups_list:", text.strip()[:80])
    done = [b for b in map(_backup, entries) if b is not None]
    ids = [b.id for b in done]
    if len(set(ids)) != len(ids):
        raise _bad("a backup id twice among", ids)
    return sorted(done, key=_when)


def _when(backup: ProviderBackup) -> tuple[float, str]:
    at = backup.finished or backup.started
    return (float("-inf") if at is None else at.timestamp(), backup.id)


def parse_wal_names(text: str) -> list[str]:
    """CATALOG_SCRIPT's "wals": archive names only."""
    names = _json(text, "a WAL list")
    if not isinstance(names, list):
        raise _bad("a WAL list", text.strip()[:80])
    for name in names:
        if not isinstance(name, str) or not is_archive_name(name):
            raise _bad("a WAL name", name)
    return list(names)


def parse_missing(text: str) -> tuple[list[str], list[str]]:
    """CATALOG_SCRIPT's "verify": (files missing from the backup, WAL segments missing)."""
    found = _json(text, "a verification")
    if not isinstance(found, dict):
        raise _bad("a verification", text.strip()[:80])
    files, wals = found.get("missing_files"), found.get("missing_wals")
    if not (_strings(files) and _strings(wals)):
        raise _bad("a verification", text.strip()[:80])
    return [f[:200] for f in files], [w[:40] for w in wals]


def _strings(value: object) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
