"""`pgvdrill dr-drill` is the DR drill's own command; `pgvdrill drill --config`, its old
spelling, still runs it and says once on stderr which command replaces it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pgvdrill.cli.drill import DEPRECATED


def pgvdrill(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pgvdrill.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_both_spellings_reach_the_dr_drill_and_only_the_old_one_is_deprecated(
        tmp_path: Path) -> None:
    config = tmp_path / "pgvdrill.toml"  # no [source]: the DR drill stops at once, exit 2
    config.write_text(f'[repository]\npath = "{tmp_path / "repo"}"\n')
    (tmp_path / "repo").mkdir(mode=0o700)

    new = pgvdrill("dr-drill", "--config", config, "--kinds", "logical")
    old = pgvdrill("drill", "--config", config, "--kinds", "logical")

    assert new.returncode == old.returncode == 2
    assert "no [source] section" in new.stderr
    assert DEPRECATED not in new.stderr
    assert old.stderr == f"{DEPRECATED}\n{new.stderr}"
    assert "dr-drill --config" in DEPRECATED


def test_dr_drill_is_listed_and_takes_the_dr_options() -> None:
    listed = pgvdrill("--help")
    usage = pgvdrill("dr-drill", "--help")

    assert "dr-drill" in listed.stdout
    for option in ("--config", "--kinds", "--take", "--fail-on", "--recall-threshold",
                   "--reports-dir", "--targets", "--production-size", "--backend"):
        assert option in usage.stdout
