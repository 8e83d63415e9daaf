"""The Docker lane's DR drill of a production pgvdrill did not build: a pgvector container
made by the image's own entrypoint, its configuration outside the data directory, drilled
by `pgvdrill drill --config --take --backend docker` while the application writes; the
scratch copies run in containers, production is only read."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.cli import Cli
from fixtures.options import DrillOptions
from fixtures.production import assert_untouched, check_results, read_report
from fixtures.production_container import IMAGE_DEFAULT, ContainerProduction

pytestmark = pytest.mark.docker


def test_dr_drill_of_a_production_container_leaves_it_untouched(
        container_production: ContainerProduction, pgvdrill_cli: Cli, cli_cache: Path,
        options: DrillOptions, tmp_path: Path) -> None:
    production = container_production
    assert not (production.datadir / "postgresql.conf").exists()  # Debian's layout
    config = production.write_config(tmp_path, "pgpass")
    before = production.fingerprint()

    writer = production.writer()
    try:
        result = pgvdrill_cli("drill", "--config", config, "--take", "--backend", "docker",
                              "--image", options.image or IMAGE_DEFAULT,
                              "--cache-dir", cli_cache, "--reports-dir", "reports")
    finally:
        written = writer.stop()
    production.quiesce()
    verified = pgvdrill_cli("verify", "--all", "--config", config)

    assert written > 0
    assert result.returncode == 0, result.stdout + result.stderr
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = read_report(tmp_path)
    assert [(d["kind"], d["ok"]) for d in report["drills"]] == \
        [("logical", True), ("physical", True)]
    assert report["server"]["backend"] == "docker"
    logical, physical = report["drills"]
    assert all(check_results(logical).values()) and all(check_results(physical).values())
    assert "no postgresql.conf" in result.stdout  # the copy says what it ran on
    assert_untouched(before, production.fingerprint())
