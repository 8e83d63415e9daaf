"""The documented targets the drills are judged against, and a user's overrides of them.

Defaults are the runbook's figures (../shared/RUNBOOK.md, "9.2.3 Backup and Recovery").
A user TOML file may override any of them; loading is strict: an unknown section or key,
a wrong type, a negative or non-finite number or an unknown size unit raises ConfigError
naming the file, the key and what is allowed.

Units. Durations are seconds, sizes bytes, throughputs bytes per second. Size strings use
PostgreSQL's convention (as in its GUCs and pg_size_pretty): kB, MB, GB, TB are powers of
1024; the IEC spellings KiB, MiB, GiB, TiB mean the same. The runbook's "1 GB" is read the
same way (2**30 bytes).

Throughput floors (the slowest rate each size table still allows, i.e. its upper time
bound at each size; the floor is the minimum of those rates):
- logical backup (pg_dump -F c -Z 9): 1 GB in 5 min = 3.41 MiB/s; 10 GB in 50 min =
  3.41 MiB/s; 100 GB in 8 h = 3.56 MiB/s -> floor 1 GiB / 300 s (~3.4 MiB/s).
- physical backup (pg_basebackup -Ft -z): 1 GB in 2 min = 8.53 MiB/s; 10 GB in 20 min =
  8.53 MiB/s; 100 GB in 3 h = 9.48 MiB/s -> floor 1 GiB / 120 s (~8.5 MiB/s).
- logical restore (pg_restore; the table is keyed by *backup* size, so the rate is bytes
  of dump restored per second): 1 GB in 8 min = 2.13 MiB/s; 10 GB in 80 min = 2.13 MiB/s;
  100 GB in 13 h = 2.19 MiB/s -> floor 1 GiB / 480 s (~2.1 MiB/s).
- WAL replay (PITR table): 100-1000 segments in 5-15 min, so 1000 segments in 15 min =
  1.11 segments/s; with the default 16 MiB wal_segment_size that is
  1000 * 16 MiB / 900 s (~17.8 MiB/s). (The "< 100 segments in < 5 min" row is a bound
  for small replays, not a rate, and "> 1000 in 15-60 min" is open-ended.)
The physical restore has no size table in the runbook, so it has an RTO but no floor.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pgvdrill.errors import ConfigError
from pgvdrill.files.trust import require_trusted

KIB = 1024
MIB = 1024**2
GIB = 1024**3
TIB = 1024**4
WAL_SEGMENT_BYTES = 16 * MIB

MINUTE = 60
HOUR = 3600
DAY = 86400

SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "kB": KIB,
    "KB": KIB,
    "KiB": KIB,
    "MB": MIB,
    "MiB": MIB,
    "GB": GIB,
    "GiB": GIB,
    "TB": TIB,
    "TiB": TIB,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)?\s*$")


@dataclass(frozen=True)
class Rto:
    """Recovery time objective per restore kind, in seconds (runbook §1, RTO table)."""

    logical: float = 30 * MINUTE
    physical: float = 15 * MINUTE
    pitr: float = 10 * MINUTE


@dataclass(frozen=True)
class Rpo:
    """Recovery point objective per protection kind, in seconds (runbook §1, RPO table)."""

    wal_archiving: float = 1 * MINUTE
    daily_backup: float = 24 * HOUR


@dataclass(frozen=True)
class Throughput:
    """Throughput floors in bytes per second (derivation in the module docstring)."""

    logical_backup: float = GIB / (5 * MINUTE)
    physical_backup: float = GIB / (2 * MINUTE)
    logical_restore: float = GIB / (8 * MINUTE)
    wal_replay: float = 1000 * WAL_SEGMENT_BYTES / (15 * MINUTE)


@dataclass(frozen=True)
class BackupAge:
    """Maximum age of the newest backup, in seconds (runbook §4 schedule: logical daily,
    physical weekly)."""

    logical: float = 24 * HOUR
    physical: float = 7 * DAY


@dataclass(frozen=True)
class Production:
    """The user's declared production data size in bytes; None when not declared."""

    size: int | None = None


@dataclass(frozen=True)
class Evidence:
    """How much data a throughput verdict needs: below it, fixed costs (connections,
    CREATE DATABASE, checkpoints) dominate the rate, so the verdict is unknown."""

    min_throughput_bytes: int = 64 * MIB


@dataclass(frozen=True)
class Targets:
    rto: Rto = field(default_factory=Rto)
    rpo: Rpo = field(default_factory=Rpo)
    throughput: Throughput = field(default_factory=Throughput)
    backup_age: BackupAge = field(default_factory=BackupAge)
    production: Production = field(default_factory=Production)
    evidence: Evidence = field(default_factory=Evidence)
    source: str = "runbook defaults"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_SECTIONS: dict[str, type] = {
    "rto": Rto,
    "rpo": Rpo,
    "throughput": Throughput,
    "backup_age": BackupAge,
    "production": Production,
    "evidence": Evidence,
}
_WHAT: dict[str, str] = {
    "rto": "a non-negative number of seconds",
    "rpo": "a non-negative number of seconds",
    "backup_age": "a non-negative number of seconds",
    "throughput": (
        'a non-negative number of bytes per second, or a string such as "3.5MB/s" '
        f"(units: {', '.join(SIZE_UNITS)})"
    ),
    "production": (
        f'a positive number of bytes, or a string such as "50GB" (units: {", ".join(SIZE_UNITS)})'
    ),
    "evidence": (
        f'a non-negative number of bytes, or a string such as "64MB" '
        f'(units: {", ".join(SIZE_UNITS)})'
    ),
}
_SIZED = ("throughput", "production", "evidence")


def parse_size(text: str) -> int:
    """'50GB' -> bytes (PostgreSQL units: kB/MB/GB/TB are powers of 1024). ValueError if bad."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a number followed by a unit")
    number, unit = match.group(1), match.group(2) or "B"
    if unit not in SIZE_UNITS:
        raise ValueError(f"unknown unit {unit!r}")
    size = float(number) * SIZE_UNITS[unit]
    if not math.isfinite(size):
        raise ValueError(f"{text!r} is too large")
    return int(size)


def _value(section: str, key: str, value: object, where: str) -> float | int:
    allowed = _WHAT[section]

    def bad(why: str) -> ConfigError:
        return ConfigError(
            f"{where}: [{section}] {key} = {value!r}: {why}",
            f"use {allowed}",
        )

    number: float | int
    if isinstance(value, str) and section in _SIZED:
        text = value.strip()
        if section == "throughput" and text.endswith("/s"):
            text = text[:-2]
        try:
            number = parse_size(text)
        except ValueError as exc:
            raise bad(str(exc)) from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = value
    else:
        raise bad(f"wrong type ({type(value).__name__})")
    if not math.isfinite(number):
        raise bad("not a finite number")
    if number < 0:
        raise bad("negative")
    if section in ("production", "evidence"):
        if number == 0 and section == "production":
            raise bad("zero")
        if isinstance(number, float) and not number.is_integer():
            raise bad("not a whole number of bytes")
        return int(number)
    return number


def targets_from_mapping(data: Mapping[str, Any], where: str) -> Targets:
    """Apply a parsed TOML document to the defaults; strict (see the module docstring)."""
    targets = Targets(source=where)
    for section, body in data.items():
        if section not in _SECTIONS:
            raise ConfigError(
                f"{where}: unknown section [{section}]",
                f"allowed sections: {', '.join(f'[{s}]' for s in _SECTIONS)}",
            )
        if not isinstance(body, dict):
            raise ConfigError(
                f"{where}: {section} must be a table ([{section}]), not {type(body).__name__}",
                f"write [{section}] on its own line followed by key = value lines",
            )
        current = getattr(targets, section)
        allowed_keys = list(asdict(current))
        changes: dict[str, float | int] = {}
        for key, value in body.items():
            if key not in allowed_keys:
                raise ConfigError(
                    f"{where}: unknown key [{section}] {key}",
                    f"allowed keys in [{section}]: {', '.join(allowed_keys)}",
                )
            changes[key] = _value(section, key, value, where)
        targets = replace(targets, **{section: replace(current, **changes)})
    return targets


def load_targets(path: Path | None, production_size: str | None = None) -> Targets:
    """The runbook's targets, overridden by the TOML file at `path` when given, with the
    declared `production_size` (e.g. "50GB") when given."""
    targets = _load(path)
    return with_production_size(targets, production_size) if production_size else targets


def _load(path: Path | None) -> Targets:
    if path is None:
        return Targets()
    require_trusted(path, "targets file", stake="decides what a drill run by {user} accepts")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read targets file {path}: {exc.strerror or exc}",
            "pass an existing, readable TOML file, or none to use the runbook's targets",
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML: {exc}",
            f"sections allowed: {', '.join(f'[{s}]' for s in _SECTIONS)}",
        ) from None
    return targets_from_mapping(data, str(path))



def with_production_size(targets: Targets, text: str) -> Targets:
    """`targets` with the declared production size `text` (e.g. "50GB"); ConfigError if bad."""
    size = int(_value("production", "size", text, "--production-size"))
    return replace(targets, production=Production(size))
