"""junit.xml of a run: one testcase per drill, for CI systems.

A testcase has at most one outcome element, so the suite's counts are counts of drills:
`<error>` when the drill could not run (it records an `error`); otherwise `<failure>` when
it did not verify, or when a target verdict is one `fail_on` fails on (policy.fail_on:
"fail": fail; "unknown": fail and unknown; "none": never). The message names every reason, the text
lists the problems and the missed targets; `<properties>` carry each verdict's status and
`<system-out>` every verdict's detail.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from pgvdrill.policy.fail_on import FAILING, FailOn
from pgvdrill.report.model import DrillRow, Payload, drills

# characters XML 1.0 cannot carry at all (pg_restore output may hold control characters)
_ILLEGAL = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    return _ILLEGAL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def _testcase(drill: DrillRow, failing: frozenset[str]) -> tuple[ET.Element, str | None]:
    """The drill's testcase and its outcome ("error", "failure" or None)."""
    case = ET.Element("testcase", classname=_xml(drill.kind), name=_xml(drill.name))
    if drill.restore_seconds is not None:
        case.set("time", f"{drill.restore_seconds:.3f}")
    if drill.verdicts:
        props = ET.SubElement(case, "properties")
        for v in drill.verdicts:
            ET.SubElement(props, "property", name=_xml(v.name), value=v.status)
    missed = [v for v in drill.verdicts if v.status in failing]
    reasons = ([] if drill.ok else ["not verified"]) + [f"{v.name} {v.status}" for v in missed]
    lines = [*drill.problems, *(f"{v.name} {v.status}: {v.detail}" for v in missed)]
    outcome = "error" if drill.error else "failure" if reasons else None
    if outcome is not None:
        message = drill.error if drill.error else "; ".join(reasons)
        ET.SubElement(case, outcome, message=_xml(message), type=outcome).text = _xml(
            "\n".join(lines))
    if drill.verdicts:
        ET.SubElement(case, "system-out").text = _xml(
            "\n".join(f"{v.name} {v.status}: {v.detail}" for v in drill.verdicts))
    return case, outcome


def junit(payload: Payload, fail_on: FailOn) -> str:
    """The run as JUnit XML: one testsuite "pgvdrill", one testcase per drill."""
    failing = FAILING[fail_on]
    rows = drills(payload)
    cases = [_testcase(d, failing) for d in rows]
    suite = ET.Element("testsuite", name="pgvdrill", tests=str(len(cases)),
                       failures=str(sum(o == "failure" for _, o in cases)),
                       errors=str(sum(o == "error" for _, o in cases)), skipped="0",
                       time=f"{sum(d.restore_seconds or 0.0 for d in rows):.3f}")
    if isinstance(payload.get("started"), str):
        suite.set("timestamp", _xml(payload["started"]))
    props = ET.SubElement(suite, "properties")
    for key in ("run_id", "source", "schema"):
        if payload.get(key) is not None:
            ET.SubElement(props, "property", name=key, value=_xml(str(payload[key])))
    ET.SubElement(props, "property", name="fail_on", value=fail_on)
    suite.extend(case for case, _ in cases)
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
