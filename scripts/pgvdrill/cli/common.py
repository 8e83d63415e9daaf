"""What the CLI's commands share: the command table's entry type, --config, the backend
options, progress output and argparse types."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from pgvdrill.backends import BACKENDS, BackendOptions, default_cache_dir, default_workdir
from pgvdrill.cluster.docker_image import DEFAULT_TAG
from pgvdrill.config import CONFIG_ENV, CONFIG_PLACES, VERSION, Drill

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler: TypeAlias = Callable[[argparse.Namespace], int]
DRILL_DEFAULTS = Drill()  # [drill] of a configuration that does not set it, or of none


@dataclass(frozen=True)
class Command:
    """One entry of the command table: its name, what adds its parser, what runs it."""

    name: str
    add_parser: Callable[[SubParsers], None]
    run: Handler


def command_parser(sub: SubParsers, name: str, help_text: str, description: str,
                   epilog: str) -> argparse.ArgumentParser:
    """A command's parser, its description and epilog shown as written (line breaks kept)."""
    return sub.add_parser(name, help=help_text, description=description, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_switches(parser: argparse.ArgumentParser, switches: dict[str, str]) -> None:
    """Add on/off options (`store_true`), each flag with its help, in this order."""
    for flag, help_text in switches.items():
        parser.add_argument(flag, action="store_true", help=help_text)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path,
                        help=f"the pgvdrill TOML file (default: ${CONFIG_ENV}, then "
                             f"{', then '.join(str(p) for p in CONFIG_PLACES)}; see "
                             "pgvdrill.example.toml)")


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS,
                        help="where scratch servers run (default: embedded, or [drill] "
                             "backend of --config)")
    parser.add_argument("--pg-bin", type=Path, help="PostgreSQL bin dir for --backend system")
    parser.add_argument("--image", help="image for --backend docker, e.g. pgvector/pgvector:pg17 "
                                        f"(default {DEFAULT_TAG}: pgvdrill image build)")
    parser.add_argument("--workdir", type=Path,
                        help="where scratch clusters live (default: /var/tmp as root, else TMPDIR)")
    parser.add_argument("--cache-dir", type=Path,
                        help="where initdb and dataset templates are kept "
                             "(default: ~/.cache/pgvdrill)")


def add_installation_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--installation", type=Path, action="append", default=[],
                        metavar="DIR",
                        help="another PostgreSQL bin directory (repeatable; besides [drill] "
                             "installations): physical restores use the one of the source's "
                             "major version")


def add_target_version_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target-version", type=target_version, metavar="VERSION",
                        help="PostgreSQL version logical restores go into, e.g. 18 or 18.3, "
                             "to rehearse an upgrade (default: [drill] target_version, else "
                             "the backend's own)")


def target_version(value: str) -> str:
    """argparse type: a PostgreSQL version, major ("18") or exact ("18.3")."""
    if VERSION.fullmatch(value):
        return value
    raise argparse.ArgumentTypeError(f"{value!r} is not a PostgreSQL version: write 18 or "
                                     "18.3")


def say(line: str) -> None:
    """Print one progress or result line at once (jobs' logs interleave with tools')."""
    print(line, flush=True)


def positive_int(value: str) -> int:
    """argparse type: an integer > 0."""
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value}")
    return number


def backend_options(args: argparse.Namespace, drill: Drill = DRILL_DEFAULTS) -> BackendOptions:
    """The backend options, resolved once: each from the command line, else from the
    configuration's [drill] (`drill`), else its default."""
    return BackendOptions(
        args.backend or drill.backend, args.pg_bin or drill.pg_bin,
        args.image, args.workdir or default_workdir(), args.cache_dir or default_cache_dir(),
        installations=(*(("--installation", p) for p in getattr(args, "installation", [])),
                       *(("[drill] installations", p) for p in drill.installations)),
        target_version=getattr(args, "target_version", None) or drill.target_version)
