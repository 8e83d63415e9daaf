"""`pgvdrill retention`: the runbook's retention policy, applied backup-aware (see
ops/retention_plan.py for the rules)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from pgvdrill.cli.common import Command, SubParsers, add_config_option, command_parser, say
from pgvdrill.config import find_config
from pgvdrill.ops.retention import apply_retention
from pgvdrill.repository.schema import EARLIEST, LATEST

HELP = "delete backups and WAL the retention policy no longer needs"
DESCRIPTION = ("Apply [retention] to the repository: print what goes and what stays, each with its "
               "reason (age, rule), then delete what goes. A backup goes catalog entry first, then "
               "its directory.")

EXAMPLES = """examples:
  pgvdrill retention --dry-run                 # what would go and what stays, and why
  pgvdrill retention --config /etc/pgvdrill/pgvdrill.toml
  pgvdrill retention --dry-run --now 2026-01-01T03:00:00Z   # as it would decide then

rules ([retention] in the configuration; the runbook's policy by default):
  logical backups older than logical_days (7) go, physical ones older than physical_days
  (30); the newest valid backup of each kind (its files match its catalog entry) is kept
  whatever its age; the first valid backup of each calendar month is kept monthly_months
  (12) months. Archived WAL goes only when older than wal_days (3) AND not needed by a
  retained physical backup (from its start segment onwards; a monthly copy: its own
  range); timeline history files always stay. Backup directories without a catalog entry
  and unknown files are reported and left alone.

exit codes:
  0  done (or dry run)
  1  something could not be deleted (each one named)
  2  bad configuration or option
  4  the repository is unreadable, a catalog entry is invalid, a directory of it
     (wal/, catalog/, logical/, physical/) is missing, or a backup directory or the
     repository's root, directories or lock is a symlink (nothing deleted)
  7  another pgvdrill command (backup, restore, verify, sync, drill) is using the
     repository (nothing deleted; run it again later)
  8  the machine failed, not the backup: a full disk, a permission, a read-only file
     system, a server that died (the cause is named; fix it and run again)
"""


def _when(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} "
                                         "(e.g. 2026-01-01T03:00:00Z)") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        if EARLIEST <= moment.astimezone(UTC) < LATEST:
            return moment
    except OverflowError:
        pass
    raise argparse.ArgumentTypeError(f"not a time between {EARLIEST:%Y-%m-%d} and "
                                     f"{LATEST:%Y-%m-%d}: {text!r}")


def add_parser(sub: SubParsers) -> None:
    parser = command_parser(sub, "retention", HELP, DESCRIPTION, EXAMPLES)
    add_config_option(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="print the decisions and delete nothing")
    parser.add_argument("--now", type=_when, metavar="ISO_TIME",
                        help="decide as at this ISO 8601 time (default: now; without a zone: "
                             "UTC)")


def run(args: argparse.Namespace) -> int:
    return apply_retention(find_config(args.config), args.now or datetime.now(UTC),
                           dry_run=args.dry_run, say=say)


COMMAND = Command("retention", add_parser, run)
