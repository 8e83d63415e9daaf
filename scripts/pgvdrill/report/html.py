"""report.html: one self-contained page for readers and auditors (inline CSS and SVG, no
scripts, nothing fetched), so it opens offline and from a file:// URL.

It shows the run's verdict, its facts, the procedure steps with their verdicts (when
procedures were drilled), the drills with their target verdicts, charts of
measured vs target, restore phases per drill and backup sizes, the verdicts' details,
item timings, problems and, for a benchmark run, its runs, ratios and time against size.
Every string from the payload is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from pgvdrill.report import charts
from pgvdrill.report.model import (
    STATUSES,
    Bench,
    DrillRow,
    Payload,
    ProcedureStep,
    bench,
    counts,
    drills,
    duration,
    facts,
    figure,
    num,
    procedure_summary,
    procedures,
    provider_facts,
    run_ok,
    secs,
    size,
)
from pgvdrill.report.record import mapping

#: chart fills; the page's own chrome (header, badges) uses other shades of green and red
STATUS_COLOURS = {"pass": "#1e8e3e", "fail": "#d93025", "unknown": "#80868b"}
SYMBOLS = {"pass": "✓", "fail": "✗", "unknown": "?", "unsafe": "⚠"}
#: a procedure step's verdict drawn as a badge status
STEP_BADGES = {"works": "pass", "fails": "fail", "unsafe": "unsafe", "unknown": "unknown"}
PHASE_COLOURS = {
    "extract": "#9c755f", "copy": "#76b7b2", "combine": "#ff9da7", "schema": "#edc948",
    "pre-data": "#edc948", "data": "#4e79a7", "post-data": "#f28e2b", "start": "#b07aa1",
    "verify": "#bab0ac",
}
KIND_COLOURS = {"logical": "#4e79a7", "physical": "#76b7b2", "pitr": "#b07aa1",
                "rpo": "#9c755f"}
PALETTE = ("#4e79a7", "#f28e2b", "#76b7b2", "#b07aa1", "#edc948", "#9c755f", "#ff9da7",
           "#17becf", "#bcbd22", "#7f7f7f")

CSS = """
:root { --ok: #188038; --failed: #c5221f; --line: #dadce0;
  --muted: #5f6368; --zebra: #f8f9fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto,
  "DejaVu Sans", sans-serif; color: #202124; background: #fff; }
main { max-width: 1160px; margin: 0 auto; padding: 24px 28px 48px; }
header.run { border-left: 8px solid var(--ok); padding: 6px 0 6px 18px; margin-bottom: 18px; }
header.run-failed { border-left-color: var(--failed); }
h1 { font-size: 24px; margin: 0 0 6px; font-weight: 600; }
h2 { font-size: 18px; margin: 32px 0 10px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
.status { font-size: 18px; font-weight: 700; margin: 0 8px 0 0; }
.run-ok .status { color: var(--ok); } .run-failed .status { color: var(--failed); }
.summary { margin: 4px 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; }
th, td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: baseline; }
th { background: #f1f3f4; font-weight: 600; white-space: nowrap; }
tbody tr:nth-child(even) { background: var(--zebra); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px;
  max-width: 30em; overflow-wrap: anywhere; }
table#verdicts tbody tr { background: none; }
th.group { background: none; padding-top: 10px; font-family: ui-monospace, "DejaVu Sans Mono",
  monospace; font-size: 13px; }
table.timings { table-layout: fixed; }
td.step { min-width: 13em; }
table.timings th:nth-child(1) { width: 110px; } table.timings th:nth-child(3),
table.timings th:nth-child(4) { width: 100px; } table.timings th:nth-child(5) { width: 260px; }
.badge { display: inline-block; padding: 0 7px; margin: 1px 3px 1px 0; border-radius: 10px;
  font-size: 11.5px; font-weight: 600; white-space: nowrap; border: 1px solid; }
.verdict-pass { background: #e6f4ea; color: #137333; border-color: #a8dab5; }
.verdict-fail { background: #fce8e6; color: #a50e0e; border-color: #f6aea9; }
.verdict-unsafe { background: #fef7e0; color: #8a4b00; border-color: #f9cb72; }
pre.command { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere;
  font: 12px ui-monospace, "DejaVu Sans Mono", monospace; }
.verdict-unknown { background: #f1f3f4; color: #3c4043; border-color: #bdc1c6;
  background-image: repeating-linear-gradient(45deg, transparent 0 4px, #e0e0e0 4px 6px); }
figure { margin: 8px 0 4px; } figcaption { color: var(--muted); margin: 0 0 4px; }
svg.chart { max-width: 100%; height: auto; display: block; }
svg text { font: 12px system-ui, "DejaVu Sans", sans-serif; fill: #202124; }
svg .tick, svg .note, svg .zone-caption { fill: var(--muted); }
svg .note-pass { fill: #137333; } svg .note-fail { fill: #a50e0e; font-weight: 600; }
svg .axis-label { fill: var(--muted); font-style: italic; }
svg .group { font-weight: 600; }
svg .legend { font-weight: 600; }
svg .grid { stroke: #e8eaed; } svg .axis { stroke: #9aa0a6; }
svg .reference { stroke: #202124; stroke-dasharray: 5 4; }
svg .target-line { stroke: #202124; stroke-width: 2; }
svg .zone-pass { fill: #f3faf5; } svg .zone-fail { fill: #fdf3f2; }
svg .line { fill: none; stroke-width: 2; }
.meter { background: #e8eaed; height: 10px; min-width: 120px; }
.meter span { display: block; height: 10px; background: #4e79a7; }
ul.problems li { margin: 2px 0; font-family: ui-monospace, "DejaVu Sans Mono", monospace;
  font-size: 13px; white-space: pre-wrap; }
details summary { cursor: pointer; font-weight: 600; margin: 10px 0 4px; }
p.none { color: var(--muted); }
@media print { main { max-width: none; padding: 0; } details { page-break-inside: avoid; } }
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _table(table_id: str, head: Iterable[tuple[str, str]], rows: Iterable[Iterable[str]],
           cls: str = "") -> str:
    """A table: head as (text, class) pairs, row cells as HTML ('<td>...</td>')."""
    ths = "".join(f'<th scope="col" class="{cls}">{_e(text)}</th>' for text, cls in head)
    body = "\n".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return (f'<table id="{table_id}" class="{cls}"><thead><tr>{ths}</tr></thead>\n'
            f"<tbody>\n{body}\n</tbody></table>")


def _td(text: object, cls: str = "") -> str:
    return f'<td class="{cls}">{_e(text)}</td>' if cls else f"<td>{_e(text)}</td>"


def _badge(status: str, text: str, tip: str = "") -> str:
    title = f' title="{_e(tip)}"' if tip else ""
    return (f'<span class="badge verdict-{_e(status)}"{title}>'
            f"{SYMBOLS.get(status, '?')} {_e(text)}</span>")


def _header(payload: Payload, rows: list[DrillRow], steps: list[ProcedureStep]) -> str:
    ok = run_ok(payload, rows)
    counted = counts(rows)
    verified = sum(d.ok for d in rows)
    badges = " ".join(_badge(s, f"{counted[s]} {s}") for s in STATUSES)
    drilled = "".join(_badge(STEP_BADGES[v], f"{sum(s.verdict == v for s in steps)} {v}")
                      for v in STEP_BADGES if any(s.verdict == v for s in steps))
    only_steps = bool(steps) and not rows
    return (f'<header class="run {"run-ok" if ok else "run-failed"}" id="verdict">'
            f"<h1>pgvdrill restore drill {_e(payload.get('run_id', '?'))}</h1>"
            f'<p class="summary"><span class="status">{"ok" if ok else "FAILED"}</span>'
            + (f"{len(steps)} procedure steps: {drilled}</p>" if only_steps else
               f"{verified} of {len(rows)} drills restored and verified</p>"
               + (f'<p class="summary">Procedure steps: {drilled}</p>' if steps else "")
               + f'<p class="summary">Targets: {badges}</p>')
            + _provider(payload) + "</header>")


def _provider(payload: Payload) -> str:
    """The providers whose backups were drilled: each tool's version and its own checks."""
    return "".join(
        f'<p class="summary provider" id="provider-{_e(p.name)}">Provider {_e(p.name)} '
        f"({_e(p.type)}): {_e(p.version)}; its checks: "
        + (" ".join(_badge(status, name, why) for name, status, why in p.checks)
           or "none recorded") + "</p>"
        for p in provider_facts(payload))


def _procedures(steps: list[ProcedureStep]) -> str:
    """The per-step verdict table, and what each step ran (folded)."""
    if not steps:
        return ""
    head = [("pack", ""), ("procedure", ""), ("step", ""), ("verdict", ""), ("why", ""),
            ("seconds", "num")]
    body = [[_td(s.pack), _td(s.procedure, "name"), _td(s.step, "name step"),
             f"<td>{_badge(STEP_BADGES[s.verdict], s.verdict)}</td>", _td(s.why or "-"),
             _td(secs(s.seconds), "num")] for s in steps]
    commands = [[_td(s.procedure, "name"), _td(s.step, "name step"),
                 f'<td><pre class="command">{_e(s.command or "-")}</pre></td>',
                 _td(s.adapted or "-")] for s in steps]
    return ('<section id="procedures"><h2>Procedures</h2>'
            f'<p class="summary">{_e(procedure_summary(steps))}: works means the step ran and '
            "its result verified exactly; fails and unsafe say why, as observed.</p>"
            + _table("procedure-steps", head, body)
            + "<details><summary>Commands, and how each was adapted to the drill</summary>"
            + _table("procedure-commands", [("procedure", ""), ("step", ""), ("command", ""),
                                            ("adapted to the drill", "")], commands)
            + "</details></section>")


def _facts(payload: Payload) -> str:
    items = "".join(f"<dt>{_e(label)}</dt><dd>{_e(text)}</dd>" for label, text in facts(payload))
    return f'<section><h2>Run</h2><dl class="facts" id="facts">{items}</dl></section>'


def _drills(rows: list[DrillRow]) -> str:
    provided = any(d.provider != "-" for d in rows)
    head = [("drill", ""), ("kind", ""), ("server", ""), *([("provider", "")] if provided else []),
            ("backup size", "num"), ("backup s", "num"), ("restore s (RTO)", "num"),
            ("verified", ""), ("targets", "")]
    body = [[_td(d.name, "name"), _td(d.kind), _td(d.server),
             *([_td(d.provider)] if provided else []), _td(size(d.size_bytes), "num"),
             _td(secs(d.backup_seconds), "num"), _td(secs(d.restore_seconds), "num"),
             "<td>" + (_badge("pass", "ok") if d.ok else _badge("fail", "FAILED")) + "</td>",
             "<td>" + ("".join(_badge(v.status, v.name, v.detail) for v in d.verdicts)
                       or "-") + "</td>"]
            for d in rows]
    return ("<section><h2>Drills</h2>"
            + _table("drills", head, body) + "</section>")


def _note(status: str, measured: float | None, target: float | None, unit: str) -> str:
    bound = "floor" if unit == "B/s" else "limit"
    shown = "no evidence" if measured is None else figure(measured, unit)
    return f"{SYMBOLS.get(status, '?')} {status}: {shown} ({bound} {figure(target, unit)})"


def _targets_chart(rows: list[DrillRow]) -> str:
    groups = [(d.name, [charts.RatioRow(v.name, v.shortfall, v.status,
                                        _note(v.status, v.measured, v.target, v.unit))
                        for v in d.verdicts]) for d in rows if d.verdicts]
    if not groups:
        return ""
    svg = charts.ratios(
        "chart-targets", "Measured vs target",
        "Per target verdict, the measured figure relative to its target on a log scale: a "
        "duration divided by its limit, a throughput floor divided by the measured rate; "
        "left of the 1x line meets the target, right misses it; unknown is hatched.",
        groups, STATUS_COLOURS,
        "measured / limit (durations), floor / measured (throughputs); 1× = target")
    return _figure("Measured vs target", svg,
                   "Bars start at the target (1×); green meets it, red misses it, "
                   "hatched grey could not be judged.")


def _figure(title: str, svg: str, caption: str) -> str:
    return (f"<section><h2>{_e(title)}</h2><figure>"
            f"<figcaption>{_e(caption)}</figcaption>{svg}</figure></section>")


def _colour(name: str, known: dict[str, str], seen: list[str]) -> str:
    """A fixed colour for a known name, else the next palette colour for a new name."""
    if name in known:
        return known[name]
    if name not in seen:
        seen.append(name)
    return PALETTE[seen.index(name) % len(PALETTE)]


def _phases_chart(rows: list[DrillRow]) -> str:
    timed = [d for d in rows if any(p.seconds is not None for p in d.phases)]
    if not timed:
        return ""
    other: list[str] = []
    bars: list[charts.BarRow] = []
    names: list[str] = []
    for d in timed:
        segments = tuple(
            charts.Segment(p.name, p.seconds, _colour(p.name, PHASE_COLOURS, other),
                           f"{d.name}: {p.name} {duration(p.seconds)}")
            for p in d.phases if p.seconds is not None)
        names += [s.name for s in segments if s.name not in names]
        verify = sum(s.value for s in segments if s.name == "verify")
        rto = "not measured" if d.restore_seconds is None else duration(d.restore_seconds)
        note = f"RTO {rto}" + (
            f" + verify {duration(verify)}" if verify else "")
        bars.append(charts.BarRow(d.name, segments, note))
    names.sort(key=lambda n: list(PHASE_COLOURS).index(n) if n in PHASE_COLOURS else 99)
    legend = [(n, _colour(n, PHASE_COLOURS, other)) for n in names]
    svg = charts.hbars("chart-phases", "Restore phases per drill",
                       "Consecutive wall-clock phases of each restore, then verification; "
                       "the restore phases add up to the measured RTO.",
                       bars, "seconds", lambda v: f"{v:g} s", legend=legend)
    return _figure("Restore phases per drill", svg,
                   "Wall-clock phases in order; the restore phases add up to the RTO, "
                   "verification follows.")


def _binary_unit(value: float) -> tuple[float, str]:
    unit, name = 1.0, "B"
    for step in ("KiB", "MiB", "GiB", "TiB"):
        if value < unit * 1024:
            break
        unit, name = unit * 1024, step
    return unit, name


def _sizes_chart(payload: Payload, rows: list[DrillRow]) -> str:
    seen: dict[tuple[str, str], DrillRow] = {}
    for d in rows:
        if d.size_bytes is not None:
            seen.setdefault((d.kind, d.backup), d)
    if not seen:
        return ""
    source = num(mapping(payload.get("dataset")).get("bytes"))
    unit, name = _binary_unit(max([d.size_bytes or 0.0 for d in seen.values()]
                                  + [source or 0.0]))
    bars = []
    for (kind, backup), d in seen.items():
        ratio = num(d.measures.get("compression_ratio"))
        colour = KIND_COLOURS.get(kind, PALETTE[-1])
        note = size(d.size_bytes) + (f", {ratio:.2f} of source" if ratio is not None else "")
        bars.append(charts.BarRow(f"{kind} {backup}", (charts.Segment(
            kind, d.size_bytes or 0.0, colour, f"{kind} {backup}: {note}"),), note))
    svg = charts.hbars("chart-sizes", "Backup size per backup",
                       "Size of each backup taken in this run"
                       + (", against the size of the source database." if source else "."),
                       bars, f"backup size ({name})", lambda v: f"{v / unit:g} {name}", unit,
                       reference=(f"source database {size(source)}", source) if source else None)
    return _figure("Backup size per backup", svg, "Bytes on disk of each backup, by kind.")


def _verdicts(rows: list[DrillRow]) -> str:
    head = [("target", ""), ("status", ""), ("measured", "num"), ("target value", "num"),
            ("detail", "")]
    body: list[list[str]] = []
    for d in rows:
        if d.verdicts:
            body.append([f'<th colspan="5" scope="rowgroup" class="group">{_e(d.name)}</th>'])
        body += [[_td(v.name, "name"), f"<td>{_badge(v.status, v.status)}</td>",
                  _td(figure(v.measured, v.unit), "num"), _td(figure(v.target, v.unit), "num"),
                  _td(v.detail or "-")] for v in d.verdicts]
    return "<section><h2>Targets</h2>" + _table("verdicts", head, body) + "</section>"


def _items(rows: list[DrillRow]) -> str:
    parts = ['<section id="timings"><h2>Timings per phase and item</h2>',
             '<p class="none">Items come from the server\'s statement log: data load per '
             "table, build per index, WAL replay. Under pg_restore -j they overlap.</p>"]
    for i, d in enumerate(r for r in rows if r.phases or r.items):
        steps = [("phase", t) for t in d.phases] + [(t.phase, t) for t in d.items]
        longest = max([t.seconds or 0.0 for _, t in steps] + [1e-9])
        head = [("step", ""), ("name", ""), ("seconds", "num"), ("size", "num"), ("", "")]
        body = [[_td(step), _td(t.name, "name"), _td(secs(t.seconds), "num"),
                 _td(size(t.bytes), "num"),
                 f'<td><div class="meter"><span style="width:'
                 f'{100 * (t.seconds or 0.0) / longest:.1f}%"></span></div></td>']
                for step, t in steps]
        parts.append(f"<details open><summary>{_e(d.name)}: RTO {_e(duration(d.restore_seconds))}"
                     f", {len(d.items)} item{'' if len(d.items) == 1 else 's'}</summary>"
                     + _table(f"items-{i}", head, body, "timings") + "</details>")
    return "".join(parts) + "</section>"


def _problems(rows: list[DrillRow]) -> str:
    troubled = [d for d in rows if d.problems]
    body = "".join(
        f"<h3>{_e(d.name)} {_badge('pass', 'ok') if d.ok else _badge('fail', 'FAILED')}</h3>"
        '<ul class="problems">' + "".join(f"<li>{_e(p)}</li>" for p in d.problems) + "</ul>"
        for d in troubled)
    return ('<section id="problems"><h2>Problems</h2>'
            + (body or '<p class="none">None.</p>') + "</section>" + _notes(rows))


def _notes(rows: list[DrillRow]) -> str:
    """Checks that could not run and differences stated (versions), per drill."""
    body = "".join(f"<h3>{_e(d.name)}</h3><ul>"
                   + "".join(f"<li>{_e(n)}</li>" for n in d.notes) + "</ul>"
                   for d in rows if d.notes)
    return ('<section id="notes"><h2>Notes</h2><p>Checks that could not run, and what '
            "differs between source and target without failing (versions).</p>"
            + body + "</section>") if body else ""


def _bench(section: Bench) -> str:
    head = [("mode", ""), ("kind", ""), ("size", ""), ("source", "num"), ("seconds", "num"),
            ("bytes", "num"), ("source per second", "num")]
    runs = [[_td(r.mode, "name"), _td(r.kind), _td(r.size_key, "name"),
             _td(size(r.source_bytes), "num"),
             _td(secs(r.seconds), "num"), _td(size(r.bytes), "num"),
             _td(size(r.source_bytes / r.seconds) + "/s" if r.source_bytes and r.seconds
                 else "-", "num")] for r in section.runs]
    ratio_head = [("ratio", ""), ("what", ""), ("size", ""), ("a", ""), ("a s", "num"),
                  ("b", ""), ("b s", "num"), ("a / b", "num")]
    ratios = [[_td(r.name, "name"), _td(r.what), _td(r.size_key, "name"), _td(r.a, "name"),
               _td(secs(r.a_seconds), "num"), _td(r.b, "name"), _td(secs(r.b_seconds), "num"),
               _td("-" if r.ratio is None else f"{r.ratio:.2f}×", "num")]
              for r in section.ratios]
    series: dict[str, list[tuple[float, float]]] = {}
    for r in section.runs:
        x = r.source_bytes if r.source_bytes is not None else section.sizes.get(r.size_key)
        if x is not None and r.seconds is not None:
            series.setdefault(f"{r.mode} {r.kind}", []).append((x, r.seconds))
    chart = ""
    if series:
        unit, name = _binary_unit(min(x for points in series.values() for x, _ in points))
        svg = charts.lines(
            "chart-scaling", "Time vs size per mode",
            "Seconds each backup or restore mode took at each dataset size.",
            [charts.Series(n, tuple(p), PALETTE[i % len(PALETTE)])
             for i, (n, p) in enumerate(series.items())],
            "source database size", "seconds", lambda v: f"{v / unit:g} {name}",
            lambda v: f"{v:g} s", unit)
        chart = _figure("Time vs size per mode", svg, "One line per mode, labelled with its time "
                        "at the largest size; an axis is logarithmic when its values span more "
                        "than 10×.")
    return ('<section id="bench"><h2>Benchmark</h2>' + _table("bench-runs", head, runs)
            + "<h3>Ratios</h3>" + _table("bench-ratios", ratio_head, ratios)
            + "</section>" + chart)


def html(payload: Payload) -> str:
    """The run as one self-contained HTML5 document."""
    rows = drills(payload)
    section = bench(payload)
    steps = procedures(payload)
    drilled = [_drills(rows), _targets_chart(rows), _phases_chart(rows),
               _sizes_chart(payload, rows), _verdicts(rows), _items(rows), _problems(rows)]
    parts = [_header(payload, rows, steps), _facts(payload), _procedures(steps),
             *(drilled if rows or not steps else []),
             _bench(section) if section is not None else ""]
    title = f"pgvdrill {payload.get('run_id', '?')}: {'ok' if run_ok(payload, rows) else 'FAILED'}"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body><main>",
        *(p for p in parts if p), "</main></body>", "</html>", ""])
