"""The README's test commands are the ones CI runs: each lane's command in .ci/run stands
verbatim in the README, and every lane writes its reports where .ci/version-table reads."""

from __future__ import annotations

import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def ci_commands() -> list[str]:
    return [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
            if line.startswith(("pytest ", ".ci/", "scripts/"))]


def test_the_readme_shows_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = ci_commands()
    assert [c for c in commands if c.startswith("pytest ")], ".ci/run runs no pytest lane"
    missing = [command for command in commands if command not in readme]
    assert missing == [], f"the README's CI lanes section lacks {missing}"


def test_every_lane_writes_its_reports_for_the_version_table() -> None:
    lanes = [shlex.split(c) for c in ci_commands() if c.startswith("pytest ")]
    dirs = [words[words.index("--drill-reports") + 1] for words in lanes
            if "--drill-reports" in words]
    assert len(dirs) == len(lanes) and len(set(dirs)) == len(dirs), lanes
    assert all(d.startswith("reports/lanes/") for d in dirs), dirs
