"""Human and monitoring views of a run's drill.json: report.md and metrics.prom.

Pure functions of the payload dict (see reports/README.md); `write_views` writes the files.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

Payload = Mapping[str, Any]

#: payload keys holding drill lists, in report order
SECTIONS = ("drills", "physical", "pitr")


@dataclass(frozen=True)
class DrillRow:
    """One drill flattened for the views; None means the figure was not recorded."""

    name: str
    kind: str
    backup: str
    restore: str
    backup_seconds: float | None
    size_bytes: int | None
    restore_seconds: float | None
    ok: bool
    problems: tuple[str, ...]


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _problems(drill: Mapping[str, Any]) -> tuple[str, ...]:
    """Every problem a drill entry records: its error, TOC problems, failed checks."""
    found: list[str] = []
    if drill.get("error"):
        found.append(str(drill["error"]))
    found += [str(p) for p in _map(drill.get("backup")).get("toc_problems") or []]
    found += [str(p) for p in drill.get("problems") or []]
    for check in _map(drill.get("verification")).get("checks") or []:
        check = _map(check)
        name = check.get("name", "check")
        listed = [f"{name}: {p}" for p in check.get("problems") or []]
        if not listed and check.get("ok") is False:
            listed = [f"{name}: failed"]
        found += listed
    if not found and drill.get("ok") is not True:
        found.append("not verified (no problem recorded)")
    return tuple(found)


def rows(payload: Payload) -> list[DrillRow]:
    """The logical, physical and PITR drills of a payload, in that order."""
    out: list[DrillRow] = []
    for section in SECTIONS:
        for entry in payload.get(section) or []:
            drill = _map(entry)
            backup, restore = _map(drill.get("backup")), _map(drill.get("restore"))
            kind = str(drill.get("kind") or section.rstrip("s"))
            size = _num(backup.get("size_bytes"))
            out.append(DrillRow(
                name=str(drill.get("drill", "?")),
                kind=kind,
                backup=str(backup.get("setting") or ("base" if kind == "pitr" else "unknown")),
                restore=str(restore.get("setting") or drill.get("target_kind")
                            or restore.get("unpack_step") or "unknown"),
                backup_seconds=_num(backup.get("seconds")),
                size_bytes=None if size is None else int(size),
                restore_seconds=_num(restore.get("seconds")),
                ok=drill.get("ok") is True,
                problems=_problems(drill),
            ))
    return out


# -- Markdown -------------------------------------------------------------------------------

def _cell(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def markdown(payload: Payload) -> str:
    """A Markdown report: run facts, one table row per drill, problems per drill, totals."""
    env, server, dataset = (_map(payload.get(k)) for k in ("environment", "server", "dataset"))
    drills = rows(payload)
    failed = [d for d in drills if not d.ok]
    verdict = "ok" if payload.get("ok") is True and not failed else "FAILED"
    lines = [
        f"# pgvdrill run {payload.get('run_id', '?')}: {verdict}",
        "",
        f"- When: {payload.get('started', '?')} to {payload.get('finished', '?')} (UTC)",
        f"- Host: {env.get('host', '?')} ({env.get('platform', '?')}, "
        f"{env.get('cpus', '?')} CPUs, Python {env.get('python', '?')})",
        f"- Server: PostgreSQL {server.get('version', '?')} ({server.get('backend', '?')}), "
        f"pgvector {server.get('pgvector', '?')}",
        f"- Dataset: {dataset.get('key', '?')} "
        f"(load {_secs(_num(dataset.get('load_seconds')))} s)",
        "",
        "## Drills",
        "",
        "| drill | kind | backup | restore | backup s | size | restore s | verdict |",
        "|---|---|---|---|---:|---:|---:|---|",
    ]
    lines += [
        f"| {_cell(d.name)} | {_cell(d.kind)} | {_cell(d.backup)} | {_cell(d.restore)} "
        f"| {_secs(d.backup_seconds)} | {_size(d.size_bytes)} | {_secs(d.restore_seconds)} "
        f"| {'ok' if d.ok else '**FAILED**'} |"
        for d in drills
    ]
    lines += ["", "## Problems", ""]
    if failed or any(d.problems for d in drills):
        for d in drills:
            if d.problems:
                lines.append(f"### {d.name} ({'ok' if d.ok else 'FAILED'})")
                lines += [""] + [f"- {_cell(p)}" for p in d.problems] + [""]
    else:
        lines += ["None.", ""]
    restore_total = sum(d.restore_seconds or 0.0 for d in drills)
    backups = {(d.kind, d.backup): d.backup_seconds or 0.0 for d in drills}
    lines += [
        "## Totals",
        "",
        f"- Drills: {len(drills)}, ok: {len(drills) - len(failed)}, failed: {len(failed)}",
        f"- Backup time, each backup once: {sum(backups.values()):.2f} s",
        f"- Restore time, all drills: {restore_total:.2f} s",
        f"- Drill time: {_secs(_num(payload.get('seconds')))} s",
        "",
    ]
    return "\n".join(lines)


# -- Prometheus textfile ----------------------------------------------------------------------

def escape_label(value: str) -> str:
    """A label value escaped for the exposition format (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def _timestamp(payload: Payload, now: float) -> float:
    for key in ("finished", "started"):
        text = payload.get(key)
        if isinstance(text, str):
            try:
                return datetime.fromisoformat(text).timestamp()
            except ValueError:
                continue
    return now


def _rpo(payload: Payload) -> Iterator[tuple[str, float]]:
    """RPO figures, if any: top-level "rpo" as {mode: seconds} or [{mode|kind, seconds}],
    or a drill's "rpo": {kind, seconds}. No such key is recorded yet; absence is fine."""
    seen: set[str] = set()
    top = payload.get("rpo")
    items: list[tuple[object, object]] = []
    if isinstance(top, Mapping):
        items += [(k, v) for k, v in top.items()]
    elif isinstance(top, list):
        items += [(_map(i).get("mode") or _map(i).get("kind"), _map(i).get("seconds"))
                  for i in top]
    for section in SECTIONS:
        for entry in payload.get(section) or []:
            rpo = _map(_map(entry).get("rpo"))
            items.append((rpo.get("mode") or rpo.get("kind"), rpo.get("seconds")))
    for mode, seconds in items:
        value = _num(seconds)
        if mode and value is not None and str(mode) not in seen:
            seen.add(str(mode))
            yield str(mode), value


class _Families:
    """Samples grouped by metric family so each gets one HELP and one TYPE line."""

    def __init__(self) -> None:
        self._order: list[str] = []
        self._help: dict[str, str] = {}
        self._samples: dict[str, list[str]] = {}
        self._keys: set[tuple[str, tuple[tuple[str, str], ...]]] = set()

    def family(self, name: str, help_text: str) -> None:
        self._order.append(name)
        self._help[name] = help_text
        self._samples[name] = []

    def add(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        key = (name, tuple(sorted((labels or {}).items())))
        if key in self._keys:  # a duplicate series would make the file unscrapable
            return
        self._keys.add(key)
        text = ",".join(f'{k}="{escape_label(v)}"' for k, v in (labels or {}).items())
        self._samples[name].append(f"{name}{{{text}}} {_value(value)}" if text
                                   else f"{name} {_value(value)}")

    def render(self) -> str:
        out: list[str] = []
        for name in self._order:
            if not self._samples[name]:
                continue
            help_text = self._help[name].replace("\\", "\\\\").replace("\n", "\\n")
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *self._samples[name]]
        return "\n".join(out) + "\n" if out else ""


def prometheus(payload: Payload, now: float) -> str:
    """The run as a node_exporter textfile (all gauges). `now` stands in for the drill time
    when the payload records neither finished nor started."""
    drills = rows(payload)
    fam = _Families()
    fam.family("pgvdrill_drill_success", "1 if the drill restored and verified, else 0.")
    fam.family("pgvdrill_last_drill_timestamp_seconds", "Unix time the last drill run ended.")
    fam.family("pgvdrill_last_drill_success", "1 if every drill of the last run passed.")
    fam.family("pgvdrill_restore_seconds", "Restore duration (measured RTO) per drill.")
    fam.family("pgvdrill_backup_seconds", "Backup duration per backup setting.")
    fam.family("pgvdrill_backup_size_bytes", "Backup size per backup setting.")
    fam.family("pgvdrill_rpo_seconds", "Measured data loss window (RPO) per mode.")
    for d in drills:
        labels = {"kind": d.kind, "backup": d.backup, "restore": d.restore}
        fam.add("pgvdrill_drill_success", 1.0 if d.ok else 0.0, labels)
        if d.restore_seconds is not None:
            fam.add("pgvdrill_restore_seconds", d.restore_seconds, labels)
        backup = {"kind": d.kind, "backup": d.backup}
        if d.backup_seconds is not None:
            fam.add("pgvdrill_backup_seconds", d.backup_seconds, backup)
        if d.size_bytes is not None:
            fam.add("pgvdrill_backup_size_bytes", float(d.size_bytes), backup)
    fam.add("pgvdrill_last_drill_timestamp_seconds", _timestamp(payload, now))
    all_ok = payload.get("ok") is True and all(d.ok for d in drills)
    fam.add("pgvdrill_last_drill_success", 1.0 if all_ok else 0.0)
    for mode, seconds in _rpo(payload):
        fam.add("pgvdrill_rpo_seconds", seconds, {"mode": mode})
    return fam.render()


# -- files ------------------------------------------------------------------------------------

def _write_atomic(path: Path, text: str) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; node_exporter may run as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_views(run_dir: Path, payload: Payload, now: float | None = None) -> list[Path]:
    """Write report.md and metrics.prom into run_dir, each atomically (temp name, rename)."""
    stamp = time.time() if now is None else now
    return [_write_atomic(run_dir / "report.md", markdown(payload)),
            _write_atomic(run_dir / "metrics.prom", prometheus(payload, stamp))]
