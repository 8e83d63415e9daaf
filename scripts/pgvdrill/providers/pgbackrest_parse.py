"""Reading what pgBackRest prints: `info --output=json`, `repo-ls --output=json` of its
archive and `verify --output=text --verbose` (summary on stdout, DETAIL log on stderr).

All of it is untrusted: a field of the wrong type, an id that is not a plain token, an
LSN or WAL name that is not one, a stanza other than the one asked for is a BackupError
naming the field, never a traceback and never a value passed on unchecked.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pgvdrill.errors import BackupError
from pgvdrill.providers.base import BACKUP_ID, ProviderBackup, check_backup_id
from pgvdrill.wal.names import HISTORY_RE, SEGMENT_RE, parse_lsn

TOOL = "pgbackrest"
# the archive ids pgBackRest names its archive directories by: PostgreSQL version, db id
ARCHIVE_ID = re.compile(r"[0-9]{1,2}(?:\.[0-9])?-[0-9]{1,9}")
VERSION = re.compile(r"[0-9]{1,2}(?:\.[0-9]{1,2})?")
# what repo-ls shows of archive/STANZA/ID: a segment (or .partial) as NAME-SHA1[.EXT] in
# its directory NAME[:16]; backup history files and timeline history files by name
STORED_WAL = re.compile(r"([0-9A-F]{24}(?:\.partial)?)-[0-9a-f]{40}(?:\.[a-z0-9]{1,4})?")
STORED_PLAIN = re.compile(r"[0-9A-F]{24}\.[0-9A-F]{8}\.backup")
NO_BACKUP_YET = 2  # a stanza's status code: "no valid backups"
MAX_EPOCH = 253402300799  # 9999-12-31


def _fail(what: str, stanza: str) -> BackupError:
    return BackupError(f"pgbackrest info --stanza={stanza} printed {what}",
                       f"run `pgbackrest --stanza={stanza} info --output=json` yourself; "
                       "pgvdrill drills only a repository pgBackRest itself reports sanely")


def _get(obj: object, key: str, kind: type | tuple[type, ...], where: str, stanza: str
         ) -> Any:
    """obj[key] of type `kind` (bool is never an int here), or BackupError."""
    if not isinstance(obj, dict) or key not in obj:
        raise _fail(f"no {where}", stanza)
    value = obj[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise _fail(f"a {where} that is not a {getattr(kind, '__name__', kind)}", stanza)
    if not isinstance(value, kind):
        raise _fail(f"a {where} of the wrong type ({type(value).__name__})", stanza)
    return value


def _json(text: str, kind: type, command: str, what: str, stanza: str) -> Any:
    """`text` as JSON of type `kind` (`what`), or BackupError naming `command`."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise _fail(f"{command}output that is not JSON ({exc})", stanza) from None
    if not isinstance(data, kind):
        raise _fail(f"{command}JSON that is not {what}", stanza)
    return data


def _entry(text: str, stanza: str) -> dict[str, Any]:
    """The object of `stanza` in `info --output=json`, whatever its status."""
    data = _json(text, list, "", "a list of stanzas", stanza)
    found = [s for s in data if isinstance(s, dict) and s.get("name") == stanza]
    if len(found) != 1:
        raise _fail(f"{len(found)} entries for stanza {stanza!r}", stanza)
    entry: dict[str, Any] = found[0]
    return entry


def _status(obj: object, where: str, stanza: str) -> tuple[int, str]:
    """The (code, message) of `obj`'s "status" object (a stanza's, a repository's)."""
    status = _get(obj, "status", dict, f"{where} status", stanza)
    code = _get(status, "code", int, f"{where} status code", stanza)
    message = status.get("message")
    return code, message[:200] if isinstance(message, str) else "(no message)"


def stanza_entry(text: str, stanza: str) -> dict[str, Any]:
    """The object of `stanza` in `info --output=json`; BackupError when it is not there,
    not readable, or its status is neither ok nor "no valid backups"."""
    entry = _entry(text, stanza)
    code, said = _status(entry, "stanza", stanza)
    if code not in (0, NO_BACKUP_YET):
        raise BackupError(f"pgBackRest says stanza {stanza!r} is not usable: code {code}, "
                          f"{said!r}", f"run `pgbackrest --stanza={stanza} check` and fix "
                          "what it reports (stanza-create, archive_command, the repository)")
    return entry


def health(text: str, stanza: str) -> list[tuple[str, str | None]]:
    """What `info --output=json` says of the stanza's health, read-only (pgBackRest's own
    `check` switches the source's WAL and archives a segment: pgvdrill never runs it):
    (what was checked, None when good else the problem) for the stanza's status, each
    repository's status (reachable and sane) and the archive of its current database
    (it holds WAL, and up to the newest backup's stop segment)."""
    entry = _entry(text, stanza)
    code, said = _status(entry, "stanza", stanza)
    found: list[tuple[str, str | None]] = [
        ("stanza status", None if code == 0 else f"code {code}: {said}")]
    repos = _get(entry, "repo", list, "repository list", stanza)
    bad = []
    for repo in repos:
        key = _get(repo, "key", int, "repository key", stanza)
        repo_code, repo_said = _status(repo, f"repository {key}", stanza)
        if repo_code != 0:
            bad.append(f"repo{key}: code {repo_code}: {repo_said}")
    found.append(("repository status", "; ".join(bad) or (None if repos else
                                                          "pgBackRest lists no repository")))
    dbs = _versions(entry, stanza)
    current = max(dbs) if dbs else None
    ranges = []
    for item in _get(entry, "archive", list, "archive list", stanza):
        db = _get(_get(item, "database", dict, "archive database", stanza), "id", int,
                  "archive database id", stanza)
        if db == current and item.get("min") is not None:
            ranges.append((_segment(item.get("min"), "archive min", stanza),
                           _segment(item.get("max"), "archive max", stanza)))
    listed = backups(text, stanza) if code in (0, NO_BACKUP_YET) else []
    stop = str(listed[-1].details["archive_stop"]) if listed else None
    if not ranges:
        problem: str | None = "the archive holds no WAL of the stanza's current database"
    elif stop is not None and max(high for _, high in ranges) < stop:
        problem = (f"the archive ends at {max(high for _, high in ranges)}, before "
                   f"{stop}, where the newest backup ({listed[-1].id}) stops")
    else:
        problem = None
    found.append(("archive", problem))
    return found


def _time(value: object, where: str, stanza: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_EPOCH:
        raise _fail(f"a {where} that is not a time (seconds since 1970): {value!r:.40}",
                    stanza)
    return datetime.fromtimestamp(value, UTC)


def _lsn(value: object, where: str, stanza: str) -> str:
    try:
        parse_lsn(value if isinstance(value, str) else "")
    except ValueError:
        raise _fail(f"a {where} that is not an LSN: {value!r:.40}", stanza) from None
    assert isinstance(value, str)
    return value.strip()


def _segment(value: object, where: str, stanza: str) -> str:
    if not isinstance(value, str) or not SEGMENT_RE.fullmatch(value):
        raise _fail(f"a {where} that is not a WAL segment name: {value!r:.40}", stanza)
    return value


def _versions(entry: dict[str, Any], stanza: str) -> dict[int, str]:
    """db id -> PostgreSQL version, from the stanza's db list."""
    versions = {}
    for db in _get(entry, "db", list, "db list", stanza):
        version = _get(db, "version", str, "db version", stanza)
        if not VERSION.fullmatch(version):
            raise _fail(f"a db version that is not one: {version!r:.40}", stanza)
        versions[_get(db, "id", int, "db id", stanza)] = version
    return versions


def backups(text: str, stanza: str) -> list[ProviderBackup]:
    """The complete backups `info --output=json --stanza=STANZA` lists, oldest first
    (pgBackRest lists only finished ones; a running one is the stanza's lock)."""
    entry = stanza_entry(text, stanza)
    versions = _versions(entry, stanza)
    found = []
    for item in _get(entry, "backup", list, "backup list", stanza):
        label = check_backup_id(_get(item, "label", str, "backup label", stanza), TOOL)
        kind = _get(item, "type", str, f"type of {label}", stanza)
        if kind not in ("full", "diff", "incr"):
            raise _fail(f"backup {label} of an unknown type {kind!r:.20}", stanza)
        times = _get(item, "timestamp", dict, f"timestamp of {label}", stanza)
        lsn = _get(item, "lsn", dict, f"lsn of {label}", stanza)
        archive = _get(item, "archive", dict, f"archive of {label}", stanza)
        start_wal = _segment(archive.get("start"), f"archive start of {label}", stanza)
        stop_wal = _segment(archive.get("stop"), f"archive stop of {label}", stanza)
        info = _get(item, "info", dict, f"info of {label}", stanza)
        size = _get(info, "size", int, f"size of {label}", stanza)
        repository = info.get("repository")
        stored = repository.get("size") if isinstance(repository, dict) else None
        db_id = _get(_get(item, "database", dict, f"database of {label}", stanza), "id",
                     int, f"database id of {label}", stanza)
        if db_id not in versions:
            raise _fail(f"backup {label} of a database id {db_id} its db list lacks", stanza)
        error = item.get("error", False)
        started = _time(times.get("start"), f"start time of {label}", stanza)
        finished = _time(times.get("stop"), f"stop time of {label}", stanza)
        if finished < started or size < 0:
            raise _fail(f"backup {label} ending before it started, or of a negative size",
                        stanza)
        found.append(ProviderBackup(
            id=label, kind="physical", started=started, finished=finished,
            start_lsn=_lsn(lsn.get("start"), f"start LSN of {label}", stanza),
            end_lsn=_lsn(lsn.get("stop"), f"stop LSN of {label}", stanza),
            timeline=int(start_wal[:8], 16), size_bytes=size,
            source_version=versions[db_id],
            details={"type": kind, "archive_start": start_wal, "archive_stop": stop_wal,
                     "archive_id": f"{versions[db_id]}-{db_id}",
                     "repository_size": stored if isinstance(stored, int)
                     and not isinstance(stored, bool) else None,
                     "prior": _plain(item.get("prior")),
                     "page_checksum_error": error is not False}))
    return sorted(found, key=lambda b: (b.started or datetime.min.replace(tzinfo=UTC), b.id))


def _plain(value: object) -> str | None:
    return value if isinstance(value, str) and BACKUP_ID.fullmatch(value) else None


def archive_ids(text: str, stanza: str) -> list[str]:
    """The archive ids (`15-1`) of the stanza's current database, from `info`."""
    entry = stanza_entry(text, stanza)
    dbs = _versions(entry, stanza)
    current = max(dbs) if dbs else None
    ids = []
    for item in _get(entry, "archive", list, "archive list", stanza):
        archive_id = _get(item, "id", str, "archive id", stanza)
        db = _get(_get(item, "database", dict, "archive database", stanza), "id", int,
                  "archive database id", stanza)
        if not ARCHIVE_ID.fullmatch(archive_id):
            raise _fail(f"an archive id that is not one: {archive_id!r:.40}", stanza)
        if db == current:
            ids.append(archive_id)
    return ids


def wal_names(text: str, stanza: str) -> list[str]:
    """The WAL file names `repo-ls --recurse --output=json archive/STANZA/ID` lists: files
    only, each where archive-get looks for it (a segment in its NAME[:16] directory,
    history files at the top); anything else is left out."""
    data = _json(text, dict, "(repo-ls) ", "an object", stanza)
    names = set()
    for path, entry in data.items():
        if not isinstance(entry, dict) or entry.get("type") != "file":
            continue
        parts = path.split("/")
        if len(parts) == 1 and HISTORY_RE.fullmatch(parts[0]):
            names.add(parts[0])
        elif len(parts) == 2:
            directory, name = parts
            stored = STORED_WAL.fullmatch(name)
            plain = name if STORED_PLAIN.fullmatch(name) else None
            wal = stored.group(1) if stored else plain
            if wal is not None and wal[:16] == directory:
                names.add(wal)
    return sorted(names)


@dataclass
class Verified:
    """What `pgbackrest verify` said about one backup and the WAL after its start."""

    status: str | None = None  # the summary's "status:" (ok, error), None: not found
    backup_status: str | None = None  # "valid", "invalid", ...; None: not listed
    problems: list[str] = field(default_factory=list)


def verified(stdout: str, stderr: str, label: str, archive_id: str, archive_start: str
             ) -> Verified:
    """Read verify's summary (stdout) and DETAIL log (stderr) for backup `label`: its
    status, the files of it the log names missing or invalid, and the gaps between the WAL
    ranges of `archive_id` on the backup's timeline from `archive_start` on (pgBackRest
    2.45 reports those ranges but counts a gap as no error)."""
    result = Verified()
    for line in stdout.splitlines():
        if match := re.fullmatch(r"status: ([a-z]{1,20})", line.strip()):
            result.status = result.status or match.group(1)
        if (match := re.fullmatch(r"backup: ([^,\s]{1,128}), status: ([a-z ]{1,40}),.*",
                                 line.strip())) and match.group(1) == label:
            result.backup_status = match.group(2)
    ranges = []
    for line in stderr.splitlines():
        if f"'{label}/" in line and re.search(r"missing|invalid", line):
            result.problems.append(line.split(": ", 1)[-1].strip()[:300])
        match = re.search(r"archiveId: ([^,\s]+), wal start: ([0-9A-F]{24}), "
                          r"wal stop: ([0-9A-F]{24})\s*$", line)
        if match and match.group(1) == archive_id:
            ranges.append((match.group(2), match.group(3)))
    timeline = archive_start[:8]
    ranges = sorted(r for r in ranges if r[0][:8] == timeline)
    if ranges and not any(start <= archive_start <= stop for start, stop in ranges):
        result.problems.append(f"WAL segment {archive_start}, where backup {label} starts, "
                               "is not in the archive")
    for (_, stop), (start, _) in itertools.pairwise(ranges):
        if start > archive_start:
            result.problems.append(f"WAL after {stop} up to {start} (exclusive) is missing "
                                   f"from the archive: replay past {stop} is impossible")
    return result
