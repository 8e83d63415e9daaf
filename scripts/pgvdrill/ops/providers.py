"""`pgvdrill providers`: each configured provider's health without a restore: the tool and
its version, its backups, the newest one's age against the targets' backup age (per kind),
and with `check` also the tool's own checks and its verification of the newest backup.

Each provider is judged on its own: one that cannot list its backups is a problem of
that provider, the others are still judged. The JSON document (schema
pgvdrill.providers/1, docs/providers/health.md) holds the same facts as the text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pgvdrill.config import Config
from pgvdrill.config import Provider as ProviderConf
from pgvdrill.errors import BackupError, ConfigError, DrillError
from pgvdrill.policy.fail_on import TARGETS_MISSED
from pgvdrill.policy.targets import Targets
from pgvdrill.providers.base import Provider, ProviderBackup, ToolCheck, finished_in_future
from pgvdrill.providers.registry import make

SCHEMA = "pgvdrill.providers/1"
Maker = Callable[[ProviderConf], Provider]


@dataclass
class Health:
    """One provider's findings: `problems` (a check failed, a listing failed: exit 4 or
    the error's code), `too_old` (exit TARGETS_MISSED), `unknown` (said, not failing)."""

    name: str
    type: str
    version: str | None = None
    backups: list[ProviderBackup] = field(default_factory=list)
    newest: dict[str, dict[str, Any]] = field(default_factory=dict)  # by kind
    checks: list[ToolCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    too_old: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    exit_code: int = 0

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "version": self.version,
                "backups": [{**b.as_dict(), "age_seconds": _age(b, now)}
                            for b in self.backups],
                "newest": self.newest, "checks": [c.as_dict() for c in self.checks],
                "problems": self.problems, "too_old": self.too_old, "unknown": self.unknown,
                "ok": not (self.problems or self.too_old)}


def _age(backup: ProviderBackup, now: datetime) -> float | None:
    return None if backup.finished is None else round(
        (now - backup.finished).total_seconds(), 3)


def health(conf: ProviderConf, targets: Targets, *, check: bool, now: datetime,
           maker: Maker = make) -> Health:
    """`conf`'s provider judged (see module); never raises a DrillError."""
    found = Health(conf.name, conf.type)
    try:
        provider = maker(conf)
        found.version = provider.version()
        found.backups = provider.backups()
    except DrillError as exc:
        found.problems.append(f"{conf.name}: {exc.message}" + (f" ({exc.hint})"
                                                               if exc.hint else ""))
        found.exit_code = exc.exit_code
        return found
    if not found.backups:
        found.problems.append(f"{conf.name}: no backups found")
        found.exit_code = BackupError.exit_code
    newest = [of_kind[-1] for kind in ("logical", "physical")
              if (of_kind := [b for b in found.backups if b.kind == kind])]
    for backup in newest:
        found.newest[backup.kind] = _judge_age(found, backup, targets, now)
    if check:
        try:
            found.checks = provider.checks() + [provider.verify(b) for b in newest]
        except DrillError as exc:
            found.problems.append(f"{conf.name}: its checks could not run: {exc.message}")
            found.exit_code = exc.exit_code
        for tool_check in found.checks:
            if tool_check.status == "fail":
                found.problems.append(f"{conf.name}: {tool_check.name} failed: "
                                      f"{tool_check.output.strip()[-600:]}")
            elif tool_check.status == "unknown":
                found.unknown.append(f"{conf.name}: {tool_check.name} unknown: "
                                     f"{tool_check.reason}")
    if found.problems:
        found.exit_code = found.exit_code or BackupError.exit_code
    elif found.too_old:
        found.exit_code = TARGETS_MISSED
    return found


def _judge_age(found: Health, newest: ProviderBackup, targets: Targets, now: datetime
               ) -> dict[str, Any]:
    limit = float(getattr(targets.backup_age, newest.kind))
    age = _age(newest, now)
    future = finished_in_future(newest, now)
    status = "unknown" if age is None or future else "pass" if age <= limit else "fail"
    if future:  # its age is not known: a problem of the tool, never a pass
        found.problems.append(f"{found.name}: {future}: its age is unknown")
    elif age is None:
        found.unknown.append(f"{found.name}: {newest.id} has no finish time: its age is "
                             "unknown")
    elif age > limit:
        found.too_old.append(f"{found.name}: the newest {newest.kind} backup {newest.id} is "
                             f"{_hours(age)} old, over the target of {_hours(limit)} "
                             f"({targets.source}): take a new one, and find out why the "
                             "schedule did not")
    return {"id": newest.id, "age_seconds": age, "target_seconds": limit, "status": status}


def judge(config: Config, targets: Targets, *, check: bool, names: tuple[str, ...] = (),
          now: datetime | None = None) -> tuple[list[Health], int]:
    """Every configured provider (or those `names`d) judged, and the exit code: the first
    problem's (4 a failed check or no backup, 2/3 a provider that could not list its
    backups), else TARGETS_MISSED when a newest backup is too old, else 0."""
    chosen = [config.provider(n) for n in names] if names else list(config.providers)
    if not chosen:
        raise ConfigError(f"{config.path}: no [provider.NAME] section",
                         "configure one (docs/providers/): e.g. [provider.cron] type = "
                         '"files", dumps = "/backup/postgres/full_backup_*.dump"')
    when = now or datetime.now(UTC)
    found = [health(c, targets, check=check, now=when) for c in chosen]
    failing = [h.exit_code for h in found if h.problems]
    code = failing[0] if failing else TARGETS_MISSED if any(h.too_old for h in found) else 0
    return found, code


def document(found: list[Health], targets: Targets, check: bool, code: int,
             now: datetime) -> dict[str, Any]:
    """The JSON document of a run (schema SCHEMA)."""
    return {"schema": SCHEMA, "at": now.isoformat(), "checked": check, "exit_code": code,
            "ok": code == 0, "targets": {"source": targets.source,
                                         "backup_age": targets.as_dict()["backup_age"]},
            "providers": [h.as_dict(now) for h in found]}


def lines(found: list[Health], check: bool, now: datetime) -> list[str]:
    """The text report: per provider its version, its backups, the verdicts."""
    out: list[str] = []
    for h in found:
        out.append(f"[provider.{h.name}] {h.type}: {h.version or 'version unknown'}")
        for b in h.backups:
            age = _age(b, now)
            out.append(f"  {b.kind:8} {b.id}  finished "
                       f"{b.finished.isoformat() if b.finished else '?'}  "
                       f"{_size(b.size_bytes)}  age {_hours(age)}")
        for kind, newest in h.newest.items():
            out.append(f"  newest {kind}: {newest['id']}, {_hours(newest['age_seconds'])} "
                       f"old, target {_hours(newest['target_seconds'])}: {newest['status']}")
        for c in h.checks:
            said = c.reason if c.status == "unknown" else c.output.strip().splitlines()[-1:]
            out.append(f"  check {c.name}: {c.status}"
                       + (f" ({said if isinstance(said, str) else ''.join(said)})"
                          if said else ""))
        if not check:
            out.append("  (tool checks not run: pass --check)")
    problems = [p for h in found for p in h.problems + h.too_old]
    out += [f"problem: {p}" for p in problems]
    out += [f"unknown: {u}" for h in found for u in h.unknown]
    out.append(f"{len(found)} provider(s): "
               + ("ok" if not problems else f"{len(problems)} problem(s)"))
    return out


def _hours(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds / 3600:.1f} h"


def _size(value: int | None) -> str:
    return "?" if value is None else f"{value / 1048576:.1f} MiB"
