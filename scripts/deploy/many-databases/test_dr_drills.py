"""`pgvdrill dr-drill --config` for one database: its newest backups restored into scratch
servers and compared with the source; the test fails with the drill's exit code and why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXIT_CODES = {1: "a restored database differs from its source",
              2: "bad configuration or input", 3: "an external tool failed",
              4: "a backup is broken", 5: "a restore cannot succeed",
              6: "every restore verified but a documented target was missed"}


def test_dr_drill(config: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pgvdrill.cli", "dr-drill", "--config",
                             str(config)], capture_output=True, text=True, check=False)
    print(result.stdout)  # the drill's progress and report path, shown for failures
    assert result.returncode == 0, (
        f"{config}: exit {result.returncode} "
        f"({EXIT_CODES.get(result.returncode, 'unexpected')})\n{result.stderr[-4000:]}")
