"""Attacks on `pgvdrill upgrade-drill`'s refusals (issue 15), which come before any server
starts: a downgrade in any disguise is refused with exit 5 and a message naming both
versions, never a traceback, never a drill that runs and "passes"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.installed import PG16, PG183


def _upgrade_drill(tmp_path: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pgvdrill.cli", "upgrade-drill",
                           "--reports-dir", tmp_path / "reports", "--rows", "300",
                           *map(str, args)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, check=False)


def _refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    said = result.stdout + result.stderr
    assert result.returncode == 5, said
    assert "Traceback" not in said
    for word in words:
        assert word in result.stderr, (word, said)


@pytest.fixture(autouse=True)
def _installed() -> None:
    for bindir in (PG16, PG183):
        if not (bindir / "postgres").is_file():
            pytest.skip(f"{bindir} is not installed (scripts/install-installations.sh)")


def test_18_6_to_16_2_is_refused_as_a_downgrade(tmp_path: Path) -> None:
    _refused(_upgrade_drill(tmp_path, "--from", "embedded", "--to", PG16), "18.6", "16.2",
             "downgrade")


def test_a_target_named_like_a_newer_version_is_judged_by_what_it_runs(
        tmp_path: Path) -> None:
    """--to .../pg19/bin, a symlink to the 16.2 installation: still a downgrade from 18.3."""
    link = tmp_path / "pg19"
    link.symlink_to(PG16, target_is_directory=True)

    _refused(_upgrade_drill(tmp_path, "--from", PG183, "--to", link), "18.3", "16.2",
             "downgrade")


def test_pg_upgrade_within_one_major_is_refused(tmp_path: Path) -> None:
    """18.3 -> 18.6 is a minor update (new binaries), not a pg_upgrade."""
    _refused(_upgrade_drill(tmp_path, "--from", PG183, "--to", "embedded", "--mode",
                            "pg_upgrade"), "18.3", "18.6")


def test_a_dump_upgrade_that_downgrades_pgvector_is_refused(tmp_path: Path) -> None:
    """18.6/pgvector 0.8.6 -> 18.3/pgvector 0.8.2 by dump: the extension would go back."""
    _refused(_upgrade_drill(tmp_path, "--from", "embedded", "--to", PG183, "--mode", "dump"),
             "0.8.6", "0.8.2")


def test_a_refused_upgrade_starts_nothing_and_writes_no_passing_report(tmp_path: Path) -> None:
    result = _upgrade_drill(tmp_path, "--from", "embedded", "--to", PG16)

    assert result.returncode == 5, result.stdout + result.stderr
    for report in (tmp_path / "reports").rglob("report.json"):
        assert '"ok": true' not in report.read_text(), report
