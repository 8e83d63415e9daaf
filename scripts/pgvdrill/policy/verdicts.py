"""Verdicts: one measured figure against one documented target, failing closed.

Every target is a limit: durations (RTO, RPO, backup age) pass when measured <= target,
throughputs pass when measured >= floor; the boundary itself passes. Missing or unusable
evidence (None, a negative or non-finite figure, a zero-second throughput) is always
"unknown", never "pass".

A throughput measured on less data than [evidence] min_throughput_bytes is "unknown" too:
fixed costs dominate a small run, so its rate says nothing per GB (use a larger dataset or
`pgvdrill bench`).

Throughput verdicts also project the measurement to the declared production size
(projected seconds = production size / measured bytes per second) and, for restore kinds,
compare the projection with the matching RTO in `detail` (and `projected_seconds`). The
projection is informative: the status is the floor's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pgvdrill.policy.targets import MIB, Targets

Status = Literal["pass", "fail", "unknown"]

RESTORE_KINDS = ("logical", "physical", "pitr")
RPO_KINDS = ("wal_archiving", "daily_backup")
THROUGHPUT_KINDS = ("logical_backup", "physical_backup", "logical_restore", "wal_replay")
BACKUP_KINDS = ("logical", "physical")
# The RTO a throughput kind's production projection is held against (backups have none).
THROUGHPUT_RTO: dict[str, str] = {"logical_restore": "logical", "wal_replay": "pitr"}


@dataclass(frozen=True)
class Verdict:
    name: str
    status: Status
    measured: float | None
    target: float
    unit: str
    detail: str
    projected_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_kind(kind: str, allowed: tuple[str, ...], what: str) -> None:
    if kind not in allowed:
        raise ValueError(f"unknown {what} kind {kind!r}; allowed: {', '.join(allowed)}")


def _usable(value: object) -> float | None:
    """A finite non-negative number, or None (evidence that cannot be judged)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return float(value)


def _why_unknown(value: object, why: str | None = None) -> str:
    if why:
        return why
    return "no evidence" if value is None else f"unusable evidence {value!r}"


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 120 else f"{value:.0f} s ({value / 60:.1f} min)"


def _at_most(name: str, measured: object, target: float, what: str,
             why: str | None = None) -> Verdict:
    value = _usable(measured)
    if value is None:
        return Verdict(
            name,
            "unknown",
            None,
            target,
            "s",
            f"{what}: {_why_unknown(measured, why)}; target <= {_seconds(target)}",
        )
    status: Status = "pass" if value <= target else "fail"
    relation = "<=" if status == "pass" else ">"
    return Verdict(
        name,
        status,
        value,
        target,
        "s",
        f"{what} {_seconds(value)} {relation} target {_seconds(target)}",
    )


def rto_verdict(targets: Targets, kind: str, seconds: float | None,
                why: str | None = None) -> Verdict:
    """A restore of `kind` (logical, physical, pitr) took `seconds` until the server was ready;
    `why` explains missing evidence (e.g. the restore did not verify)."""
    _check_kind(kind, RESTORE_KINDS, "restore")
    return _at_most(f"rto.{kind}", seconds, getattr(targets.rto, kind), f"{kind} restore", why)


def rpo_verdict(targets: Targets, kind: str, seconds: float | None,
                why: str | None = None) -> Verdict:
    """Data at risk: `seconds` between the last recoverable point and the failure; `why`
    explains missing evidence."""
    _check_kind(kind, RPO_KINDS, "RPO")
    return _at_most(f"rpo.{kind}", seconds, getattr(targets.rpo, kind), "data loss window",
                    why)


def backup_age_verdict(targets: Targets, kind: str, age_seconds: float | None) -> Verdict:
    """The newest `kind` (logical, physical) backup is `age_seconds` old."""
    _check_kind(kind, BACKUP_KINDS, "backup")
    return _at_most(
        f"backup_age.{kind}",
        age_seconds,
        getattr(targets.backup_age, kind),
        f"newest {kind} backup age",
    )


def projected_seconds(size_bytes: int, bytes_per_second: float) -> float:
    """How long `size_bytes` takes at `bytes_per_second` (> 0)."""
    return size_bytes / bytes_per_second


def throughput_verdict(
    targets: Targets, kind: str, size_bytes: float | None, seconds: float | None
) -> Verdict:
    """`size_bytes` processed in `seconds` against the floor for `kind`, with the projection
    to the declared production size."""
    _check_kind(kind, THROUGHPUT_KINDS, "throughput")
    floor: float = getattr(targets.throughput, kind)
    name = f"throughput.{kind}"
    size, duration = _usable(size_bytes), _usable(seconds)
    floor_text = f"floor {floor / MIB:.2f} MiB/s"
    if size is None or duration is None or duration == 0:
        why = []
        if size is None:
            why.append(f"bytes: {_why_unknown(size_bytes)}")
        if duration is None:
            why.append(f"seconds: {_why_unknown(seconds)}")
        elif duration == 0:
            why.append("seconds: 0 (too fast to time)")
        return Verdict(name, "unknown", None, floor, "B/s", f"{'; '.join(why)}; {floor_text}")
    rate = size / duration
    status: Status = "pass" if rate >= floor else "fail"
    relation = ">=" if status == "pass" else "<"
    detail = (
        f"{size / MIB:.1f} MiB in {_seconds(duration)} = {rate / MIB:.2f} MiB/s "
        f"{relation} {floor_text}"
    )
    least = targets.evidence.min_throughput_bytes
    if size < least:
        status = "unknown"
        detail = (f"{size / MIB:.1f} MiB in {_seconds(duration)} = {rate / MIB:.2f} MiB/s: "
                  f"too little data to judge a rate (fixed costs dominate below "
                  f"{least / MIB:.0f} MiB, [evidence] min_throughput_bytes); {floor_text}")
    production = targets.production.size
    projected: float | None = None
    if production is None:
        detail += "; no production size declared ([production] size) to project to"
    elif rate == 0:
        detail += "; cannot project to production: nothing was processed"
    else:
        projected = projected_seconds(production, rate)
        detail += f"; at production size {production / (1024**3):.1f} GiB: {_seconds(projected)}"
        rto_kind = THROUGHPUT_RTO.get(kind)
        if rto_kind is not None:
            rto = float(getattr(targets.rto, rto_kind))
            held = "within" if projected <= rto else "exceeds"
            detail += f", {held} the {rto_kind} RTO {_seconds(rto)}"
        elif floor > 0:
            detail += f" (the floor allows {_seconds(projected_seconds(production, floor))})"
    if status == "unknown":
        detail += " (indicative only)"
    return Verdict(name, status, rate, floor, "B/s", detail, projected)


def evaluate(targets: Targets, measured: Mapping[str, Any] | None) -> list[Verdict]:
    """Verdicts for a drill's evidence. `measured` (None means no evidence at all) may hold:

    - "restore": {"kind": "logical"|"physical"|"pitr", "seconds": float | None,
      "why": why seconds is None (optional)}
    - "rpo": {"kind": "wal_archiving"|"daily_backup", "seconds": float | None,
      "why": why seconds is None (optional)}
    - "throughput": [{"kind": ..., "bytes": int | None, "seconds": float | None}, ...]
    - "backup_age": {"kind": "logical"|"physical", "seconds": float | None}

    Absent entries yield no verdict (the target does not apply to this drill); present
    entries with missing figures yield "unknown".
    """
    if measured is None:
        return []
    verdicts: list[Verdict] = []
    restore = measured.get("restore")
    if restore is not None:
        verdicts.append(rto_verdict(targets, restore["kind"], restore.get("seconds"),
                                    restore.get("why")))
    rpo = measured.get("rpo")
    if rpo is not None:
        verdicts.append(rpo_verdict(targets, rpo["kind"], rpo.get("seconds"), rpo.get("why")))
    for item in measured.get("throughput") or []:
        verdicts.append(
            throughput_verdict(targets, item["kind"], item.get("bytes"), item.get("seconds"))
        )
    age = measured.get("backup_age")
    if age is not None:
        verdicts.append(backup_age_verdict(targets, age["kind"], age.get("seconds")))
    return verdicts


def judged(targets: Targets, drill: Mapping[str, Any]) -> dict[str, Any]:
    """A report entry for `drill` (its as_dict, with "evidence") with its verdicts added."""
    return {**drill, "verdicts": [v.as_dict() for v in evaluate(targets, drill.get("evidence"))]}


def counts(drills: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many verdicts of each status the judged `drills` hold."""
    found = {"pass": 0, "fail": 0, "unknown": 0}
    for drill in drills:
        for verdict in drill.get("verdicts") or []:
            found[verdict["status"]] += 1
    return found
