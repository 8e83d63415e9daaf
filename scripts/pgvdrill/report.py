"""Run reports: one directory per run under reports/, machine-readable JSON first."""

from __future__ import annotations

import json
import os
import platform
import secrets
from datetime import UTC, datetime
from pathlib import Path

from pgvdrill.errors import ConfigError

SCHEMA = "pgvdrill.report/1"


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
