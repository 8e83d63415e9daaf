"""The README's version table is generated from the lanes' reports (fixed reports here),
and the README holds exactly what the generator makes of the summaries in docs/versions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pgvdrill.report.version_table import BEGIN, COMMAND, END, main, replace_block, table

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "version_table"
REPORTS = [DATA / "pg16.json", DATA / "embedded.json"]  # a lane's order does not matter

EXPECTED = ("| drill file | PostgreSQL 18.6, pgvector 0.8.6 (embedded) "
            "| PostgreSQL 16.2, pgvector 0.6.2 (system) |\n") + """\
|---|---|---|
| test_logical.py | 1 passed, 1 xfailed | 1 passed |
| test_physical.py | 1 passed | 1 failed, 1 skipped |

PostgreSQL 18.6, pgvector 0.8.6:
- nothing skipped, no check unknown

PostgreSQL 16.2, pgvector 0.6.2:
- skipped: test_physical.py, 1 test(s): needs PostgreSQL 17 or later
- unknown: amcheck in 2 drill(s): PostgreSQL 16.2 does not offer the amcheck extension
"""


def test_the_table_of_two_lanes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(p) for p in REPORTS]) == 0
    assert capsys.readouterr().out == EXPECTED


def test_saved_summaries_make_the_same_table(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--save", str(tmp_path), *map(str, REPORTS)]) == 0
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert saved == ["embedded-18.6-0.8.6.json", "system-16.2-0.6.2.json"]
    assert main([str(tmp_path / name) for name in saved]) == 0
    assert capsys.readouterr().out == EXPECTED


def test_the_readme_block_is_rewritten_between_its_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{BEGIN} `...` -->\nold table\n{END}\n\nafter\n")
    assert main(["--readme", str(readme), *map(str, REPORTS)]) == 0
    assert readme.read_text() == f"# x\n\n{BEGIN} `...` -->\n{EXPECTED}{END}\n\nafter\n"


def test_the_readme_holds_the_table_of_docs_versions() -> None:
    """The README's block is the generator's output from the committed lane summaries
    (CI's lanes write them: .ci/version-table), under a note naming that command."""
    readme = (ROOT / "README.md").read_text()
    summaries = sorted((ROOT / "docs" / "versions").glob("*.json"))
    lanes = [json.loads(path.read_text()) for path in summaries]
    assert replace_block(readme, table(lanes)) == readme
    assert f"{BEGIN} `{COMMAND}`" in readme


def test_no_block_and_bad_input_are_clean_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no version table block"):
        replace_block("# no markers\n", "x")
    bad = tmp_path / "report.json"
    bad.write_text("{not json")
    done = subprocess.run([sys.executable, "-m", "pgvdrill.report.version_table", str(bad)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{bad}: not a report.json or summary" in done.stderr
    bad.write_text(json.dumps({"drills": []}))
    assert main([str(bad)]) == 2
    assert main(["--save"]) == 2 and main(["--bogus", str(bad)]) == 2 and main([]) == 2
