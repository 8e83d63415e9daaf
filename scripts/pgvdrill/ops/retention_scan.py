"""Reading a repository for retention: its catalog entries, its archived WAL, and whatever
retention must leave alone (reported, never touched): backup directories without a catalog
entry (in progress, failed, or a deletion that was interrupted) and files it does not
recognise."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pgvdrill.errors import BackupError, classified
from pgvdrill.ops.retention_wal import WalArchive, WalFile, segment_size
from pgvdrill.repository import KINDS, Entry, Repository
from pgvdrill.repository.catalog import read_catalog
from pgvdrill.repository.layout import LOCK, SUBDIRS
from pgvdrill.repository.paths import UnsafePath
from pgvdrill.wal.continuity import read_history
from pgvdrill.wal.names import HISTORY_RE, is_archive_name

DELETING = ".deleting"  # suffix of a catalog entry renamed aside while its backup is deleted


@dataclass(frozen=True)
class Contents:
    entries: list[Entry]
    wal: WalArchive
    left_alone: list[str]  # "<path>: <why>"


def aside_path(repo: Repository, backup_id: str) -> Path:
    """Where a catalog entry is renamed while retention deletes its backup."""
    path = repo.entry_path(backup_id)
    return path.with_name(f".{path.name}{DELETING}")


def scan(repo: Repository) -> Contents:
    """What `repo` holds; BackupError when it cannot be read (nothing is deleted then)."""
    if not repo.root.is_dir():
        raise BackupError(f"backup repository {repo.root} does not exist or is not a directory",
                          "check [repository] path in the configuration")
    try:
        return _scan(repo)
    except OSError as exc:
        doing = f"cannot read backup repository {repo.root}"
        hint = "run as the repository's owner, or fix its permissions"
        raise classified(exc, doing, hint) or BackupError(f"{doing}: {exc}", hint) from None


def _scan(repo: Repository) -> Contents:
    gone = [str(repo.dir(name)) for name in SUBDIRS if not os.path.lexists(repo.dir(name))]
    if gone:  # an unmounted disk or a directory moved away: what it protects is unknown
        raise BackupError(f"backup repository {repo.root} lacks {', '.join(gone)}: retention "
                          "deleted nothing", "mount or move it back, then run retention "
                          f"again (if it was really empty: mkdir -m 0700 {' '.join(gone)}; "
                          "wal/ belongs to the server's OS user)")
    entries, unreadable = read_catalog(repo)
    if unreadable:  # which backups and WAL it protects cannot be told: delete nothing
        listed = "\n".join(f"  - {problem}" for problem in unreadable.values())
        raise BackupError(f"the catalog holds invalid entries; retention deleted nothing:\n"
                          f"{listed}", "restore them from an off-site copy (pgvdrill sync "
                          "keeps one) or move them out of the catalog once you know who "
                          "wrote them; pgvdrill verify names every problem")
    left = [f"{p}: not part of a pgvdrill repository" for p in _children(repo.root)
            if p.name not in (*SUBDIRS, LOCK)]
    known = {(e.kind, e.id) for e in entries}
    for kind in KINDS:
        for path in _children(repo.dir(kind)):
            if path.is_symlink():  # deleting through it would delete elsewhere
                raise UnsafePath(f"{path} in backup repository {repo.root} is a symlink (to "
                                 f"{os.readlink(path)}): retention deleted nothing",
                                 f"find out who made it; move it out of the repository (mv "
                                 f"{path} SOMEWHERE), then run retention again")
            if (kind, path.name) not in known:
                left.append(f"{path}: {_entryless(repo, path)}")
    left += [f"{p}: {_catalog_stray(p)}" for p in _children(repo.catalog)
             if not (p.suffix == ".json" and not p.name.startswith(".") and p.is_file())]
    files = []
    for path in _children(repo.wal):
        if is_archive_name(path.name) and path.is_file() and not path.is_symlink():
            stat = path.stat()
            files.append(WalFile(path.name, datetime.fromtimestamp(stat.st_mtime, UTC),
                                 stat.st_size))
        else:
            left.append(f"{path}: not an archived WAL file")
    wal = WalArchive(tuple(files), _ancestry(repo.wal, files), segment_size(tuple(files)))
    return Contents(entries, wal, left)


def _children(directory: Path) -> list[Path]:
    return sorted(directory.iterdir()) if directory.is_dir() else []


def _entryless(repo: Repository, path: Path) -> str:
    if not path.is_dir() or path.is_symlink():
        return "not a backup directory"
    if aside_path(repo, path.name).exists():
        return (f"a deletion by retention was interrupted (its entry is "
                f"{aside_path(repo, path.name).name}): not a valid backup; remove both by hand")
    return ("no catalog entry: a backup in progress, or one that failed; not a valid backup, "
            "never deleted by retention")


def _catalog_stray(path: Path) -> str:
    if path.name.endswith(DELETING):
        return "the entry of a backup whose deletion by retention was interrupted"
    if path.name.endswith(".tmp"):
        return "a catalog entry being written (or left by a crash)"
    return "not a catalog entry"


def _ancestry(archive: Path, files: list[WalFile]) -> dict[int, frozenset[int]]:
    """Each timeline with a history file -> itself and its ancestors."""
    ancestry = {}
    for file in files:
        if HISTORY_RE.fullmatch(file.name):
            timeline = int(file.name[:8], 16)
            try:
                spans = read_history(archive, timeline)
            except (ValueError, IndexError) as exc:
                raise BackupError(f"timeline history file {archive / file.name} is "
                                  f"unreadable: {exc}",
                                  "restore it from the server's pg_wal or an off-site copy"
                                  ) from None
            ancestry[timeline] = frozenset(s.timeline for s in spans)
    return ancestry
