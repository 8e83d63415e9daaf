"""One disaster-recovery drill per database, in parallel with pytest-xdist: every *.toml in
--pgvdrill-configs is a pgvdrill configuration (its own [source], [repository] and
[drill] reports_dir) and becomes one test.

    pytest scripts/deploy/many-databases -n 4 --pgvdrill-configs /etc/pgvdrill/databases
"""

from __future__ import annotations

from pathlib import Path

import pytest

DEFAULT_CONFIGS = Path("/etc/pgvdrill/databases")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--pgvdrill-configs", type=Path, default=DEFAULT_CONFIGS,
                     help="directory of pgvdrill configurations, one per database "
                          f"(default {DEFAULT_CONFIGS})")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "config" not in metafunc.fixturenames:
        return
    directory: Path = metafunc.config.getoption("pgvdrill_configs")
    configs = sorted(directory.glob("*.toml"))
    if not configs:
        raise pytest.UsageError(f"no *.toml in {directory}: put one pgvdrill configuration "
                                "per database there, or pass --pgvdrill-configs DIR")
    metafunc.parametrize("config", configs, ids=[c.stem for c in configs])
