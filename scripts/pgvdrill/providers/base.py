"""What every provider (a tool whose backups pgvdrill drills) offers the DR drill.

A provider lists its backups, restores one into an empty data directory (or, for a logical
backup, hands over its dump), fetches one WAL file at a time from its archive, lists what
its archive holds, and runs its own checks. The drill (pgvdrill.drill.provider) does the
rest the same way for every provider: the scratch server, its neutralised configuration,
recovery, verification against the source, verdicts and report.

Nothing here starts a server. What a tool prints is untrusted input: a backup id, a WAL
name or a path it reports is checked before it is used (`check_backup_id`,
wal.names). The drill itself runs the tool's WAL fetch (`fetch_wal`) into a directory of
its own; the restored copy's restore_command reads only that directory, so a scratch
server never runs the tool, never reaches its repository and never archives into it.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pgvdrill.errors import ConfigError

Kind = Literal["physical", "logical"]
Status = Literal["pass", "fail", "unknown"]
# how far a tool's clock may run ahead of the drill host's before its finish times are not
# believed (a backup "finished" later than now + this is the tool's clock or catalog wrong)
CLOCK_SKEW = timedelta(minutes=5)
BACKUP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}")


def check_backup_id(text: str, tool: str) -> str:
    """`text` as a backup id, or ConfigError: an id goes into the tool's argv and into
    file names, so it must be a plain token."""
    if not BACKUP_ID.fullmatch(text):
        raise ConfigError(f"{tool} reported a backup id {text[:80]!r} that is not a plain "
                          "token (letters, digits, '.', '_', ':', '+', '-')",
                          f"check {tool}'s catalog; pgvdrill drills only such ids")
    return text


@dataclass(frozen=True)
class ProviderBackup:
    """One backup as its tool lists it. LSNs are PostgreSQL's text form ("0/3000028");
    None where the tool does not say. `source_version`: the source's server version as
    the tool recorded it ("18.6", or PG_VERSION's "18"); `path`: where a backup on local
    disk is (files, a logical dump); `details`: the tool's own fields, for the report."""

    id: str
    kind: Kind
    started: datetime | None = None
    finished: datetime | None = None
    start_lsn: str | None = None
    end_lsn: str | None = None
    timeline: int | None = None
    size_bytes: int | None = None
    source_version: str | None = None
    path: Path | None = None
    details: Mapping[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind,
                "started": None if self.started is None else self.started.isoformat(),
                "finished": None if self.finished is None else self.finished.isoformat(),
                "start_lsn": self.start_lsn, "end_lsn": self.end_lsn,
                "timeline": self.timeline, "size_bytes": self.size_bytes,
                "source_version": self.source_version,
                "path": None if self.path is None else str(self.path),
                "details": dict(self.details)}


def finished_in_future(backup: ProviderBackup, now: datetime) -> str | None:
    """Why `backup`'s finish time cannot be believed: later than `now` + CLOCK_SKEW (its
    age is then unknown, never within a target, and it is never taken as the newest);
    None when it is not."""
    if backup.finished is None or backup.finished <= now + CLOCK_SKEW:
        return None
    return (f"backup {backup.id} finished at {backup.finished.isoformat()}, in the future "
            f"(now {now.isoformat(timespec='seconds')}): the tool's clock or its catalog is "
            "wrong")


@dataclass(frozen=True)
class ToolCheck:
    """The result of one of the tool's own checks (`barman check`, `pgbackrest verify`):
    the command as run, pass/fail/unknown (unknown: it could not run, `reason` says why),
    the tail of what it printed and how long it took. Recorded as evidence; a fail fails
    the drill."""

    name: str
    status: Status
    argv: tuple[str, ...] = ()
    output: str = ""
    reason: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "status": self.status, "argv": list(self.argv),
                "output": self.output[-4000:], "reason": self.reason,
                "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class Restored:
    """What a provider's restore left: the data directory (physical) or the dump to
    pg_restore (logical), and how long the tool took."""

    path: Path
    seconds: float
    argv: tuple[str, ...] = ()


class Provider(abc.ABC):
    """A configured tool ([provider.NAME]). Every method runs the real tool; a failure
    raises a DrillError (ToolError, RestoreError, ConfigError) saying what to do."""

    name: str  # the configuration's NAME
    type: str  # a config.PROVIDER_KEYS type

    @abc.abstractmethod
    def version(self) -> str:
        """The tool and its version as it reports it, e.g. "barman 3.19.1"."""

    @abc.abstractmethod
    def backups(self) -> list[ProviderBackup]:
        """Its complete backups, oldest first (failed or running ones left out)."""

    @abc.abstractmethod
    def restore(self, backup: ProviderBackup, into: Path) -> Restored:
        """Restore `backup` with the tool into `into`, an empty directory owned by the
        caller: a data directory for a physical backup (no recovery settings are needed:
        the drill writes its own), a dump file or directory below `into` for a logical
        one."""

    @abc.abstractmethod
    def fetch_wal(self, name: str, dest: Path) -> bool:
        """Fetch WAL file `name` (a segment or a timeline history file; checked by the
        caller) from the tool's archive into the file `dest`; False when the archive does
        not have it, a DrillError when the tool failed otherwise."""

    @abc.abstractmethod
    def wal_names(self) -> list[str] | None:
        """The names of the WAL files its archive holds (segments, .history; .partial and
        .backup files may be among them), or None when the tool cannot list them (then a
        gap after the last file the drill could fetch goes unseen, and the report says
        so)."""

    @abc.abstractmethod
    def checks(self) -> list[ToolCheck]:
        """The tool's own health checks (no restore; read-only: nothing that switches the
        source's WAL or writes into the tool's archive): `barman check`, `pgbackrest
        info`'s status codes, `barman-cloud-check-wal-archive`, a configured command."""

    @abc.abstractmethod
    def verify(self, backup: ProviderBackup) -> ToolCheck:
        """The tool's own verification of `backup` (`barman verify-backup`, `pgbackrest
        verify`); status unknown with the reason when it has none."""
