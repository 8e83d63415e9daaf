"""The `files` provider: the dumps and base backups a team's own job already writes (the
runbook's BackupManager: `full_backup_<ts>.dump`, `physical_backup_<ts>/` holding
base.tar.gz and pg_wal.tar.gz, and `wal/`), found by the globs `dumps` and `base_backups`;
`wal` is the WAL archive directory the base backups recover through.

Each match is one backup, its file name its id. A match that is a symbolic link, or that
another user than its owner can write (group or others, or through a directory above
it), is refused: the drill restores what it holds as a superuser. The owner itself (the
backup job's user) is trusted for what the backup holds. A backup's time is the date and
time in its name (`TIMESTAMP`'s forms; a date alone: the end of that day), else its
file's modification time (its `details` say which). A dump is listed as found: whether
it reads back is its check (`verify`: pg_restore reads every block; a truncated or
corrupt dump fails there, and its restore fails the drill); a base backup's LSNs and
timeline come from its backup_manifest (else its backup_label).
"""

from __future__ import annotations

import glob
import os
import re
import stat
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from pgvdrill import config
from pgvdrill.errors import ConfigError, DrillError
from pgvdrill.physical.manifest import label_range, manifest_ranges
from pgvdrill.physical.unpack import base_archive, read_member
from pgvdrill.physical.verifybackup import backup_format, backup_major
from pgvdrill.providers import base, local

# A date, then optionally a time (HHMM or HHMMSS, with ":" or "-" between its parts or
# none, a fraction) and a zone (Z, +HH, +HHMM, +HH:MM): 20251101_020000, 20251101T020000Z,
# 2025-11-01_02-00-00, 2026-12-07T07:06:12+14:00 (`date -Iseconds`), 20251101_0200,
# 2025-11-01 (`date +%F`). Without a zone: the drill host's local time, as cron writes it.
TIMESTAMP = re.compile(r"""(?<!\d)(\d{4})(-?)(\d{2})\2(\d{2})
    (?:[_T-]?(\d{2})([:-]?)(\d{2})(?:\6(\d{2})(?:[.,]\d{1,9})?)?
       (Z|[+-]\d{2}(?::?\d{2})?)?)?(?!\d)""", re.VERBOSE)
MTIME_SKEW = timedelta(days=1)  # an mtime this much later than the name's: said


def name_time(name: str) -> datetime | None:
    """The time in a backup's file name (see TIMESTAMP), None when it has none (or an
    impossible date, time or zone). A name without seconds is read at the end of its
    minute, a date alone at the end of its day (23:59:59): the youngest reading."""
    match = TIMESTAMP.search(name)
    if match is None:
        return None
    year, _, month, day, hour, _, minute, second, zone = match.groups()
    try:
        when = datetime(int(year), int(month), int(day), int(hour or 23),
                        int(minute or 59), int(second or 59))
        return when.replace(tzinfo=_zone(zone)) if zone else when.astimezone()
    except ValueError:
        return None


def _zone(text: str) -> timezone:
    """Z, +HH, +HHMM or +HH:MM as a timezone; ValueError beyond +-23:59."""
    if text == "Z":
        return UTC
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"no time zone: {text}")
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if text[0] == "-" else offset)


def writable_by_others(path: Path) -> str | None:
    """Why someone other than `path`'s owner can change it: it, or a directory above it
    (not sticky, as /tmp), is writable by others or by a group other than root's."""
    for entry in [path, *path.parents]:
        info = os.lstat(entry)
        mode = stat.S_IMODE(info.st_mode)
        sticky = entry != path and stat.S_ISDIR(info.st_mode) and mode & stat.S_ISVTX
        if sticky:
            continue
        if mode & stat.S_IWOTH or (mode & stat.S_IWGRP and info.st_gid != 0):
            return f"{entry} (mode {mode:04o}, group {info.st_gid}) is writable by other users"
    return None


class FilesProvider(base.Provider):
    """[provider.NAME] type = "files" (docs/providers/files.md)."""

    type = "files"

    def __init__(self, conf: config.Provider,
                 installations: local.Installations = local.embedded_only) -> None:
        if not (conf.dumps or conf.base_backups):
            raise ConfigError(f"[provider.{conf.name}] (files) names no backups",
                              'set dumps = "/backup/postgres/full_backup_*.dump" and/or '
                              'base_backups = "/backup/postgres/physical_backup_*"')
        self.name = conf.name
        self.conf = conf
        self.tools = installations

    def version(self) -> str:
        return f"files (read with PostgreSQL {self.tools()[0].version}'s tools)"

    def backups(self) -> list[base.ProviderBackup]:
        found = [self._backup(Path(p), "logical") for p in _matches(self.conf.dumps)]
        found += [self._backup(Path(p), "physical") for p in _matches(self.conf.base_backups)]
        return sorted(found, key=lambda b: (b.finished or datetime.min.replace(tzinfo=UTC),
                                            b.id))

    def _backup(self, path: Path, kind: base.Kind) -> base.ProviderBackup:
        where = f"[provider.{self.name}] {'dumps' if kind == 'logical' else 'base_backups'}"
        if os.path.islink(path):
            raise ConfigError(f"refusing {where} match {path}: a symbolic link (to "
                              f"{os.readlink(path)}), never followed",
                              "point the glob at the backups themselves")
        unsafe = writable_by_others(path)
        if unsafe:
            raise ConfigError(f"refusing {where} match {path}: {unsafe}: whoever can change "
                              "it chooses what the drill restores as a superuser",
                              f"chmod go-w {path} and the directories above it")
        if kind == "physical" and not path.is_dir():
            raise ConfigError(f"{where} match {path} is not a directory",
                              "point base_backups at pg_basebackup's -D directories")
        base.check_backup_id(path.name, f"[provider.{self.name}]")
        stamp = name_time(path.name)
        mtime = datetime.fromtimestamp(os.lstat(path).st_mtime, UTC)
        details: dict[str, object] = {"finished_from": "file name" if stamp else "mtime"}
        if stamp is not None and mtime - stamp > MTIME_SKEW:
            details["mtime"] = (f"{mtime.isoformat()}, later than the name's time: a copy "
                                "or a touch; the name's time is taken")
        finished = stamp or mtime
        backup = base.ProviderBackup(path.name, kind, finished=finished, path=path,
                                size_bytes=_size(path), details=details)
        return _with_lsns(backup) if kind == "physical" else backup

    def restore(self, backup: base.ProviderBackup, into: Path) -> base.Restored:
        return restore_local(backup, into)

    def fetch_wal(self, name: str, dest: Path) -> bool:
        return local.fetch_wal(self.conf.wal, name, dest)

    def wal_names(self) -> list[str] | None:
        return local.wal_names(self.conf.wal)

    def checks(self) -> list[base.ToolCheck]:
        """Each glob matches something, the backups list, the WAL archive directory is
        there. Whether a dump reads back in full is its verification (`verify`), run on
        the backup drilled: reading it here too would read it twice."""
        found: list[base.ToolCheck] = []
        for key in ("dumps", "base_backups"):
            pattern = getattr(self.conf, key)
            if pattern:
                matched = bool(_matches(pattern))
                found.append(base.ToolCheck(f"{key} found", "pass" if matched else "fail",
                                       ("glob", pattern),
                                       "" if matched else f"{pattern} matches nothing"))
        try:
            self.backups()
        except DrillError as exc:
            return [*found, base.ToolCheck("backups listed", "fail", (), exc.message)]
        if self.conf.base_backups:
            try:
                names = local.wal_names(self.conf.wal)
            except DrillError as exc:
                return [*found, base.ToolCheck("wal archive", "fail", ("ls", str(self.conf.wal)),
                                               exc.message)]
            found.append(base.ToolCheck(
                "wal archive", "pass" if names else "unknown", ("ls", str(self.conf.wal)),
                f"{len(names or [])} WAL files" if names else "",
                None if names else "no wal directory is configured, or it holds no WAL "
                "file: base backups recover only to their end, and PITR is not possible"))
        return found

    def verify(self, backup: base.ProviderBackup) -> base.ToolCheck:
        return verify_local(self.tools, backup)


def _matches(pattern: str) -> list[str]:
    return sorted(glob.glob(pattern)) if pattern else []


def _size(path: Path) -> int:
    if not path.is_dir():
        return os.lstat(path).st_size
    return sum(os.lstat(Path(top, n)).st_size
               for top, _, names in os.walk(path, followlinks=False) for n in names)


def _with_lsns(backup: base.ProviderBackup) -> base.ProviderBackup:
    """`backup` with its start/end LSN and timeline (backup_manifest, else backup_label)
    and its PostgreSQL major; what cannot be read is left None, the reason in `details`
    (the backup's verification and restore fail on it)."""
    assert backup.path is not None
    path, details = backup.path, dict(backup.details)
    start = end = version = None
    timeline = None
    try:
        details["format"] = backup_format(path)
        version = str(backup_major(path))
        if (path / "backup_manifest").is_file():
            start, end, timeline = _manifest_range(path / "backup_manifest")
        else:
            label = ((path / "backup_label").read_bytes() if details["format"] == "plain"
                     else read_member(base_archive(path), "backup_label")) or b""
            first = label_range(label.decode(errors="replace"), "")
            start, timeline = first.start, first.timeline
    except (DrillError, OSError) as exc:
        details["problem"] = exc.message if isinstance(exc, DrillError) else str(exc)
    return base.ProviderBackup(backup.id, "physical", finished=backup.finished, start_lsn=start,
                          end_lsn=end, timeline=timeline, size_bytes=backup.size_bytes,
                          source_version=version, path=path, details=details)


def _manifest_range(manifest: Path) -> tuple[str, str, int]:
    """The start LSN, end LSN and timeline of the WAL a base backup needs, from its
    backup_manifest (untrusted: manifest_ranges checks it, BackupError naming it)."""
    ranges = manifest_ranges(manifest)
    return ranges[-1].start, ranges[0].end, ranges[-1].timeline


def restore_local(backup: base.ProviderBackup, into: Path) -> base.Restored:
    """A backup on local disk restored into `into`: a dump copied below it (the drill
    reads its own copy: the team's job may rotate the file meanwhile, and its mode need
    not admit the scratch server's user), a base backup as a data directory (`into`)."""
    assert backup.path is not None
    started = time.monotonic()
    if backup.kind == "logical":
        target = into / backup.path.name
        local.copy_tree(backup.path, target)
        return base.Restored(target, time.monotonic() - started, ("cp", str(backup.path)))
    local.restore_base_backup(backup.path, into)
    return base.Restored(into, time.monotonic() - started, ("extract", str(backup.path)))


def verify_local(tools: local.Installations, backup: base.ProviderBackup) -> base.ToolCheck:
    """A local backup read by PostgreSQL's tools: a dump in full (pg_restore), a base
    backup against its manifest (pg_verifybackup of its major)."""
    assert backup.path is not None
    if backup.kind == "logical":
        return local.check_dump(tools, backup.path)
    return local.check_base_backup(tools, backup.path)
