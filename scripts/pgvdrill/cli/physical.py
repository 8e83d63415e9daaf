"""The CLI's physical parts: `pgvdrill drill --physical ...` and `pgvdrill verify-backup`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from pgvdrill.backends import backend_for
from pgvdrill.cli.common import (
    Command,
    SubParsers,
    add_backend_options,
    backend_options,
    command_parser,
    say,
)
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS
from pgvdrill.physical.verifybackup import check_backup


def _settings(value: str) -> list[str]:
    names = list(BASE_BACKUP_SETTINGS) if value == "all" else [v for v in value.split(",") if v]
    unknown = [n for n in names if n not in BASE_BACKUP_SETTINGS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown base backup setting {', '.join(unknown) or '(none)'}; known: "
            f"{', '.join(BASE_BACKUP_SETTINGS)}")
    return names


def add_drill_options(drill: argparse.ArgumentParser) -> None:
    drill.add_argument("--physical", type=_settings, default=[],
                       help="also run physical drills (base backup, pg_verifybackup, restore, "
                            "WAL replay, verification, same ANN answers) for these comma-"
                            f"separated settings, or 'all': {', '.join(BASE_BACKUP_SETTINGS)}")
    drill.add_argument("--fast-checkpoint", action="store_true",
                       help="physical backups start with --checkpoint=fast instead of the "
                            "runbook's spread checkpoint")
    drill.add_argument("--logical", action=argparse.BooleanOptionalAction, default=True,
                       help="run the logical dump/restore drills (default; --no-logical "
                            "runs only --physical ones)")


def list_settings(say: Callable[[str], None]) -> None:
    say("base backup settings (--physical):")
    for setting in BASE_BACKUP_SETTINGS.values():
        say(f"  {setting.name:16} {setting.description}")


def add_verify_backup_parser(sub: SubParsers) -> None:
    parser = command_parser(
        sub, "verify-backup", "check a base backup with pg_verifybackup without restoring it",
        description="Check every file of a pg_basebackup backup (plain or tar) against its "
                    "backup_manifest and parse the WAL it needs. Exit 4 if it is broken.",
        epilog="example:\n  pgvdrill verify-backup /backup/postgres/physical_backup_20251101")
    add_backend_options(parser)
    parser.add_argument("path", type=Path, help="the directory pg_basebackup -D wrote")


def cmd_verify_backup(args: argparse.Namespace) -> int:
    with backend_for(backend_options(args), [args.path]) as backend:
        checked = check_backup(backend.tools(), args.path.resolve())
    say(f"ok: {checked.path} ({checked.format} base backup, every file matches its manifest, "
        f"WAL parsed; {checked.seconds:.2f}s)")
    return 0


VERIFY_BACKUP = Command("verify-backup", add_verify_backup_parser, cmd_verify_backup)
