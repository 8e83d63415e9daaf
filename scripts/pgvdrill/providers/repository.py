"""The `pgvdrill` provider: another pgvdrill repository (an off-site copy, a second
site's) drilled as a provider. Its backups are its complete catalog entries; a backup is
checked against its entry (every file's size and sha256) before it is restored, its WAL
comes from its wal/, its checks are the catalog (unreadable entries, the newest backups'
files) and the WAL archive's continuity from the newest base backup, its verification
pg_verifybackup (a base backup) or pg_restore (a dump) after the files' check.

The repository is only read: no lock is taken (an off-site copy has no writer here).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from pgvdrill import __version__, config
from pgvdrill.errors import BackupError, DrillError
from pgvdrill.logical.globals import GLOBALS_FILE
from pgvdrill.providers import base, local
from pgvdrill.providers.files import restore_local, verify_local
from pgvdrill.repository import Entry, Repository, file_problems
from pgvdrill.repository.catalog import read_catalog, read_entries
from pgvdrill.repository.paths import inside
from pgvdrill.wal.continuity import check_continuity, up_to_foreign
from pgvdrill.wal.names import parse_lsn


class RepositoryProvider(base.Provider):
    """[provider.NAME] type = "pgvdrill", repository = "/mnt/offsite/pgvdrill"
    (docs/providers/pgvdrill.md)."""

    type = "pgvdrill"

    def __init__(self, conf: config.Provider,
                 installations: local.Installations = local.embedded_only) -> None:
        assert conf.repository is not None  # config.PROVIDER_KEYS: it needs one
        self.name = conf.name
        self.repo = Repository(conf.repository)
        self.tools = installations

    def version(self) -> str:
        return f"pgvdrill {__version__}"

    def _entries(self) -> dict[str, Entry]:
        return {e.id: e for e in read_entries(self.repo)}

    def backups(self) -> list[base.ProviderBackup]:
        return [_backup(self.repo, e) for e in self._entries().values()]

    def _entry(self, backup: base.ProviderBackup) -> Entry:
        entry = self._entries().get(backup.id)
        if entry is None:
            raise BackupError(f"{self.repo.root}: backup {backup.id} has no catalog entry "
                              "(any more)", "list the backups again (pgvdrill providers)")
        return entry

    def _intact(self, backup: base.ProviderBackup) -> Entry:
        """Its catalog entry, once every file is exactly as the entry says (else the
        BackupError names each difference)."""
        entry = self._entry(backup)
        problems = file_problems(self.repo, entry)
        if problems:
            raise BackupError(f"backup {entry.id} in {self.repo.root} differs from its catalog "
                              "entry:\n" + "\n".join(f"  - {p}" for p in problems),
                              "do not restore from it: choose another backup, or copy this "
                              "one again from its origin")
        return entry

    def restore(self, backup: base.ProviderBackup, into: Path) -> base.Restored:
        started = time.monotonic()
        entry = self._intact(backup)
        restored = restore_local(_backup(self.repo, entry), into)
        return base.Restored(restored.path, time.monotonic() - started, restored.argv)

    def fetch_wal(self, name: str, dest: Path) -> bool:
        return local.fetch_wal(self.repo.wal, name, dest)

    def wal_names(self) -> list[str] | None:
        return local.wal_names(self.repo.wal)

    def checks(self) -> list[base.ToolCheck]:
        """The catalog readable; the newest backup of each kind as its entry says; the
        archived WAL continuous from the newest base backup's start."""
        started = time.monotonic()
        entries, unreadable = read_catalog(self.repo)
        found = [base.ToolCheck("catalog", "fail" if unreadable else "pass",
                           ("read", str(self.repo.catalog)),
                           "\n".join(unreadable.values()) or f"{len(entries)} entries",
                           seconds=time.monotonic() - started)]
        for kind in ("logical", "physical"):
            entry = next((e for e in reversed(entries) if e.kind == kind), None)
            if entry is not None:
                started = time.monotonic()
                problems = file_problems(self.repo, entry)
                found.append(base.ToolCheck(f"files of {entry.id}", "fail" if problems else "pass",
                                       ("sha256sum", str(self.repo.backup_dir(kind, entry.id))),
                                       "\n".join(problems) or f"{len(entry.files)} files as "
                                       "cataloged", seconds=time.monotonic() - started))
                if kind == "physical":
                    found.append(continuity(self.repo, entry))
        return found

    def verify(self, backup: base.ProviderBackup) -> base.ToolCheck:
        try:
            entry = self._intact(backup)
        except DrillError as exc:
            return base.ToolCheck("catalog files", "fail", (), exc.message)
        return verify_local(self.tools, _backup(self.repo, entry))


def continuity(repo: Repository, entry: Entry) -> base.ToolCheck:
    """Every archived WAL segment from base backup `entry`'s start on, along the archive's
    latest timeline, up to the first of another database system: fail at a gap."""
    argv = ("ls", str(repo.wal))
    if entry.start_lsn is None or entry.timeline is None:
        return base.ToolCheck("wal continuity", "unknown", argv,
                         reason=f"{entry.id}'s catalog entry has no start LSN and timeline")
    try:
        reach = check_continuity(repo.wal, parse_lsn(entry.start_lsn), entry.timeline)
        ident = entry.source.get("system_identifier")
        if ident:
            reach = up_to_foreign(reach, repo.wal, int(ident))
    except (BackupError, FileNotFoundError) as exc:
        why = exc.message if isinstance(exc, BackupError) else f"{repo.wal} is missing"
        return base.ToolCheck("wal continuity", "fail", argv, why)
    said = (f"{len(reach.segments)} segments from {entry.id}'s start "
            f"{entry.start_lsn} on timeline {reach.timeline}")
    return base.ToolCheck("wal continuity", "fail" if reach.gap else "pass", argv,
                     reach.gap or said)


def _backup(repo: Repository, entry: Entry) -> base.ProviderBackup:
    """A catalog entry as a provider's backup; `path` the dump itself (a logical backup)
    or the base backup's directory."""
    base.check_backup_id(entry.id, f"repository {repo.root}")
    kind: base.Kind = "logical" if entry.kind == "logical" else "physical"
    directory = repo.backup_dir(entry.kind, entry.id)
    return base.ProviderBackup(
        entry.id, kind, started=datetime.fromisoformat(entry.started),
        finished=entry.finished_at, start_lsn=entry.start_lsn, end_lsn=entry.end_lsn,
        timeline=entry.timeline, size_bytes=entry.size_bytes,
        source_version=str(entry.source.get("server_version") or "") or None,
        path=_dump(directory, entry) if kind == "logical" else directory,
        details={"settings": entry.settings, "tools": entry.tools})


def _dump(directory: Path, entry: Entry) -> Path:
    """A logical backup's dump: the entry's one top-level file or directory besides its
    globals.sql."""
    tops = sorted({f.path.split("/")[0] for f in entry.files} - {GLOBALS_FILE})
    if len(tops) != 1:
        raise BackupError(f"{entry.id}: its catalog entry lists {len(tops)} dumps "
                          f"({', '.join(tops[:5])}), not one", "the entry was changed: "
                          "choose another backup")
    return inside(directory, tops[0])
