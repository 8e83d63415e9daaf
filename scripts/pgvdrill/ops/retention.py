"""`pgvdrill retention`'s workflow: the runbook's retention policy, applied backup-aware
(see retention_plan.py for the rules). It prints every decision with its reason, then
deletes (unless dry_run)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from itertools import groupby

from pgvdrill.config import Config, Retention
from pgvdrill.ops.retention_apply import carry_out
from pgvdrill.ops.retention_plan import Plan, plan
from pgvdrill.ops.retention_scan import scan
from pgvdrill.ops.retention_wal import Decision
from pgvdrill.repository import Entry, Repository, file_problems, lock

Say = Callable[[str], None]
DELETE_FAILED = 1


def apply_retention(config: Config, now: datetime, *, dry_run: bool, say: Say) -> int:
    """Apply [retention] to the configuration's repository as at `now` (with `dry_run`,
    only say what would go); the exit code."""
    repo = Repository(config.require_repository())
    with (lock.shared if dry_run else lock.exclusive)(repo):
        return _apply(repo, config.retention, now, dry_run, say)


def _apply(repo: Repository, policy: Retention, now: datetime, dry_run: bool, say: Say
           ) -> int:
    contents = scan(repo)
    say(f"retention of {repo.root} as at {now:%Y-%m-%dT%H:%M:%SZ}: logical "
        f"{policy.logical_days:g} days, physical {policy.physical_days:g} days, WAL "
        f"{policy.wal_days:g} days, monthly copies {policy.monthly_months} months"
        + (" (dry run: nothing is deleted)" if dry_run else ""))
    decided = plan(contents.entries, contents.wal, _checker(repo, say), policy,
                   now.astimezone(UTC))
    show(decided, say)
    if contents.left_alone:
        say("left alone (not retention's to delete):")
        for line in contents.left_alone:
            say(f"  {line}")
    going = decided.deletions
    total = f"{_count(going, 'backup')} and {_count(going, 'WAL file')}"
    if dry_run:
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
