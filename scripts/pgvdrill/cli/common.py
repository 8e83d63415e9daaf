"""Registration of the production subcommands, and what they share: --config."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from pgvdrill.config import Config, load_config
from pgvdrill.errors import ConfigError
from pgvdrill.files.trust import safe_directory
from pgvdrill.proc import runner

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
AddBackendOptions: TypeAlias = Callable[[argparse.ArgumentParser], None]
Handler: TypeAlias = Callable[[argparse.Namespace], int]
Register: TypeAlias = Callable[[SubParsers, AddBackendOptions], dict[str, Handler]]

CONFIG_ENV = "PGVDRILL_CONFIG"
CONFIG_PLACES = (Path("pgvdrill.toml"), Path("/etc/pgvdrill/pgvdrill.toml"))

# each production module appends its register function here (see register_all)
REGISTRARS: list[Register] = []


def register_all(sub: SubParsers, add_backend_options: AddBackendOptions
                 ) -> dict[str, Handler]:
    """Add every production subcommand to `sub`; their handlers by command name."""
    from pgvdrill.ops import registry  # noqa: F401  (imports the modules that register)

    handlers: dict[str, Handler] = {}
    for register in REGISTRARS:
        handlers.update(register(sub, add_backend_options))
    return handlers


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path,
                        help=f"the pgvdrill TOML file (default: ${CONFIG_ENV}, then "
                             f"{', then '.join(str(p) for p in CONFIG_PLACES)}; see "
                             "pgvdrill.example.toml)")


def config_from(args: argparse.Namespace) -> Config:
    """The configuration named by --config, $PGVDRILL_CONFIG or found in its default places;
    its [limits] tool_timeout becomes the runner's limit for long-running tools."""
    path = args.config or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if path is None:
        path = next((p for p in CONFIG_PLACES if p.is_file() and _searchable(p)), None)
    if path is None:
        raise ConfigError("no configuration file",
                          f"pass --config FILE, set {CONFIG_ENV}, or create "
                          f"{' or '.join(str(p) for p in CONFIG_PLACES)} "
                          "(start from pgvdrill.example.toml)")
    config = load_config(path)
    runner.set_tool_timeout(config.limits.tool_timeout, f"[limits] tool_timeout of {path}")
    return config


def _searchable(found: Path) -> bool:
    """Whether a configuration found in a default place may be used: one in a directory
    other users can write (e.g. ./pgvdrill.toml in /tmp) could be theirs, so it is
    skipped with a warning on stderr, as if absent. An explicit --config is never skipped
    (load_config refuses it if it is unsafe)."""
    unsafe = safe_directory(found.absolute().parent)
    if unsafe:
        print(f"pgvdrill: warning: ignoring {found.absolute()}: {unsafe}, so the file may "
              "not be yours; pass --config to use a configuration there", file=sys.stderr)
    return unsafe is None


def say(line: str) -> None:
    """Print one progress or result line at once (jobs' logs interleave with tools')."""
    print(line, flush=True)


def positive_int(value: str) -> int:
    """argparse type: an integer > 0."""
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value}")
    return number
