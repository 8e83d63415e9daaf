"""A run's report.json (schema pgvdrill.report/2, reports/README.md) read for the views.

The readers never raise on a partial payload: a missing or non-numeric figure is None
(shown as "-"), a missing list is empty, an unknown verdict status counts as "unknown".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pgvdrill.report.record import DrillEntry, listing, mapping

Payload = Mapping[str, Any]
STATUSES = ("pass", "fail", "unknown")


def num(value: object) -> float | None:
    """A finite number as float, else None (bools and strings are not figures)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def unix_time(value: object) -> float | None:
    """An ISO 8601 time as Unix seconds (no zone means UTC), None if absent or unparsable."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True)
class Timing:
    """A restore phase (`phase` == `name`) or an item timed inside one."""

    phase: str
    name: str
    seconds: float | None
    bytes: float | None = None
    segments: float | None = None


@dataclass(frozen=True)
class VerdictRow:
    name: str
    status: str
    measured: float | None
    target: float | None
    unit: str
    detail: str

    @property
    def shortfall(self) -> float | None:
        """Measured against target so that > 1 is always worse than the target: measured /
        target for a limit in seconds, target / measured for a B/s floor."""
        if self.measured is None or self.target is None:
            return None
        high, low = ((self.target, self.measured) if self.unit == "B/s"
                     else (self.measured, self.target))
        if low == 0:
            return 0.0 if high == 0 else math.inf
        return high / low


@dataclass(frozen=True)
class DrillRow:
    """One drill flattened for the views; None means the figure was not recorded."""

    name: str
    kind: str
    ok: bool
    backup: str
    restore: str
    backup_seconds: float | None
    size_bytes: float | None
    backup_finished: float | None
    restore_seconds: float | None
    measures: Mapping[str, Any]
    phases: tuple[Timing, ...]
    items: tuple[Timing, ...]
    verdicts: tuple[VerdictRow, ...]
    problems: tuple[str, ...]
    error: str | None
    server: str = "-"  # "PostgreSQL 16.2, pgvector 0.6.2": what the drill ran on
    notes: tuple[str, ...] = ()  # checks that could not run, differences stated
    provider: str = "-"  # "barman (barman 3.19.1)": the tool whose backup was drilled

    def counts(self) -> dict[str, int]:
        return {s: sum(v.status == s for v in self.verdicts) for s in STATUSES}


def _timing(entry: object, name_key: str) -> Timing:
    data = mapping(entry)
    phase = str(data.get("phase") or "?")
    return Timing(phase, str(data.get(name_key) or phase), num(data.get("seconds")),
                  num(data.get("bytes")), num(data.get("segments")))


def _verdict(entry: object) -> VerdictRow:
    data = mapping(entry)
    status = data.get("status")
    return VerdictRow(str(data.get("name") or "?"),
                      status if status in STATUSES else "unknown",
                      num(data.get("measured")), num(data.get("target")),
                      str(data.get("unit") or ""), str(data.get("detail") or ""))


def _problems(entry: DrillEntry) -> tuple[str, ...]:
    """Every problem a drill records, once each: its error, TOC problems, problems, failed
    checks; a drill that is not ok but records none says so."""
    found: list[str] = []
    if entry.error:
        found.append(entry.error)
    found += [str(p) for p in listing(mapping(entry.backup).get("toc_problems"))]
    found += entry.problems or []
    for check in listing(mapping(entry.verification).get("checks")):
        check = mapping(check)
        name = check.get("name", "check")
        listed = [f"{name}: {p}" for p in listing(check.get("problems"))]
        if not listed and check.get("ok") is False:
            listed = [f"{name}: failed"]
        found += [p for p in listed if not any(p in known for known in found)]
    if not found and not entry.ok:
        found.append("not verified (no problem recorded)")
    return tuple(dict.fromkeys(found))


def drill(data: object) -> DrillRow:
    """A report entry flattened for the views."""
    entry = DrillEntry.parse(data)
    backup, restore = mapping(entry.backup), mapping(entry.restore)
    return DrillRow(
        name=entry.drill,
        kind=entry.kind,
        ok=entry.ok,
        backup=str(backup.get("setting") or "unknown"),
        restore=str(restore.get("setting") or "unknown"),
        backup_seconds=num(backup.get("seconds")),
        size_bytes=num(backup.get("size_bytes")),
        backup_finished=unix_time(backup.get("finished")),
        restore_seconds=num(restore.get("seconds")),
        measures=mapping(entry.measures),
        phases=tuple(_timing(p, "phase") for p in entry.phases or []),
        items=tuple(_timing(i, "item") for i in entry.items or []),
        verdicts=tuple(_verdict(v) for v in entry.verdicts or []),
        problems=_problems(entry),
        error=entry.error,
        server=server_text(entry.server),
        notes=_notes(entry),
        provider=drill_provider(backup),
    )


def drill_provider(backup: Mapping[str, Any]) -> str:
    """'nightly (barman 3.19.1), its verification pass' from a drill's backup section ('-'
    for pgvdrill's own backups)."""
    name = backup.get("provider")
    if not name:
        return "-"
    version = backup.get("tool_version")
    text = f"{name} ({version})" if version else str(name)
    verified = mapping(backup.get("tool_verify")).get("status")
    return text + (f", its verification {verified}" if verified else "")


@dataclass(frozen=True)
class ProviderFacts:
    """A provider of the run (report.finish's `provider`): its name, type, the tool's
    version and its own checks as (name, status, why) (status pass, fail or unknown)."""

    name: str
    type: str
    version: str
    checks: tuple[tuple[str, str, str], ...]

    def text(self) -> str:
        """'nightly (barman): barman 3.19.1; checks: barman check pass, ...'."""
        checked = ", ".join(f"{n} {s}" + (f" ({why})" if s != "pass" and why else "")
                            for n, s, why in self.checks) or "none recorded"
        return f"{self.name} ({self.type}): {self.version}; checks: {checked}"


def provider_facts(payload: Payload) -> list[ProviderFacts]:
    """The run's providers (a list, or one mapping); none when it drilled pgvdrill's own
    backups."""
    value = payload.get("provider")
    found = []
    for data in map(mapping, value if isinstance(value, list) else [value]):
        if not data:
            continue
        checks = []
        for check in map(mapping, listing(data.get("checks"))):
            status = check.get("status")
            why = check.get("reason") or "".join(
                str(check.get("output") or "").strip().splitlines()[-1:])
            checks.append((str(check.get("name") or "check"),
                           status if status in STATUSES else "unknown", str(why)))
        found.append(ProviderFacts(str(data.get("name") or "?"), str(data.get("type") or "?"),
                                   str(data.get("version") or "version unknown"),
                                   tuple(checks)))
    return found


def server_text(server: Mapping[str, Any] | None) -> str:
    """'PostgreSQL 16.2, pgvector 0.6.2' ('-' when not recorded)."""
    if not server:
        return "-"
    vector = server.get("pgvector")
    return (f"PostgreSQL {server.get('postgresql', '?')}, "
            + (f"pgvector {vector}" if vector else "no pgvector"))


def _notes(entry: DrillEntry) -> tuple[str, ...]:
    """Checks that could not run ("<check> unknown: why") and differences the
    verification stated (other server or extension versions), once each."""
    found: list[str] = []
    for check in listing(mapping(entry.verification).get("checks")):
        check = mapping(check)
        name = check.get("name", "check")
        if check.get("unknown"):
            found.append(f"{name} unknown: {check['unknown']}")
        found += [f"{name}: {s}" for s in listing(mapping(check.get("details")).get("stated"))]
    return tuple(dict.fromkeys(found))


def drills(payload: Payload) -> list[DrillRow]:
    return [drill(d) for d in listing(payload.get("drills"))]


def counts(rows: list[DrillRow]) -> dict[str, int]:
    """Verdict counts over the drills shown (the payload's `verdicts`, recomputed)."""
    return {s: sum(d.counts()[s] for d in rows) for s in STATUSES}


def summary(counted: Mapping[str, int]) -> str:
    """'3 pass, 1 fail' (zero counts left out); '-' when nothing was judged."""
    return ", ".join(f"{counted[s]} {s}" for s in STATUSES if counted.get(s)) or "-"


def run_ok(payload: Payload, rows: list[DrillRow]) -> bool:
    return payload.get("ok") is True and all(d.ok for d in rows)


@dataclass(frozen=True)
class BenchRun:
    mode: str
    kind: str
    size_key: str
    source_bytes: float | None
    seconds: float | None
    bytes: float | None


@dataclass(frozen=True)
class BenchRatio:
    name: str
    what: str
    size_key: str
    a: str
    a_seconds: float | None
    b: str
    b_seconds: float | None
    ratio: float | None


@dataclass(frozen=True)
class Bench:
    """The benchmark section: sizes by key (source bytes), runs, ratios."""

    sizes: dict[str, float | None]
    runs: tuple[BenchRun, ...]
    ratios: tuple[BenchRatio, ...]


def bench(payload: Payload) -> Bench | None:
    section = payload.get("bench")
    if not isinstance(section, Mapping):
        return None
    sizes = {str(s.get("key")): num(s.get("source_bytes"))
             for s in map(mapping, listing(section.get("sizes")))}
    runs = tuple(
        BenchRun(str(r.get("mode") or "?"), str(r.get("kind") or "?"),
                 str(r.get("size_key") or "?"), num(r.get("source_bytes")),
                 num(r.get("seconds")), num(r.get("bytes")))
        for r in map(mapping, listing(section.get("runs"))))
    ratios = tuple(
        BenchRatio(str(r.get("name") or "?"), str(r.get("what") or ""),
                   str(r.get("size_key") or "?"), str(r.get("a") or "?"),
                   num(r.get("a_seconds")), str(r.get("b") or "?"), num(r.get("b_seconds")),
                   num(r.get("ratio")))
        for r in map(mapping, listing(section.get("ratios"))))
    return Bench(sizes, runs, ratios)


@dataclass(frozen=True)
class ProcedureStep:
    """One step of a drilled procedure (the payload's `procedures` list): its verdict is
    works, fails or unsafe ("unknown" when the payload holds something else)."""

    pack: str
    procedure: str
    step: str
    command: str
    verdict: str
    why: str
    seconds: float | None
    adapted: str


PROCEDURE_VERDICTS = ("works", "fails", "unsafe")


def procedures(payload: Payload) -> list[ProcedureStep]:
    """The run's procedure steps, in report order (none for a run without them)."""
    steps = []
    for entry in map(mapping, listing(payload.get("procedures"))):
        verdict = entry.get("verdict")
        steps.append(ProcedureStep(
            str(entry.get("pack") or "?"), str(entry.get("procedure") or "?"),
            str(entry.get("step") or "?"), str(entry.get("command") or ""),
            verdict if verdict in PROCEDURE_VERDICTS else "unknown",
            str(entry.get("why") or ""), num(entry.get("seconds")),
            str(entry.get("adapted") or "")))
    return steps


def procedure_summary(steps: list[ProcedureStep]) -> str:
    """'12 works, 3 fails, 2 unsafe' (zero counts left out)."""
    counted = {v: sum(s.verdict == v for s in steps) for v in (*PROCEDURE_VERDICTS, "unknown")}
    return ", ".join(f"{n} {v}" for v, n in counted.items() if n) or "-"


# -- formatting shared by the views ------------------------------------------------------

def secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def size(value: float | None) -> str:
    """Bytes in binary units: '512 B', '56.0 MiB'; '-' when unknown."""
    if value is None:
        return "-"
    scaled = value
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(scaled) < 1024:
            return f"{scaled:.0f} {unit}" if unit == "B" else f"{scaled:.1f} {unit}"
        scaled /= 1024
    return f"{scaled:.1f} TiB"


def duration(value: float | None) -> str:
    """'23.10 s', '30.0 min', '2.5 h'; '-' when unknown."""
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.2f} s"
    return f"{value / 60:.1f} min" if value < 7200 else f"{value / 3600:.1f} h"


def figure(value: float | None, unit: str) -> str:
    """A measured or target figure in its unit: '23.10 s', '30.0 min', '3.2 MiB/s', '-'."""
    if unit == "B/s":
        return "-" if value is None else size(value) + "/s"
    return duration(value) if unit == "s" else f"{secs(value)} {unit}".rstrip()


def facts(payload: Payload) -> list[tuple[str, str]]:
    """The run's facts as (label, text) pairs, in report order."""
    env, server, data, targets = (mapping(payload.get(k))
                                  for k in ("environment", "server", "dataset", "targets"))
    production = num(mapping(targets.get("production")).get("size"))
    rows, dim = data.get("rows"), data.get("dim")
    providers = provider_facts(payload)
    found = [
        ("When", f"{payload.get('started', '?')} to {payload.get('finished', '?')} (UTC)"),
        ("Source", str(payload.get("source") or "?")),
        ("Host", f"{env.get('host', '?')} ({env.get('platform', '?')}, "
                 f"{env.get('cpus', '?')} CPUs, Python {env.get('python', '?')})"),
        ("Server", f"PostgreSQL {server.get('version', '?')} ({server.get('backend', '?')}), "
                   f"pgvector {server.get('pgvector', '?')}"),
        ("Dataset", f"{data.get('key', '?')}: {rows if rows is not None else '?'} rows x "
                    f"{dim if dim is not None else '?'} dims, {size(num(data.get('bytes')))}, "
                    f"load {secs(num(data.get('load_seconds')))} s"),
        ("Targets", f"{targets.get('source') or '?'}; production size "
                    f"{size(production) if production else 'not declared'}"),
    ]
    found[2:2] = [("Provider", p.text()) for p in providers]  # whose backups, after the source
    return found
