"""report.html of the sample run: structure, escaping, and rendering by a real Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pgvdrill.report.html import STATUS_COLOURS, html

SAMPLE = Path(__file__).parent / "data" / "report_sample.json"
PROCEDURES = Path(__file__).parent / "data" / "report_procedures.json"  # a procedures run
CHARTS = ("chart-targets", "chart-phases", "chart-sizes", "chart-scaling")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
HOSTILE = '<script>alert("x")</script>'


@dataclass(frozen=True)
class Element:
    tag: str
    attrs: dict[str, str]
    within: tuple[str, ...]  # the ids of its ancestors and its own

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class Dom(HTMLParser):
    """Asserts that every element is closed, in order; collects elements and texts with
    the ids they sit in."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str]] = []
        self.elements: list[Element] = []
        self.texts: list[tuple[str, tuple[str, ...]]] = []
        self.feed(text)
        self.close()
        assert not self.stack, f"unclosed: {self.stack}"

    def _ids(self) -> tuple[str, ...]:
        return tuple(i for _, i in self.stack if i)

    def _element(self, tag: str, attrs: list[tuple[str, str | None]]) -> str:
        values = {k: v or "" for k, v in attrs}
        self.elements.append(Element(tag, values, (*self._ids(), values.get("id", ""))))
        return values.get("id", "")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ident = self._element(tag, attrs)
        if tag not in VOID:
            self.stack.append((tag, ident))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._element(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1][0] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.append((data.strip(), self._ids()))

    def find(self, tag: str, within: str = "", cls: str = "") -> list[Element]:
        return [e for e in self.elements if e.tag == tag and (not within or within in e.within)
                and (not cls or cls in e.classes)]

    def text(self, within: str) -> list[str]:
        return [t for t, ids in self.texts if within in ids]

    @property
    def ids(self) -> list[str]:
        return [e.attrs["id"] for e in self.elements if "id" in e.attrs]


@pytest.fixture
def payload() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE.read_text())
    return data


def _verdicts(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for d in payload["drills"] for v in d["verdicts"]]


def _backups(payload: dict[str, Any]) -> set[tuple[str, str]]:
    """The backups the sizes chart draws a bar for: each kind and setting with a size."""
    return {(d["kind"], d["backup"]["setting"]) for d in payload["drills"]
            if d.get("backup", {}).get("size_bytes") is not None}


def _series(payload: dict[str, Any]) -> set[tuple[str, str]]:
    """The lines of the scaling chart: one per benchmarked mode and kind."""
    return {(r["mode"], r["kind"]) for r in payload["bench"]["runs"]}


def test_page_is_well_formed_and_self_contained(payload: dict[str, Any]) -> None:
    text = html(payload)
    dom = Dom(text)
    assert text.startswith("<!DOCTYPE html>\n<html lang=\"en\">")
    assert not dom.find("script") and not dom.find("link") and not dom.find("img")
    assert all("src" not in e.attrs and "href" not in e.attrs for e in dom.elements)
    assert text.replace('xmlns="http://www.w3.org/2000/svg"', "").count("http") == 0
    assert text.count("url(") == text.count("url(#chart-targets-hatch)") == 3
    assert len(dom.ids) == len(set(dom.ids))
    assert {"verdict", "facts", "drills", "verdicts", "problems", "bench", "bench-runs",
            "bench-ratios", *CHARTS} <= set(dom.ids)


def test_header_and_drills_table(payload: dict[str, Any]) -> None:
    dom = Dom(html(payload))
    header = " ".join(dom.text("verdict"))
    assert payload["run_id"] in header and "FAILED" in header
    assert "9 of 11 drills restored and verified" in header
    assert all(f"{n} {s}" in header for s, n in payload["verdicts"].items())
    rows = dom.find("tr", "drills")[1:]  # the head row first
    assert len(rows) == len(payload["drills"])
    names = [t for t in dom.text("drills") if t in {d["drill"] for d in payload["drills"]}]
    assert names == [d["drill"] for d in payload["drills"]]
    badges = dom.find("span", "drills", "badge")
    for status, count in payload["verdicts"].items():
        judged = [b for b in badges if f"verdict-{status}" in b.classes and "title" in b.attrs]
        assert len(judged) == count
    assert len([b for b in badges if "title" not in b.attrs]) == 11  # one verified badge each


def test_charts_have_titles_axes_and_a_bar_per_figure(payload: dict[str, Any]) -> None:
    dom = Dom(html(payload))
    for chart in CHARTS:
        (svg,) = dom.find("svg", chart)
        assert svg.attrs["role"] == "img"
        assert dom.text(f"{chart}-title") and dom.text(f"{chart}-desc")
        assert dom.find("text", chart, "axis-label")
    verdicts = _verdicts(payload)
    bars = dom.find("rect", "chart-targets", "bar")
    assert len(bars) == len(verdicts) == 25
    for status in ("pass", "fail"):
        assert len([b for b in bars if f"status-{status}" in b.classes]) == \
            payload["verdicts"][status]
    assert len([b for b in bars if "marker-unknown" in b.classes]) == 3
    assert "unknown: no evidence (floor 2.1 MiB/s)" in " ".join(dom.text("chart-targets"))
    phases = dom.find("rect", "chart-phases", "bar")
    assert [b.attrs["data-name"] for b in phases] == \
        [p["phase"] for d in payload["drills"] for p in d["phases"]]
    assert {"schema", "data", "post-data", "verify", "extract", "copy", "start"} <= \
        set(dom.text("chart-phases"))
    assert len(dom.find("rect", "chart-sizes", "bar")) == len(_backups(payload)) == 8
    assert "source database 135.0 MiB" in dom.text("chart-sizes")
    assert len(dom.find("g", "chart-scaling", "series")) == len(_series(payload)) == 6
    assert len(dom.find("circle", "chart-scaling", "point")) == len(payload["bench"]["runs"])
    assert "source database size (log scale)" in dom.text("chart-scaling")


def test_target_bars_sit_on_their_side_of_the_line(payload: dict[str, Any]) -> None:
    dom = Dom(html(payload))
    (line,) = dom.find("line", "chart-targets", "target-line")
    one = float(line.attrs["x1"])
    for bar in dom.find("rect", "chart-targets", "bar"):
        left, width = float(bar.attrs["x"]), float(bar.attrs["width"])
        if "status-pass" in bar.classes:
            assert left + width == pytest.approx(one) and width >= 6
        elif "status-fail" in bar.classes:
            assert left == pytest.approx(one) and width >= 6
        else:
            assert left < one < left + width


def test_scaling_axis_is_linear_within_ten_times(payload: dict[str, Any]) -> None:
    bench = payload["bench"]
    small = bench["sizes"][0]["source_bytes"]
    bench["runs"] = [dict(r, source_bytes=small * (3 if r["size_key"] != bench["sizes"][0]["key"]
                                                  else 1)) for r in bench["runs"]]
    texts = Dom(html(payload)).text("chart-scaling")
    assert "source database size" in texts
    assert "source database size (log scale)" not in texts


def test_payload_strings_are_escaped(payload: dict[str, Any]) -> None:
    drill = payload["drills"][0]
    drill["drill"] = HOSTILE
    drill["phases"][0]["phase"] = '"><img src=x onerror=alert(1)>'
    drill["items"][0]["item"] = HOSTILE
    drill["verdicts"][0]["detail"] = "</title></svg><script>alert(2)</script>"
    drill["verdicts"][0]["name"] = HOSTILE
    drill["problems"] = [HOSTILE]
    payload["run_id"] = "<b>run</b>"
    payload["bench"]["runs"][0]["mode"] = HOSTILE
    text = html(payload)
    dom = Dom(text)
    assert "<script" not in text.lower() and "<img" not in text.lower()
    assert not dom.find("script") and not dom.find("img") and not dom.find("b")
    assert HOSTILE in dom.text("drills") and HOSTILE in dom.text("problems")
    assert any(HOSTILE in t for t in dom.text("chart-targets"))
    assert any(HOSTILE in t for t in dom.text("chart-scaling"))
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text


def test_procedures_section_has_a_verdict_per_step() -> None:
    payload = json.loads(PROCEDURES.read_text())
    dom = Dom(html(payload))
    assert {"verdict", "facts", "procedures", "procedure-steps", "procedure-commands"} <= \
        set(dom.ids)
    assert not {"drills", "verdicts", "problems", "timings"} & set(dom.ids)  # no drills run
    header = dom.text("verdict")
    assert header[1] == "ok" and "7 procedure steps:" in header and "0 of 0" not in header
    steps = payload["procedures"]
    rows = dom.find("tr", "procedure-steps")[1:]
    assert len(rows) == len(steps) == len(dom.find("tr", "procedure-commands")) - 1
    badges = dom.find("span", "procedure-steps", "badge")
    shown = {"verdict-pass": "works", "verdict-fail": "fails", "verdict-unsafe": "unsafe"}
    assert [shown[next(c for c in b.classes if c in shown)] for b in badges] == \
        [s["verdict"] for s in steps]
    texts = dom.text("procedure-steps")
    assert all(s["why"] in texts and s["step"] in texts for s in steps)
    assert dom.find("pre", "procedure-commands", "command")
    assert any(t.startswith("cat > $PGDATA/recovery.conf << EOF\nrestore_command")
               for t in dom.text("procedure-commands"))


def test_procedures_beside_drills_and_escaped(payload: dict[str, Any]) -> None:
    steps = json.loads(PROCEDURES.read_text())["procedures"]
    steps[0].update(why=HOSTILE, command=f"pg_dump {HOSTILE}", step=HOSTILE, verdict="odd")
    text = html({**payload, "procedures": steps})
    dom = Dom(text)
    assert "<script" not in text.lower() and not dom.find("script")
    assert HOSTILE in dom.text("procedure-steps") and "drills" in dom.ids
    assert "9 of 11 drills restored and verified" in " ".join(dom.text("verdict"))
    assert len([b for b in dom.find("span", "procedure-steps", "badge")
                if "verdict-unknown" in b.classes]) == 1
    assert dom.ids.index("procedures") < dom.ids.index("drills")


@pytest.mark.parametrize("partial", [
    {},
    {"procedures": [{}, None, {"verdict": "works", "seconds": "x"}]},
    {"drills": [{"drill": "x", "kind": "logical", "ok": False, "error": "boom"}]},
    {"drills": [{"verdicts": [{"status": "unknown", "unit": "B/s"}], "phases": [{"seconds": 1}],
                 "backup": {"size_bytes": 0}}],
     "bench": {"runs": [{"source_bytes": 5, "seconds": 0}], "ratios": [{}]}},
])
def test_partial_payloads_render(partial: dict[str, Any]) -> None:
    dom = Dom(html(partial))
    assert ("procedures" if "procedures" in partial else "drills") in dom.ids
    assert "FAILED" in " ".join(dom.text("verdict"))
    if not partial:
        assert not set(CHARTS) & set(dom.ids) and "None." in dom.text("problems")


# -- a real browser ---------------------------------------------------------------------------

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--no-first-run", "--hide-scrollbars",
         "--window-size=1280,2000"]


def _missing(what: str) -> None:
    """Skip for a missing tool, or fail when PGVDRILL_REQUIRE_CHROMIUM=1 says it must run."""
    if os.environ.get("PGVDRILL_REQUIRE_CHROMIUM") == "1":
        pytest.fail(what)
    pytest.skip(what)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The sample's report.html as Chromium renders it: its DOM and a 1280x2000 screenshot."""
    binary = shutil.which("chromium")
    if binary is None:
        _missing("install Debian's chromium package")
    tmp = tmp_path_factory.mktemp("chromium")
    page, shot = tmp / "report.html", tmp / "report.png"
    page.write_text(html(json.loads(SAMPLE.read_text())), encoding="utf-8")

    def chromium(*extra: str) -> str:
        proc = subprocess.run(
            [str(binary), *FLAGS, f"--user-data-dir={tmp / 'profile'}", *extra, page.as_uri()],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "HOME": str(tmp)})
        assert proc.returncode == 0, f"chromium exited {proc.returncode}: {proc.stderr[-3000:]}"
        return proc.stdout

    chromium(f"--screenshot={shot}")
    yield chromium("--dump-dom"), shot


def test_chromium_builds_the_tables_and_charts(rendered: tuple[str, Path],
                                               payload: dict[str, Any]) -> None:
    dom = Dom(rendered[0])
    assert dom.text("verdict")[0] == f"pgvdrill restore drill {payload['run_id']}"
    assert len(dom.find("tr", "drills")) == 1 + len(payload["drills"])
    for chart in CHARTS:
        assert dom.find("svg", chart)
    assert len(dom.find("rect", "chart-targets", "bar")) == len(_verdicts(payload))
    assert len(dom.find("rect", "chart-phases", "bar")) == \
        sum(len(d["phases"]) for d in payload["drills"])
    assert len(dom.find("rect", "chart-sizes", "bar")) == len(_backups(payload))
    assert len(dom.find("polyline", "chart-scaling", "line")) == len(_series(payload))


def test_chromium_paints_the_charts(rendered: tuple[str, Path]) -> None:
    try:
        from PIL import Image
    except ImportError:
        _missing("pip install pillow (the test extras)")
    with Image.open(rendered[1]) as image:
        rgb = image.convert("RGB")
    assert rgb.size == (1280, 2000)
    colours = rgb.getcolors(maxcolors=1280 * 2000) or []
    total = 1280 * 2000

    def near(hex_colour: str) -> int:
        want = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
        return sum(n for n, c in colours if max(abs(a - b) for a, b in zip(c, want,
                                                                           strict=True)) <= 6)

    blank = sum(n for n, c in colours if min(c) >= 250)
    assert (total - blank) / total > 0.08, "the page rendered (nearly) blank"
    assert near(STATUS_COLOURS["pass"]) > 5000, "no pass bars painted"
    assert near(STATUS_COLOURS["fail"]) > 150, "no fail bars painted"
