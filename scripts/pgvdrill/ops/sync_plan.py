"""What `pgvdrill sync` copies off-site: the archived WAL and every complete backup whose
files still match its catalog entry, the entry after the backup's files (so a catalog
entry on the remote side implies that the backup's files are there)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pgvdrill.repository import Repository, file_problems
from pgvdrill.repository.catalog import incomplete, read_catalog, sha256_of
from pgvdrill.repository.wal_files import wal_file_problems
from pgvdrill.wal.names import is_archive_name


@dataclass(frozen=True)
class Item:
    """One file to copy; `key` is its path below the repository root ('/'-separated), which
    is also its name below the remote destination."""

    key: str
    path: Path
    bytes: int
    sha256: str

    @classmethod
    def hashed(cls, root: Path, path: Path) -> Item:
        """An item for `path` (below `root`) with its size and sha256 read from disk."""
        return cls(path.relative_to(root).as_posix(), path, path.stat().st_size, sha256_of(path))


@dataclass(frozen=True)
class Group:
    """Files copied together: the WAL archive, or one backup with its catalog `entry`, which
    is copied only once every file is on the remote side."""

    name: str
    files: tuple[Item, ...]
    entry: Item | None = None


@dataclass(frozen=True)
class Plan:
    groups: tuple[Group, ...]
    refused: tuple[str, ...]  # what is not copied and why
    incomplete: tuple[str, ...]  # backup directories without a catalog entry

    @property
    def items(self) -> list[Item]:
        return [i for g in self.groups for i in (*g.files, *([g.entry] if g.entry else []))]


def plan(repo: Repository) -> Plan:
    """The groups to copy from `repo`, WAL first, then backups oldest first. A backup whose
    files differ from its catalog entry (file_problems) or whose entry is invalid is refused
    with its problems, and
    so is what in wal/ is not an archived WAL file of the right size (wal_file_problems:
    symlinks are never followed)."""
    groups: list[Group] = []
    odd = wal_file_problems(repo.wal)
    refused = [f"{problem}: not copied" for problem in odd.values()]
    names = sorted(os.listdir(repo.wal)) if repo.wal.is_dir() else []
    wal = [repo.wal / name for name in names if is_archive_name(name) and name not in odd]
    if wal:
        groups.append(Group("wal", tuple(Item.hashed(repo.root, p) for p in wal)))
    entries, unreadable = read_catalog(repo)
    refused += [f"{problem}: " + ("its backup is not copied" if key else "no backup is copied")
                for key, problem in unreadable.items()]
    for entry in entries:
        problems = file_problems(repo, entry)
        if problems:
            refused += [f"{problem}: the backup is not copied" for problem in problems]
            continue
        directory = repo.backup_dir(entry.kind, entry.id)
        files = tuple(Item(f"{entry.kind}/{entry.id}/{f.path}", directory / f.path, f.bytes,
                           f.sha256) for f in entry.files)
        groups.append(Group(entry.id, files, Item.hashed(repo.root, repo.entry_path(entry.id))))
    return Plan(tuple(groups), tuple(refused), tuple(str(d) for d in incomplete(repo, entries)))
