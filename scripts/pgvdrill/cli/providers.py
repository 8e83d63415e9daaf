"""`pgvdrill providers`: the configured providers' health without a restore (see
ops/providers.py)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from pgvdrill.cli.common import Command, SubParsers, add_config_option, command_parser, say
from pgvdrill.config import find_config
from pgvdrill.ops.providers import document, judge, lines
from pgvdrill.policy.targets import load_targets

HELP = "list each [provider.NAME]'s backups and judge their age (and, --check, the tool's checks)"
DESCRIPTION = ("The health of the backups other tools take, without a restore: per configured "
               "provider its tool and version, its backups, the newest one's age against the "
               "targets' backup age; with --check also the tool's own checks and its "
               "verification of the newest backup of each kind.")
EPILOG = """what is shown, per provider:
  version:   the tool as it reports itself (barman 3.19.1, pgBackRest 2.45, ...)
  backups:   id, kind, finish time, size, age; oldest first
  age:       the newest backup of each kind against [backup_age] of the targets
             (--targets, else [drill] targets, else the runbook's: logical 24 h,
             physical 7 days)
  --check:   the tool's own checks (barman check, pgbackrest info, a files glob
             matching, a pgvdrill repository's catalog and WAL continuity, ...) and its
             verification of the newest backup of each kind (barman verify-backup,
             pgbackrest verify, pg_verifybackup, pg_restore reading a dump in full);
             a check that cannot run is unknown, with its reason, and does not fail

examples:
  pgvdrill providers --config /etc/pgvdrill/pgvdrill.toml
  pgvdrill providers --check --json          # for monitoring: one JSON document
  pgvdrill providers cron --check            # one provider by its NAME

output: per provider its backups and verdicts; "problem: ..." lines, then a summary.
--json prints one JSON document instead (schema pgvdrill.providers/1, keys in
docs/providers/health.md).

exit codes:
  0  every check passed and no newest backup is older than its target
  2  bad configuration (a provider that cannot be built, no [provider.NAME])
  3  a provider's tool could not run to list its backups
  4  a check failed, a backup failed its verification, or a provider has no backup
  6  every check passed, but a newest backup is older than its target
"""


def add_parser(sub: SubParsers) -> None:
    parser = command_parser(sub, "providers", HELP, DESCRIPTION, EPILOG)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="the providers to judge (default: every [provider.NAME])")
    parser.add_argument("--check", action="store_true",
                        help="also run the tool's own checks and verify the newest backups")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--targets", type=Path,
                        help="TOML file overriding the runbook's targets ([backup_age]); "
                             "default: [drill] targets")
    add_config_option(parser)


def run(args: argparse.Namespace) -> int:
    config = find_config(args.config)
    targets = load_targets(args.targets or config.drill.targets)
    now = datetime.now(UTC)
    found, code = judge(config, targets, check=args.check, names=tuple(args.names), now=now)
    if args.json:
        print(json.dumps(document(found, targets, args.check, code, now), indent=2))
    else:
        for line in lines(found, args.check, now):
            say(line)
    return code


COMMAND = Command("providers", add_parser, run)
