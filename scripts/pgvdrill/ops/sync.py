"""`pgvdrill sync`: copy the backup repository off-site ([sync.rsync], [sync.s3]) and
verify the copies.

Copied: the archived WAL and every complete backup (one with a catalog entry) whose files
still match its entry, the entry last. Never deleted or overwritten remotely: identical
files are skipped, a remote file that differs is reported (exit 4).
"""

from __future__ import annotations

import time

from pgvdrill.config import Config
from pgvdrill.errors import BackupError, ConfigError
from pgvdrill.ops.sync_plan import Plan, plan
from pgvdrill.ops.sync_rsync import RsyncStore
from pgvdrill.ops.sync_s3 import S3Store
from pgvdrill.ops.sync_store import Say, Store, mib, push, unverified
from pgvdrill.repository import Repository, lock

TARGETS = ("rsync", "s3", "all")


def stores(config: Config, to: str, *, download: bool) -> list[Store]:
    """The stores `--to` names; ConfigError when one is not configured."""
    found: list[Store] = []
    if to in ("rsync", "all") and config.rsync is not None:
        found.append(RsyncStore(config.rsync, config.require_repository(), config.path.parent))
    if to in ("s3", "all") and config.s3 is not None:
        found.append(S3Store(config.s3, download=download))
    if not found:
        section = "[sync.rsync] or [sync.s3]" if to == "all" else f"[sync.{to}]"
        raise ConfigError(f"{config.path}: no {section} section to sync to",
                          "add one (see pgvdrill.example.toml) or choose another --to")
    return found


def sync_to(store: Store, the_plan: Plan, *, dry_run: bool, say: Say) -> list[str]:
    """Copy `the_plan` to `store` and verify it there; the problems found."""
    started = time.monotonic()
    totals = push(store, the_plan, dry_run=dry_run, say=say)
    problems = totals.problems
    if not dry_run:
        bad = store.verify(totals.remote)
        problems += [unverified(store, b) for b in bad]
        say(f"{store.name}: verified {len(totals.remote)} file(s) on the remote side"
            + (f": {len(bad)} FAILED" if bad else ""))
    say(f"{store.name}: {totals.uploaded} file(s) {'to upload' if dry_run else 'uploaded'}, "
        f"{totals.skipped} skipped (identical), {totals.bytes} bytes ({mib(totals.bytes)}), "
        f"{time.monotonic() - started:.1f}s")
    return problems


def sync(config: Config, to: str, *, dry_run: bool, download: bool, say: Say) -> int:
    """Copy the configuration's repository to the stores `to` names (TARGETS) and verify
    the copies; the exit code (BackupError listing the problems found)."""
    repo = Repository(config.require_repository())
    if not repo.root.is_dir():
        raise ConfigError(f"backup repository {repo.root} does not exist",
                          "fix [repository] path in the configuration")
    targets = stores(config, to, download=download)
    with lock.shared(repo):
        return _sync(repo, targets, dry_run, say)


def _sync(repo: Repository, targets: list[Store], dry_run: bool, say: Say) -> int:
    the_plan = plan(repo)
    for path in the_plan.incomplete:
        say(f"skipped {path}: no catalog entry (a backup still running, or a failed one)")
    for problem in the_plan.refused:
        say(f"REFUSED {problem}")
    problems = list(the_plan.refused)
    for store in targets:
        problems += sync_to(store, the_plan, dry_run=dry_run, say=say)
    if problems:
        raise BackupError(f"sync found {len(problems)} problem(s):\n"
                          + "\n".join(f"  - {p}" for p in problems),
                          "nothing remote was deleted or overwritten. A refused backup's files "
                          "no longer match its catalog entry: find out what changed them; a "
                          "diverged file must be inspected on both sides before either copy "
                          "is moved away")
    return 0
