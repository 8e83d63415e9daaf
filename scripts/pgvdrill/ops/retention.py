"""`pgvdrill retention`: the runbook's retention policy, applied backup-aware (see
retention_plan.py for the rules). It prints every decision with its reason, then deletes
(unless --dry-run)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import groupby

from pgvdrill.cli.common import (
    REGISTRARS,
    AddBackendOptions,
    Handler,
    SubParsers,
    add_config_option,
    config_from,
    say,
)
from pgvdrill.config import Retention
from pgvdrill.ops.retention_apply import carry_out
from pgvdrill.ops.retention_plan import Plan, plan
from pgvdrill.ops.retention_scan import scan
from pgvdrill.ops.retention_wal import Decision
from pgvdrill.repository import Entry, Repository, file_problems, lock
from pgvdrill.repository.schema import EARLIEST, LATEST

Say = Callable[[str], None]
DELETE_FAILED = 1

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


def register(sub: SubParsers, add_backend_options: AddBackendOptions) -> dict[str, Handler]:
    parser = sub.add_parser(
        "retention", help="delete backups and WAL the retention policy no longer needs",
        description="Apply [retention] to the repository: print what goes and what stays, "
                    "each with its reason (age, rule), then delete what goes. A backup "
                    "goes catalog entry first, then its directory.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_option(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="print the decisions and delete nothing")
    parser.add_argument("--now", type=_when, metavar="ISO_TIME",
                        help="decide as at this ISO 8601 time (default: now; without a zone: "
                             "UTC)")
    return {"retention": lambda args: run(args, say)}


def run(args: argparse.Namespace, say: Say) -> int:
    config = config_from(args)
    repo = Repository(config.repository)
    now: datetime = args.now or datetime.now(UTC)
    with (lock.shared if args.dry_run else lock.exclusive)(repo):
        return _apply(args, repo, config.retention, now, say)


def _apply(args: argparse.Namespace, repo: Repository, policy: Retention, now: datetime,
           say: Say) -> int:
    contents = scan(repo)
    say(f"retention of {repo.root} as at {now:%Y-%m-%dT%H:%M:%SZ}: logical "
        f"{policy.logical_days:g} days, physical {policy.physical_days:g} days, WAL "
        f"{policy.wal_days:g} days, monthly copies {policy.monthly_months} months"
        + (" (dry run: nothing is deleted)" if args.dry_run else ""))
    decided = plan(contents.entries, contents.wal, _checker(repo, say), policy,
                   now.astimezone(UTC))
    show(decided, say)
    if contents.left_alone:
        say("left alone (not retention's to delete):")
        for line in contents.left_alone:
            say(f"  {line}")
    going = decided.deletions
    total = f"{_count(going, 'backup')} and {_count(going, 'WAL file')}"
    if args.dry_run:
        say(f"dry run: would delete {total}; nothing was deleted")
        return 0
    failed = carry_out(repo, decided, say)
    if failed:
        say(f"FAILED: {len(failed)} item(s) could not be deleted: {'; '.join(failed)}")
        return DELETE_FAILED
    say(f"deleted {total}")
    return 0


def show(decided: Plan, say: Say) -> None:
    """Every decision: backups one per line, WAL files in runs of the same decision."""
    for kind, backups in groupby(decided.backups, key=lambda d: d.kind):
        say(f"{kind} backups:")
        for d in backups:
            say(f"  {'keep  ' if d.keep else 'delete'} {d.name}  {d.age_days:.1f} days old, "
                f"{d.bytes / 2**20:.1f} MiB: {d.why}")
    if decided.wal:
        say("WAL:")
    for (keep, why), run_of in groupby(decided.wal, key=lambda d: (d.keep, d.why)):
        files = list(run_of)
        names = files[0].name if len(files) == 1 else \
            f"{files[0].name} .. {files[-1].name} ({len(files)} files)"
        ages = sorted(f.age_days for f in files)
        age = f"{ages[0]:.1f}" if len(files) == 1 else f"{ages[0]:.1f}-{ages[-1]:.1f}"
        say(f"  {'keep  ' if keep else 'delete'} {names}  {age} days old, "
            f"{sum(f.bytes for f in files) / 2**20:.1f} MiB: {why}")


def _checker(repo: Repository, say: Say) -> Callable[[Entry], list[str]]:
    """file_problems, once per backup, saying what it checks (hashing takes a while)."""
    found: dict[str, list[str]] = {}

    def problems(entry: Entry) -> list[str]:
        if entry.id not in found:
            say(f"checking {entry.id} ({entry.size_bytes / 2**20:.1f} MiB) against its "
                "catalog entry")
            try:
                found[entry.id] = file_problems(repo, entry)
            except OSError as exc:
                found[entry.id] = [f"{entry.id}: unreadable: {exc}"]
        return found[entry.id]

    return problems


def _count(decisions: list[Decision], what: str) -> str:
    chosen = [d for d in decisions if (d.kind == "wal") == (what == "WAL file")]
    return f"{len(chosen)} {what}(s) ({sum(d.bytes for d in chosen) / 2**20:.1f} MiB)"




REGISTRARS.append(register)
