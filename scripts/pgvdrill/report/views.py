"""The views of a run's report.json: report.md, report.html, junit.xml and metrics.prom.

Pure functions of the payload (schema pgvdrill.report/2, see reports/README.md);
`write_views` writes the files.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from pgvdrill.policy.fail_on import FailOn
from pgvdrill.report import model
from pgvdrill.report.html import html
from pgvdrill.report.junit import junit

# -- Markdown -------------------------------------------------------------------------------


def _cell(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _row(*cells: object) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _timings(drill: model.DrillRow) -> list[str]:
    lines = [f"### {_cell(drill.name)}", "",
             f"Restore (RTO) {model.secs(drill.restore_seconds)} s.", "",
             "| step | name | seconds | size |", "|---|---|---:|---:|"]
    lines += [_row("phase", p.name, model.secs(p.seconds), "-") for p in drill.phases]
    lines += [_row(i.phase, i.name, model.secs(i.seconds), model.size(i.bytes))
              for i in drill.items]
    return [*lines, ""]


def _bench(section: model.Bench) -> list[str]:
    lines = ["## Benchmark", "", "| mode | kind | size | source | seconds | bytes |",
             "|---|---|---|---:|---:|---:|"]
    lines += [_row(r.mode, r.kind, r.size_key, model.size(r.source_bytes), model.secs(r.seconds),
                   model.size(r.bytes)) for r in section.runs]
    lines += ["", "| ratio | what | size | a | a s | b | b s | a / b |",
              "|---|---|---|---|---:|---|---:|---:|"]
    lines += [_row(r.name, r.what, r.size_key, r.a, model.secs(r.a_seconds), r.b,
                   model.secs(r.b_seconds), "-" if r.ratio is None else f"{r.ratio:.2f}")
              for r in section.ratios]
    return [*lines, ""]


def _procedures(steps: list[model.ProcedureStep]) -> list[str]:
    """The per-step verdict table, then what each step ran and how it was adapted."""
    lines = ["## Procedures", "", f"Steps: {model.procedure_summary(steps)}.", "",
             "| pack | procedure | step | verdict | why | seconds |",
             "|---|---|---|---|---|---:|"]
    lines += [_row(s.pack, s.procedure, s.step,
                   s.verdict if s.verdict == "works" else f"**{s.verdict}**", s.why or "-",
                   model.secs(s.seconds)) for s in steps]
    lines += ["", "### Commands", "", "| procedure | step | command | adapted to the drill |",
              "|---|---|---|---|"]
    lines += [_row(s.procedure, s.step, s.command or "-", s.adapted or "-") for s in steps]
    return [*lines, ""]


def markdown(payload: model.Payload) -> str:
    """A Markdown report: run facts, procedure steps (when drilled), one row per drill,
    verdicts, phases, problems, bench. A run of procedures alone shows no drill sections."""
    rows = model.drills(payload)
    steps = model.procedures(payload)
    ok = model.run_ok(payload, rows)
    lines = [f"# pgvdrill run {payload.get('run_id', '?')}: {'ok' if ok else 'FAILED'}", ""]
    lines += [f"- {label}: {text}" for label, text in model.facts(payload)]
    if steps:
        lines += [f"- Procedure steps: {len(steps)}: {model.procedure_summary(steps)}"]
    if rows or not steps:
        lines += [f"- Drills: {len(rows)}, verified: {sum(d.ok for d in rows)}, "
                  f"failed: {sum(not d.ok for d in rows)}",
                  f"- Targets judged: {model.summary(model.counts(rows))}"]
    lines.append("")
    if steps:
        lines += _procedures(steps)
    if rows or not steps:
        lines += _drill_sections(rows)
    section = model.bench(payload)
    if section is not None:
        lines += _bench(section)
    return "\n".join(lines)


def _drill_sections(rows: list[model.DrillRow]) -> list[str]:
    """Drills, Targets, Phases and Problems."""
    lines = ["## Drills", "",
             "| drill | kind | server | backup | restore | size | backup s | restore s "
             "| verified | targets |",
             "|---|---|---|---|---|---:|---:|---:|---|---|"]
    lines += [_row(d.name, d.kind, d.server, d.backup, d.restore, model.size(d.size_bytes),
                   model.secs(d.backup_seconds), model.secs(d.restore_seconds),
                   "ok" if d.ok else "**FAILED**", model.summary(d.counts())) for d in rows]
    provided = [d for d in rows if d.provider != "-"]
    if provided:  # backups another tool took: which tool, which version
        lines += ["", "## Providers", "", "| drill | provider (tool version) |", "|---|---|"]
        lines += [_row(d.name, d.provider) for d in provided]
    lines += ["", "## Targets", "", "| drill | target | status | measured | target value "
              "| detail |", "|---|---|---|---:|---:|---|"]
    lines += [_row(d.name, v.name, v.status if v.status == "pass" else f"**{v.status}**",
                   model.figure(v.measured, v.unit), model.figure(v.target, v.unit),
                   v.detail or "-")
              for d in rows for v in d.verdicts]
    lines += ["", "## Phases", ""]
    timed = [d for d in rows if d.phases or d.items]
    for d in timed:
        lines += _timings(d)
    if not timed:
        lines += ["None.", ""]
    lines += ["## Problems", ""]
    troubled = [d for d in rows if d.problems]
    for d in troubled:
        lines += [f"### {_cell(d.name)} ({'ok' if d.ok else 'FAILED'})", ""]
        lines += [f"- {_cell(p)}" for p in d.problems] + [""]
    if not troubled:
        lines += ["None.", ""]
    noted = [d for d in rows if d.notes]
    if noted:
        lines += ["## Notes", "", "Checks that could not run, and what differs between "
                  "source and target without failing (versions).", ""]
    for d in noted:
        lines += [f"### {_cell(d.name)}", ""] + [f"- {_cell(n)}" for n in d.notes] + [""]
    return lines


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

    def add(self, name: str, value: float | None,
            labels: Mapping[str, str] | None = None) -> None:
        """One sample; None (not measured) and a repeated series are left out."""
        key = (name, tuple(sorted((labels or {}).items())))
        if value is None or key in self._keys:  # a duplicate series makes the file unscrapable
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


_STATUS_VALUE = {"pass": 1.0, "fail": 0.0, "unknown": -1.0}


def prometheus(payload: model.Payload, now: float) -> str:
    """The run as a node_exporter textfile (all gauges). `now` stands in for the drill time
    when the payload records neither finished nor started."""
    rows = model.drills(payload)
    fam = _Families()
    fam.family("pgvdrill_drill_success", "1 if the drill restored and verified, else 0.")
    fam.family("pgvdrill_last_drill_timestamp_seconds", "Unix time the last drill run ended.")
    fam.family("pgvdrill_last_drill_success", "1 if every drill of the last run verified.")
    fam.family("pgvdrill_restore_seconds", "Restore duration (measured RTO) per drill.")
    fam.family("pgvdrill_backup_seconds", "Backup duration per backup setting.")
    fam.family("pgvdrill_backup_size_bytes", "Backup size per backup setting.")
    fam.family("pgvdrill_backup_timestamp_seconds", "Unix time each backup ended.")
    fam.family("pgvdrill_rpo_seconds", "Measured data loss window (RPO) per mode.")
    fam.family("pgvdrill_target_status", "Target verdict per drill: 1 pass, 0 fail, -1 unknown.")
    for d in rows:
        labels = {"kind": d.kind, "backup": d.backup, "restore": d.restore}
        fam.add("pgvdrill_drill_success", 1.0 if d.ok else 0.0, labels)
        fam.add("pgvdrill_restore_seconds", d.restore_seconds, labels)
        backup = {"kind": d.kind, "backup": d.backup}
        fam.add("pgvdrill_backup_seconds", d.backup_seconds, backup)
        fam.add("pgvdrill_backup_size_bytes", d.size_bytes, backup)
        fam.add("pgvdrill_backup_timestamp_seconds", d.backup_finished, backup)
        if d.kind == "rpo":  # named rpo:<mode>
            fam.add("pgvdrill_rpo_seconds", model.num(d.measures.get("rpo_seconds")),
                    {"mode": d.name.split(":", 1)[-1]})
        for v in d.verdicts:
            fam.add("pgvdrill_target_status", _STATUS_VALUE[v.status],
                    {"target": v.name, "drill": d.name})
    stamps = (model.unix_time(payload.get(k)) for k in ("finished", "started"))
    fam.add("pgvdrill_last_drill_timestamp_seconds",
            next((s for s in stamps if s is not None), now))
    fam.add("pgvdrill_last_drill_success", 1.0 if model.run_ok(payload, rows) else 0.0)
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


def write_views(run_dir: Path, payload: model.Payload, now: float | None = None,
                fail_on: FailOn = "fail") -> list[Path]:
    """Write report.md, report.html, junit.xml and metrics.prom into run_dir, each
    atomically (temporary name, then rename). `fail_on` decides which missed targets are
    JUnit failures."""
    stamp = time.time() if now is None else now
    views = {"report.md": markdown(payload), "report.html": html(payload),
             "junit.xml": junit(payload, fail_on), "metrics.prom": prometheus(payload, stamp)}
    return [_write_atomic(run_dir / name, text) for name, text in views.items()]
