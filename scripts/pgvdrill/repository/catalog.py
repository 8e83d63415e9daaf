"""Catalog entries: what a backup is, where it came from, and the sha256 of every file.

An entry is written atomically (temporary name, fsync, rename) after the backup finished
and its files were hashed, so an entry exists only for a complete backup.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pgvdrill.errors import BackupError
from pgvdrill.files.fsync import fsync_dir
from pgvdrill.repository.layout import KINDS, Repository
from pgvdrill.repository.paths import Listing, UnsafePath, listing, open_below, open_regular
from pgvdrill.repository.schema import check_entry

SCHEMA = "pgvdrill.catalog/1"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileSum:
    path: str  # relative to the backup directory
    bytes: int
    sha256: str


def sha256_of(path: Path) -> str:
    """The sha256 of the regular file `path` (OSError for a symlink, FIFO or device)."""
    return _sha256(open_regular(path))


def _sha256(fd: int) -> str:
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_files(directory: Path) -> list[FileSum]:
    """Every regular file below `directory`, sorted by path; BackupError when it holds a
    symlink, FIFO, socket or device (pgvdrill takes backups without tablespaces)."""
    found = listing(directory)
    if found.odd:
        raise BackupError(f"{directory} holds what is not a regular file: "
                          + "; ".join(f"{p} is {what}" for p, what in found.odd.items()),
                          "pgvdrill takes and restores base backups without tablespaces or "
                          "links (pg_basebackup -Ft, or -Fp with --tablespace-mapping)")
    return [_sum(directory, path) for path in found.files]


def _sum(directory: Path, path: str) -> FileSum:
    fd = open_below(directory, path)
    return FileSum(path, os.fstat(fd).st_size, _sha256(fd))


@dataclass(frozen=True)
class Entry:
    """One complete backup. Times are ISO 8601 UTC; LSNs are PostgreSQL's text form."""

    id: str
    kind: str  # logical or physical
    started: str
    finished: str
    seconds: float
    source: dict[str, Any]  # describe, system_identifier, server_version, pgvector, dbname
    settings: dict[str, Any]  # how it was taken (format, compression, argv without secrets)
    tools: dict[str, str]  # tool name -> its --version line
    files: list[FileSum]
    start_lsn: str | None = None
    end_lsn: str | None = None
    timeline: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    schema: str = SCHEMA

    @property
    def size_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def finished_at(self) -> datetime:
        return datetime.fromisoformat(self.finished)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "size_bytes": self.size_bytes}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: Path) -> Entry:
        if data.get("schema") != SCHEMA:
            raise BackupError(f"catalog entry {where} has schema {data.get('schema')!r}, "
                              f"expected {SCHEMA!r}", "it was written by another tool or "
                              "version; move it out of the catalog directory")
        check_entry(data, KINDS, where)
        body = {k: v for k, v in data.items() if k != "size_bytes"}
        body["files"] = [FileSum(**f) for f in body["files"]]
        return cls(**body)


def write_entry(repo: Repository, entry: Entry) -> Path:
    """Write `entry` atomically with mode 0600; refuses to replace an existing entry."""
    path = repo.entry_path(entry.id)
    if path.exists():
        raise BackupError(f"catalog entry {path} already exists",
                          "pgvdrill never overwrites a catalog entry")
    tmp = path.with_name(f".{path.name}.tmp")
    try:  # never through a name someone planted (a symlink, a file)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise BackupError(f"{tmp} exists: a crash while writing this entry, or a file "
                          "planted in the catalog", "find out which, remove it, then take "
                          "the backup again") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(entry.as_dict(), handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.link(tmp, path)  # fails if an entry appeared meanwhile: never replaced
    tmp.unlink()
    fsync_dir(path.parent)
    return path


def read_catalog(repo: Repository) -> tuple[list[Entry], dict[str, str]]:
    """The readable catalog entries (oldest first), and the problem of each unreadable one
    by its id (the file name without .json); a repository whose catalog/ is missing (an
    unmounted disk, a directory moved away) has that as its one problem."""
    entries: list[Entry] = []
    problems: dict[str, str] = {}
    if repo.root.is_dir() and not os.path.lexists(repo.catalog):
        problems[""] = (f"catalog directory {repo.catalog} is missing: an unmounted disk or a "
                        "directory moved away (which backups are complete cannot be told)")
    paths = sorted(repo.catalog.glob("*.json")) if repo.catalog.is_dir() else []
    for path in paths:
        try:
            with os.fdopen(open_regular(path), encoding="utf-8") as handle:
                data = json.load(handle)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            entry = Entry.from_dict(data, path)
        except (OSError, ValueError) as exc:
            problems[path.stem] = f"catalog entry {path} is unreadable: {exc}"
            continue
        except BackupError as exc:
            problems[path.stem] = exc.message
            continue
        if entry.id != path.stem:
            problems[path.stem] = (f"catalog entry {path} describes backup {entry.id!r}, "
                                   f"not {path.stem!r}")
            continue
        entries.append(entry)
    return sorted(entries, key=lambda e: (e.finished_at, e.id)), problems


def incomplete(repo: Repository, entries: list[Entry]) -> list[Path]:
    """Backup directories without a catalog entry."""
    known = {(e.kind, e.id) for e in entries}
    return [path for kind in KINDS if repo.dir(kind).is_dir()
            for path in sorted(repo.dir(kind).iterdir()) if (kind, path.name) not in known]


def read_entries(repo: Repository) -> list[Entry]:
    """Every catalog entry, oldest first (none without a catalog); BackupError naming the
    first unreadable one."""
    entries, unreadable = read_catalog(repo)
    if unreadable:
        raise BackupError(next(iter(unreadable.values())),
                          "restore it from a copy, or move it away to ignore it")
    return entries


def newest(entries: list[Entry], kind: str) -> Entry | None:
    of_kind = [e for e in entries if e.kind == kind]
    return of_kind[-1] if of_kind else None


def file_problems(repo: Repository, entry: Entry) -> list[str]:
    """How the backup's files differ from its catalog entry: missing, changed (size or
    sha256) or extra files. Empty when every file is exactly as written."""
    problems, found = _listed(repo, entry)
    if found is None:
        return problems
    directory = repo.backup_dir(entry.kind, entry.id)
    listed = set(found.files)
    for expected in entry.files:
        if expected.path not in listed:
            problems.append(f"{entry.id}: file {expected.path} is missing")
            continue
        listed.discard(expected.path)
        try:
            actual = _sum(directory, expected.path)
        except OSError as exc:
            problems.append(f"{entry.id}: file {expected.path} cannot be read: {exc}")
            continue
        if actual.bytes != expected.bytes:
            problems.append(f"{entry.id}: file {expected.path} has {actual.bytes} bytes, "
                            f"the catalog says {expected.bytes}")
        elif actual.sha256 != expected.sha256:
            problems.append(f"{entry.id}: file {expected.path} changed (sha256 differs)")
    problems += [f"{entry.id}: file {path} is not in the catalog" for path in sorted(listed)]
    return problems


def link_problems(repo: Repository, entry: Entry) -> list[str]:
    """The backup's directory missing or a symlink, and every symlink, FIFO, socket or
    device in it (a listing only, nothing hashed: cheap enough before reading any file)."""
    return _listed(repo, entry)[0]


def _listed(repo: Repository, entry: Entry) -> tuple[list[str], Listing | None]:
    try:
        directory = repo.backup_dir(entry.kind, entry.id)
    except UnsafePath as exc:
        return [f"{entry.id}: {exc.message}"], None
    if not directory.is_dir():
        return [f"{entry.id}: backup directory {directory} is missing"], None
    found = listing(directory)
    return [f"{entry.id}: {directory / path} is {what}: never followed or read (a backup "
            "holds regular files only)" for path, what in found.odd.items()], found
