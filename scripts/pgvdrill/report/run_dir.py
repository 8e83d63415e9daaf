"""A run's report directory: reports/<run-id>/ with report.json (the judged drills, schema
pgvdrill.report/2) written first, then its views; the run's summary line and exit code."""

from __future__ import annotations

import json
import os
import platform
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgvdrill.errors import ConfigError, DrillError, environment_cause
from pgvdrill.policy.fail_on import FailOn, exit_code
from pgvdrill.policy.targets import Targets
from pgvdrill.policy.verdicts import counts, judged
from pgvdrill.report.record import DrillEntry
from pgvdrill.report.views import write_views

SCHEMA = "pgvdrill.report/2"


def run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def new_run_dir(reports_dir: Path, rid: str | None = None) -> Path:
    """Create reports_dir/<run-id>/; `ConfigError` if the directory is not writable."""
    path = reports_dir / (rid or run_id())
    try:
        path.mkdir(parents=True, exist_ok=False)
        probe = path / ".probe"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"cannot write reports to {reports_dir}: {exc.strerror}",
            "choose a writable directory with --reports-dir",
        ) from exc
    return path


def environment() -> dict[str, object]:
    return {"host": platform.node(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "platform": platform.platform()}


def write_json(path: Path, payload: dict[str, object]) -> Path:
    """Write `payload` with the schema tag, atomically (temporary name, then rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"schema": SCHEMA, **payload}, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def build(source: str, run_dir: Path, started: datetime, drills: list[dict[str, Any]],
          targets: Targets, **facts: object) -> dict[str, Any]:
    """A run's report.json payload (reports/README.md): `drills` (as_dict entries with
    "evidence") judged against `targets`; `facts` adds server, dataset and the like."""
    entries = [judged(targets, d) for d in drills]
    return {"schema": SCHEMA, "run_id": run_dir.name, "source": source,
            "started": started.isoformat(), "finished": datetime.now(UTC).isoformat(),
            "environment": environment(), **facts, "targets": targets.as_dict(),
            "ok": all(d.get("ok") is True for d in entries), "verdicts": counts(entries),
            "drills": entries}


def described(exc: BaseException) -> str:
    """An error as a report says it: pgvdrill's own as they print, others with their type;
    with every note (a cleanup that failed after it)."""
    if isinstance(exc, DrillError):
        return str(exc)
    notes = "".join(f"\n  note: {n}" for n in getattr(exc, "__notes__", ()))
    return f"{type(exc).__name__}: {str(exc).strip()}{notes}"


def aborted(exc: BaseException) -> dict[str, Any]:
    """The record of a run that `exc` stopped, for its report: what stopped it and, when
    the machine did (a full disk, a lost server), that cause."""
    why = f"the run stopped: {described(exc)}"
    cause = environment_cause(exc)
    return DrillEntry("run:aborted", "run", False, evidence={}, problems=[why], error=why,
                      environment=cause).as_dict()


def finish(source: str, run_dir: Path, started: datetime, drills: list[dict[str, Any]],
           targets: Targets, fail_on: FailOn, say: Callable[[str], None],
           **facts: object) -> int:
    """Judge and write a drill run (report.json and its views), print its summary line;
    the exit code is the fail-on policy's (policy.fail_on.exit_code)."""
    payload = build(source, run_dir, started, drills, targets, **facts)
    path = write_json(run_dir / "report.json", payload)
    write_views(run_dir, payload, fail_on=fail_on)
    failed = [d for d in payload["drills"] if d["ok"] is not True]
    machine = [d for d in failed if d.get("environment")]
    counts = payload["verdicts"]
    say(f"{'FAILED' if failed else 'ok'}: {len(drills)} drill(s), {len(failed)} failed"
        + (f" ({len(machine)} by the machine, not the backup)" if machine else "")
        + f"; targets: {counts['pass']} pass, {counts['fail']} fail, "
        f"{counts['unknown']} unknown; report: {path}")
    return exit_code(payload["drills"], fail_on)
