"""A drill's entry in report.json (schema pgvdrill.report/2, reports/README.md): built by
every drill result when it is written, parsed from the file when it is read.

A field left None is not written; parsing never raises on a partial entry (what is not of
its declared shape is left out).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

Record = Mapping[str, Any]


def mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def listing(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class DrillEntry:
    """One entry of report.json's `drills`, its keys in the order they are written."""

    drill: str  # "<kind>:<what>", e.g. "logical:custom-z9->fresh", "physical:<catalog id>"
    kind: str  # logical, physical, pitr; run for a run that stopped
    ok: bool
    # the server the drill restored into: {"postgresql": "16.2", "pgvector": "0.6.2", ...}
    server: Record | None = None
    backup: Record | None = None  # its "setting" names the backup
    restore: Record | None = None  # its "setting" names the restore; "seconds" its time
    measures: Record | None = None
    phases: Sequence[Record] | None = None  # {"phase", "seconds"}
    items: Sequence[Record] | None = None  # {"phase", "item", "seconds", "bytes", "segments"}
    evidence: Record | None = None  # what the targets judge (policy.verdicts.evaluate)
    verification: Record | None = None  # {"checks": [{"name", "ok", "problems"}], ...}
    problems: list[str] | None = None
    error: str | None = None  # what stopped the drill
    environment: str | None = None  # the machine's part in it (a full disk, a lost server)
    neutralised: Record | None = None  # what a restored copy's start changed
    target_kind: str | None = None  # a `pgvdrill drill --pitr` kind
    verdicts: Sequence[Record] | None = None  # added when the entry is judged

    def as_dict(self) -> dict[str, Any]:
        """The entry as report.json holds it."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    @classmethod
    def parse(cls, data: object) -> DrillEntry:
        """An entry read from a report (or built as a dict): its fields of the declared shape,
        a missing name "?" and its kind the name's prefix."""
        found = mapping(data)
        name = str(found.get("drill") or "?")
        return cls(
            drill=name, kind=str(found.get("kind") or name.split(":", 1)[0]),
            ok=found.get("ok") is True,
            **{key: _parsed(key, found[key]) for key in _OPTIONAL if key in found})


_MAPPINGS = ("server", "backup", "restore", "measures", "evidence", "verification", "neutralised")
_LISTS = ("phases", "items", "verdicts")
_OPTIONAL = (*_MAPPINGS, *_LISTS, "problems", "error", "environment", "target_kind")


def _parsed(key: str, value: object) -> Any:
    if key in _MAPPINGS:
        return mapping(value)
    if key in _LISTS:
        return [mapping(v) for v in listing(value)]
    if key == "problems":
        return [str(p) for p in listing(value)]
    return str(value) if value else None
