"""A catalog backup's files as the libraries know them: a logical backup's dump and
globals.sql, a physical one as a BaseBackup, and how far the repository's archived WAL
carries recovery from it."""

from __future__ import annotations

import os
from pathlib import Path

from pgvdrill.errors import BackupError
from pgvdrill.logical.globals import GLOBALS_FILE
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS, BaseBackup
from pgvdrill.physical.manifest import manifest_ranges
from pgvdrill.physical.verifybackup import backup_format
from pgvdrill.repository import Entry, Repository
from pgvdrill.repository.catalog import link_problems
from pgvdrill.repository.paths import inside
from pgvdrill.wal.continuity import Continuity, check_continuity, up_to_foreign
from pgvdrill.wal.names import SEGMENT_RE, parse_lsn


def artifact_path(repo: Repository, entry: Entry) -> Path:
    """A logical backup's dump: the entry's `artifact`, else the directory's only item."""
    directory = repo.backup_dir(entry.kind, entry.id)
    name = entry.extra.get("artifact")  # a top-level file of the entry (schema.py)
    if isinstance(name, str):
        return inside(directory, name)
    items = sorted(os.listdir(directory))
    if len(items) != 1:
        raise BackupError(f"{entry.id}: {directory} holds {len(items)} items, not one dump",
                          "the backup directory was changed after the backup")
    return inside(directory, items[0])


def globals_path(repo: Repository, entry: Entry) -> Path | None:
    """A logical backup's globals.sql, when its catalog entry lists one."""
    return inside(repo.backup_dir(entry.kind, entry.id), GLOBALS_FILE) \
        if entry.kind == "logical" and any(f.path == GLOBALS_FILE for f in entry.files) \
        else None


def base_backup_of(repo: Repository, entry: Entry) -> BaseBackup:
    """The catalog's base backup as the physical library knows it; BackupError before any
    file is read when its directory holds a symlink (never followed)."""
    links = link_problems(repo, entry)
    if links:
        raise BackupError("\n".join(links), "do not restore from it: choose another backup "
                          "(pgvdrill verify --all), and find out who removed it or made the "
                          "links")
    path = repo.backup_dir("physical", entry.id)
    setting = BASE_BACKUP_SETTINGS["plain" if backup_format(path) == "plain" else "tar-stream"]
    return BaseBackup(setting, path, entry.seconds, manifest_ranges(path / "backup_manifest"))


def has_wal(repo: Repository) -> bool:
    """Whether the repository's wal/ holds any WAL segment (archiving into it is on)."""
    return repo.wal.is_dir() and any(SEGMENT_RE.fullmatch(p.name) for p in repo.wal.iterdir())


def wal_reach(repo: Repository, entry: Entry, timeline: int | None = None
              ) -> tuple[Continuity | None, str | None]:
    """How far the archived WAL carries recovery from base backup `entry` along `timeline`
    (default: the archive's latest), ending before a segment of another database system,
    and what stops it short, if anything: a gap, a foreign segment, or why the archive
    cannot be followed at all (then no Continuity)."""
    if entry.start_lsn is None or entry.timeline is None:
        return None, ("its catalog entry has no start LSN and timeline: the WAL archive "
                      "cannot be checked for it")
    try:
        reach = check_continuity(repo.wal, parse_lsn(entry.start_lsn), entry.timeline,
                                 timeline=timeline)
    except BackupError as exc:
        return None, exc.message
    ident = entry.source.get("system_identifier")
    if ident:
        reach = up_to_foreign(reach, repo.wal, int(ident))
    return reach, reach.gap
