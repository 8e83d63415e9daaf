"""Small inline SVG charts for report.html: horizontal (stacked) bars, measured-vs-target
ratios around a 1x line, and lines over a (log) size axis.

Strings in, SVG text out: no scripts, no external resources. Every chart has a <title> and
a <desc>, axis labels and its values written as text; every mark has a tooltip <title>.
Callers pass plain text; it is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 1100
LABEL_END = 270  # label column: 0..LABEL_END, right-aligned
PLOT_START, PLOT_END = 285, WIDTH - 270  # then a note column to the right edge
ROW, BAR = 21, 14  # row pitch and bar height, px
TOP = 36  # room above the first row (legend or zone captions)
AXIS = 44  # room below the last row for ticks and the axis label
LABEL_CHARS = 42
MIN_BAR = 6  # px: a ratio bar stays visible however close it is to the target

Format = Callable[[float], str]


def _e(text: str) -> str:
    return escape(text, quote=True)


def _clip(text: str, chars: int = LABEL_CHARS) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


@dataclass(frozen=True)
class Scale:
    """Values lo..hi onto pixels start..end, linearly or on log10."""

    lo: float
    hi: float
    log: bool
    start: float
    end: float
    ticks: tuple[float, ...]

    def at(self, value: float) -> float:
        if self.log:
            value = min(max(value, self.lo), self.hi)
            frac = math.log10(value / self.lo) / math.log10(self.hi / self.lo)
        else:
            frac = (value - self.lo) / (self.hi - self.lo)
        return round(self.start + min(max(frac, 0.0), 1.0) * (self.end - self.start), 1)


def linear(hi: float, start: float, end: float, unit: float = 1.0) -> Scale:
    """0..hi rounded up to a 1-2-5 step in `unit`s (e.g. MiB) with at most 6 intervals."""
    span = max(hi / unit, 1e-9)
    step = next(m * 10.0**e for e in range(math.floor(math.log10(span)) - 1, 400)
                for m in (1, 2, 5) if span / (m * 10.0**e) <= 6)
    count = math.ceil(span / step - 1e-9)
    return Scale(0.0, count * step * unit, False, start, end,
                 tuple(i * step * unit for i in range(count + 1)))


def logarithmic(lo: float, hi: float, start: float, end: float, unit: float = 1.0) -> Scale:
    """lo..hi widened to 1-2-5 marks in `unit`s, ticked at each mark (each decade when
    there are more than 8 marks)."""
    lo, hi = max(lo, 1e-12), max(hi, lo * 1.0001)
    first, last = math.floor(math.log10(lo / unit)) - 1, math.ceil(math.log10(hi / unit)) + 1
    marks = [m * 10.0**e * unit for e in range(first, last + 1) for m in (1, 2, 5)]
    low = max(m for m in marks if m <= lo * (1 + 1e-9))
    high = min(m for m in marks if m >= hi * (1 - 1e-9))
    ticks = [m for m in marks if low <= m <= high]
    if len(ticks) > 8:
        ticks = [m for m in ticks if f"{m / unit:e}".startswith("1")]
    return Scale(low, high, True, start, end, tuple(ticks))


def _svg(chart_id: str, title: str, desc: str, height: float, body: list[str]) -> str:
    return "\n".join([
        f'<svg id="{_e(chart_id)}" class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'role="img" aria-labelledby="{_e(chart_id)}-title {_e(chart_id)}-desc" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" width="{WIDTH}" height="{height:.0f}">',
        f'<title id="{_e(chart_id)}-title">{_e(title)}</title>',
        f'<desc id="{_e(chart_id)}-desc">{_e(desc)}</desc>',
        *body, "</svg>"])


def _text(x: float, y: float, text: str, cls: str = "", anchor: str = "start") -> str:
    extra = f' class="{_e(cls)}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{_e(text)}</text>'


def _x_axis(scale: Scale, top: float, bottom: float, fmt: Format, label: str) -> list[str]:
    """Grid lines at the ticks, tick labels under them, the axis label centred below."""
    out = [f'<line class="axis" x1="{scale.start}" y1="{bottom}" x2="{scale.end}" '
           f'y2="{bottom}"/>']
    for tick in scale.ticks:
        x = scale.at(tick)
        out += [f'<line class="grid" x1="{x}" y1="{top}" x2="{x}" y2="{bottom}"/>',
                _text(x, bottom + 17, fmt(tick), "tick", "middle")]
    out.append(_text((scale.start + scale.end) / 2, bottom + 35, label, "axis-label", "middle"))
    return out


def _legend(entries: Sequence[tuple[str, str]], y: float) -> list[str]:
    out, x = [], float(PLOT_START)
    for name, colour in entries:
        out += [f'<rect class="swatch" x="{x:.1f}" y="{y - 10}" width="12" height="12" '
                f'fill="{_e(colour)}"/>', _text(x + 16, y, name, "legend")]
        x += 28 + 7 * len(name)
    return out


@dataclass(frozen=True)
class Segment:
    """One part of a bar: its legend name, its value, its fill and its tooltip."""

    name: str
    value: float
    colour: str
    tip: str


@dataclass(frozen=True)
class BarRow:
    """One bar: its label, its segments left to right, the note written after it."""

    label: str
    segments: tuple[Segment, ...]
    note: str


def hbars(chart_id: str, title: str, desc: str, rows: Sequence[BarRow], axis_label: str,
          fmt: Format, unit: float = 1.0, legend: Sequence[tuple[str, str]] = (),
          reference: tuple[str, float] | None = None) -> str:
    """Horizontal bars, stacked when a row has several segments, on a linear axis from 0;
    an optional dashed reference line (label, value)."""
    totals = [sum(s.value for s in r.segments) for r in rows]
    top_value = max([*totals, reference[1] if reference else 0.0, 1e-9])
    scale = linear(top_value, PLOT_START, PLOT_END, unit)
    bottom = TOP + ROW * len(rows) + 6
    body = _x_axis(scale, TOP - 6, bottom, fmt, axis_label) + _legend(legend, 16)
    for i, (row, total) in enumerate(zip(rows, totals, strict=True)):
        y = TOP + ROW * i
        body.append(f"<g class=\"row\"><title>{_e(row.label)}</title>"
                    + _text(LABEL_END, y + BAR - 3, _clip(row.label), "label", "end") + "</g>")
        left = 0.0
        for seg in row.segments:
            x0, x1 = scale.at(left), scale.at(left + seg.value)
            body.append(f'<rect class="bar" data-name="{_e(seg.name)}" x="{x0}" y="{y}" '
                        f'width="{max(x1 - x0, 0.5):.1f}" height="{BAR}" '
                        f'fill="{_e(seg.colour)}"><title>{_e(seg.tip)}</title></rect>')
            left += seg.value
        body.append(_text(scale.at(total) + 6, y + BAR - 3, row.note, "note"))
    if reference:
        x = scale.at(reference[1])
        body += [f'<line class="reference" x1="{x}" y1="{TOP - 12}" x2="{x}" y2="{bottom}"/>',
                 _text(x - 4, TOP - 16, reference[0], "note", "end")]
    return _svg(chart_id, title, desc, bottom + AXIS, body)


@dataclass(frozen=True)
class RatioRow:
    """How a measurement stands to its target: ratio > 1 is worse, None is unknown."""

    label: str
    ratio: float | None
    status: str
    note: str


def ratios(chart_id: str, title: str, desc: str,
           groups: Sequence[tuple[str, Sequence[RatioRow]]], colours: dict[str, str],
           axis_label: str) -> str:
    """Bars from the 1x target line to each ratio on a log axis: left of the line meets the
    target, right misses it; an unknown is a hatched marker on the line."""
    known = [r.ratio for _, rows in groups for r in rows if r.ratio is not None]
    finite = [r for r in known if 0 < r < math.inf]
    scale = logarithmic(max(min([*finite, 0.1]), 1e-6), min(max([*finite, 10.0]), 1e6),
                        PLOT_START, PLOT_END)
    count = sum(1 + len(rows) for _, rows in groups)
    bottom = TOP + ROW * count + 6
    one = scale.at(1.0)
    hatch = f"{chart_id}-hatch"
    body = [
        f'<defs><pattern id="{_e(hatch)}" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" '
        f'fill="{_e(colours["unknown"])}" opacity="0.35"/><line x1="0" y1="0" x2="0" y2="6" '
        f'stroke="{_e(colours["unknown"])}" stroke-width="3"/></pattern></defs>',
        f'<rect class="zone-pass" x="{PLOT_START}" y="{TOP - 6}" width="{one - PLOT_START}" '
        f'height="{bottom - TOP + 6}"/>',
        f'<rect class="zone-fail" x="{one}" y="{TOP - 6}" width="{PLOT_END - one}" '
        f'height="{bottom - TOP + 6}"/>',
        _text(one - 8, TOP - 14, "◀ meets target", "zone-caption", "end"),
        _text(one + 8, TOP - 14, "misses target ▶", "zone-caption"),
        *_x_axis(scale, TOP - 6, bottom, lambda v: f"{v:g}×", axis_label),
    ]
    y = float(TOP)
    for group, rows in groups:
        body.append(_text(8, y + BAR - 3, _clip(group, 60), "group"))
        y += ROW
        for row in rows:
            body.append(_text(LABEL_END, y + BAR - 3, _clip(row.label), "label", "end"))
            tip = f"{group} {row.label}: {row.note}"
            colour = colours.get(row.status, colours["unknown"])
            if row.ratio is None:
                body.append(f'<rect class="bar marker-unknown" x="{one - 9}" y="{y}" '
                            f'width="18" height="{BAR}" fill="url(#{_e(hatch)})" '
                            f'stroke="{_e(colour)}"><title>{_e(tip)}</title></rect>')
                end = one + 9
            else:  # at least MIN_BAR wide, on its side of the line, however close to 1x
                x = scale.at(row.ratio)
                x = min(x, one - MIN_BAR) if x <= one else max(x, one + MIN_BAR)
                end = max(x, one)
                body.append(f'<rect class="bar status-{_e(row.status)}" x="{min(x, one)}" '
                            f'y="{y}" width="{abs(x - one):.1f}" height="{BAR}" '
                            f'fill="{_e(colour)}"><title>{_e(tip)}</title></rect>')
            body.append(_text(end + 6, y + BAR - 3, row.note, f"note note-{row.status}"))
            y += ROW
    body.append(f'<line class="target-line" x1="{one}" y1="{TOP - 10}" x2="{one}" '
                f'y2="{bottom}"/>')
    return _svg(chart_id, title, desc, bottom + AXIS, body)


@dataclass(frozen=True)
class Series:
    name: str
    points: tuple[tuple[float, float], ...]
    colour: str


def _axis_scale(values: Sequence[float], start: float, end: float, unit: float) -> Scale:
    """Log when the positive values span more than 10x, else linear from 0."""
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 10:
        return logarithmic(min(positive), max(positive), start, end, unit)
    return linear(max([*values, 1e-9]), start, end, unit)


def lines(chart_id: str, title: str, desc: str, series: Sequence[Series],
          x_label: str, y_label: str, x_fmt: Format, y_fmt: Format,
          x_unit: float = 1.0) -> str:
    """One line per series, labelled with its name and last value at its right end; x
    log-scaled when it spans > 10x, y too."""
    height, left, right, top, bottom = 420, 90, WIDTH - 260, 20, 360
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points]
    sx = _axis_scale(xs, left, right, x_unit)
    sy = _axis_scale(ys, bottom, top, 1.0)
    body = _x_axis(sx, top, bottom, x_fmt, x_label + (" (log scale)" if sx.log else ""))
    body.append(f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}"/>')
    for tick in sy.ticks:
        y = sy.at(tick)
        body += [f'<line class="grid" x1="{left}" y1="{y}" x2="{right}" y2="{y}"/>',
                 _text(left - 6, y + 4, y_fmt(tick), "tick", "end")]
    body.append(f'<text class="axis-label" transform="translate(18 {(top + bottom) / 2}) '
                f'rotate(-90)" text-anchor="middle">'
                f'{_e(y_label + (" (log scale)" if sy.log else ""))}</text>')
    ends: list[tuple[float, float, str, str]] = []  # the series' end labels: y, x, text
    for s in series:
        points = sorted(s.points)
        path = " ".join(f"{sx.at(x)},{sy.at(y)}" for x, y in points)
        body.append(f'<g class="series" data-name="{_e(s.name)}"><title>{_e(s.name)}</title>'
                    f'<polyline class="line" points="{path}" stroke="{_e(s.colour)}"/>')
        for x, y in points:
            body.append(f'<circle class="point" cx="{sx.at(x)}" cy="{sy.at(y)}" r="4" '
                        f'fill="{_e(s.colour)}"><title>{_e(s.name)}: {_e(x_fmt(x))}, '
                        f"{_e(y_fmt(y))}</title></circle>")
        body.append("</g>")
        if points:
            x, y = points[-1]
            ends.append((sy.at(y), sx.at(x), f"{_clip(s.name, 26)} {y_fmt(y)}", s.colour))
    low = 0.0
    for y, x, label, colour in sorted(ends):  # pushed down until they no longer overlap
        low = max(y + 4, low + 14)
        body += [f'<line class="leader" x1="{x + 5:.1f}" y1="{y:.1f}" x2="{x + 14:.1f}" '
                 f'y2="{low - 4:.1f}" stroke="{_e(colour)}" stroke-width="2"/>',
                 _text(x + 17, low, label, "legend")]
    return _svg(chart_id, title, desc, height, body)
