"""`pgvdrill dr-drill`'s provider options, refused where they cannot apply (before any
server is reached: the configured source does not exist)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def pgvdrill(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pgvdrill.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """[source] (never reached), [repository] and [provider.team]."""
    (tmp_path / "repo").mkdir(mode=0o700)
    path = tmp_path / "pgvdrill.toml"
    path.write_text(f'[source]\nconninfo = "host=/nonexistent dbname=x"\n\n'
                    f'[repository]\npath = "{tmp_path / "repo"}"\n\n'
                    '[provider.team]\ntype = "command"\nrestore = "true {datadir}"\n')
    return path


@pytest.mark.parametrize(("args", "said"), [
    (("--backup", "b1"), "--backup and --target-* choose and recover a provider's backup"),
    (("--target-immediate",), "--backup and --target-* choose and recover"),
    (("--provider", "team", "--take"), "--take takes backups into the [repository]"),
    (("--provider", "nobody"), "nobody"),
    (("--provider", "team", "--target-name", "n", "--exclusive"), "--exclusive applies to"),
    (("--provider", "team", "--target-xid", "12a"), "is not a transaction id"),
])
def test_refused_before_anything_runs(config: Path, args: tuple[str, ...], said: str) -> None:
    result = pgvdrill("dr-drill", "--config", config, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert said in result.stderr
    assert "Traceback" not in result.stderr


def test_provider_options_need_a_config() -> None:
    result = pgvdrill("drill", "--provider", "team", "--target-time", "2026-12-01 10:00+00")
    assert result.returncode == 2
    assert "--provider, --target-*: a provider's backups are drilled with --config" in \
        result.stderr
