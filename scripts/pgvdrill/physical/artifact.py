"""Base backup settings (a registry, like the logical dump settings) and the backups they
make."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pgvdrill.physical.manifest import WalRange, lsn_int

Method = Literal["pg_basebackup", "incremental", "low-level"]
Format = Literal["tar", "plain"]


@dataclass(frozen=True)
class BaseBackupSetting:
    """One way to take a base backup."""

    name: str
    method: Method
    format: Format
    args: tuple[str, ...] = ()  # pg_basebackup options beyond -D
    description: str = ""


def _settings(*settings: BaseBackupSetting) -> dict[str, BaseBackupSetting]:
    return {s.name: s for s in settings}


BASE_BACKUP_SETTINGS = _settings(
    BaseBackupSetting("tar-gz", "pg_basebackup", "tar", ("-Ft", "-z", "-P", "-v"),
                      "the runbook's pg_basebackup -Ft -z -P -v (WAL streamed: -X stream "
                      "is pg_basebackup's default)"),
    BaseBackupSetting("tar-stream", "pg_basebackup", "tar", ("-Ft", "-X", "stream"),
                      "the runbook's streaming variant without -z: -Ft -X stream"),
    BaseBackupSetting("plain", "pg_basebackup", "plain", ("-Fp", "-X", "stream"),
                      "a ready data directory: -Fp -X stream"),
    BaseBackupSetting("fetch", "pg_basebackup", "tar", ("-Ft", "-X", "fetch"),
                      "WAL fetched at the end into base.tar: -Ft -X fetch"),
    BaseBackupSetting("server-gzip", "pg_basebackup", "tar",
                      ("-Ft", "-X", "stream", "--compress=server-gzip"),
                      "compressed by the server: -Ft --compress=server-gzip"),
    BaseBackupSetting("incremental", "incremental", "plain", ("-Fp", "-X", "stream"),
                      "PostgreSQL 17+: a full -Fp backup, then --incremental=<full>/"
                      "backup_manifest; restored with pg_combinebackup (needs summarize_wal)"),
    BaseBackupSetting("low-level", "low-level", "plain", (),
                      "pg_backup_start/copy/pg_backup_stop in one session, backup_label "
                      "written into the copy"),
)


@dataclass(frozen=True)
class BaseBackup:
    """A base backup on disk; `parent` is the full backup an incremental one builds on."""

    setting: BaseBackupSetting
    path: Path
    seconds: float
    wal: list[WalRange]  # newest timeline first
    parent: BaseBackup | None = None
    source_bytes: int | None = None  # every database's size when the backup started
    finished: datetime | None = None

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    @property
    def start_lsn(self) -> str:
        return self.wal[-1].start

    @property
    def end_lsn(self) -> str:
        return self.wal[0].end

    @property
    def timeline(self) -> int:
        return self.wal[0].timeline

    @property
    def manifest(self) -> Path | None:
        path = self.path / "backup_manifest"
        return path if path.is_file() else None

    def files(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir())

    def as_dict(self) -> dict[str, object]:
        return {"setting": self.setting.name, "description": self.setting.description,
                "path": str(self.path), "seconds": round(self.seconds, 3),
                "size_bytes": self.size_bytes, "files": self.files(),
                "timeline": self.timeline, "start_lsn": self.start_lsn, "end_lsn": self.end_lsn,
                "wal_bytes": lsn_int(self.end_lsn) - lsn_int(self.start_lsn),
                "finished": self.finished.isoformat() if self.finished else None,
                "parent": self.parent.as_dict() if self.parent else None}
