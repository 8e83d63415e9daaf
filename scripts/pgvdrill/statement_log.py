"""Per-statement timings from the server's own log, for one tagged client run.

A client tool run with `tagged_env` sets application_name to a unique tag and asks the
server (PGOPTIONS, superuser) to log every statement with its duration. The log line
prefix (epoch with milliseconds, pid, application name) lets `statements` pick exactly
that run's lines, and `items`/`phases` turn them into data-load, index-build and
constraint timings: the server measured them, so pg_restore -j needs no guessing.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from pgvdrill.timing import Item, Phase

PREFIX = "%n [%p] %a: "
_LINE = re.compile(
    r"^(?P<epoch>\d+\.\d+) \[\d+\] (?P<app>[^:]*): LOG:  duration: (?P<ms>[\d.]+) ms  "
    r"statement: (?P<sql>.*)$")
_NAME = r'(?:"(?:[^"]|"")+"|[\w$]+)'
_QUALIFIED = rf"{_NAME}(?:\.{_NAME})?"
_COPY = re.compile(rf"^COPY (?P<table>{_QUALIFIED}) .*FROM stdin", re.S)
_INDEX = re.compile(
    rf"^CREATE (?:UNIQUE )?INDEX (?P<name>{_NAME}) ON (?:ONLY )?(?P<table>{_QUALIFIED})"
    rf" USING (?P<method>\w+)", re.S)
_CONSTRAINT = re.compile(
    rf"^ALTER TABLE (?:ONLY )?(?P<table>{_QUALIFIED})\s+ADD CONSTRAINT (?P<name>{_NAME})"
    r" (?P<kind>PRIMARY KEY|UNIQUE|FOREIGN KEY|CHECK|EXCLUDE)", re.S)


@dataclass(frozen=True)
class Statement:
    end: float  # server clock, seconds since the epoch
    seconds: float
    sql: str

    @property
    def start(self) -> float:
        return self.end - self.seconds


def new_tag(what: str) -> str:
    """A unique application_name for one run of a client tool."""
    return f"pgvdrill-{what}-{secrets.token_hex(4)}"


def _option(value: str) -> str:
    return value.replace("\\", "\\\\").replace(" ", "\\ ")


def tagged_env(tag: str, session: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """libpq environment for a client run whose statements the server logs with timings,
    with `session` settings applied to each of its connections."""
    return {"PGAPPNAME": tag,
            "PGOPTIONS": pgoptions([("log_min_duration_statement", "0"), *session])}


def pgoptions(settings: Sequence[tuple[str, str]]) -> str:
    """PGOPTIONS that set each of `settings` on every connection (spaces escaped)."""
    return " ".join(f"-c {name}={_option(value)}" for name, value in settings)


def statements(log: str, tag: str) -> list[Statement]:
    """The logged statements of the run tagged `tag` (multi-line ones joined)."""
    found: list[Statement] = []
    current: list[str] | None = None
    end = seconds = 0.0

    def flush() -> None:
        if current is not None:
            found.append(Statement(end, seconds, "\n".join(current)))

    for line in log.splitlines():
        if line.startswith("\t") and current is not None:
            current.append(line[1:])
            continue
        flush()
        current = None
        match = _LINE.match(line)
        if match and match["app"] == tag:
            end, seconds = float(match["epoch"]), float(match["ms"]) / 1000
            current = [match["sql"]]
    flush()
    return found


def _unquote(name: str) -> str:
    return ".".join(part[1:-1].replace('""', '"') if part.startswith('"') else part
                    for part in re.findall(_NAME, name))


def items(found: Sequence[Statement]) -> list[Item]:
    """Data load per table, build per index and per constraint, in log order."""
    out: list[Item] = []
    for statement in found:
        if match := _COPY.match(statement.sql):
            out.append(Item("data", _unquote(match["table"]), statement.seconds))
        elif match := _INDEX.match(statement.sql):
            schema = _unquote(match["table"]).rpartition(".")[0]
            name = _unquote(match["name"])
            out.append(Item("index", f"{schema}.{name} ({match['method']})" if schema
                            else f"{name} ({match['method']})", statement.seconds))
        elif match := _CONSTRAINT.match(statement.sql):
            out.append(Item("constraint", f"{_unquote(match['table'])}.{_unquote(match['name'])}"
                                          f" ({match['kind'].lower()})", statement.seconds))
    return out


def phases(found: Sequence[Statement], started: float, ended: float) -> list[Phase]:
    """Consecutive phases of a restore that ran from `started` to `ended` (epoch seconds):
    schema (until the first data load starts), data (until the last one ends), post-data
    (index and constraint builds after that). One `restore` phase if nothing loaded data."""
    loads = [s for s in found if _COPY.match(s.sql)]
    if not loads:
        return [Phase("restore", ended - started)]

    def clip(moment: float) -> float:
        return min(max(moment, started), ended)

    first, last = clip(min(s.start for s in loads)), clip(max(s.end for s in loads))
    return [Phase("schema", first - started), Phase("data", last - first),
            Phase("post-data", ended - last)]

