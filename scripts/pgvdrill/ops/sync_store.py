"""Copying a plan to one off-site store (rsync or S3): what both kinds of store do, and the
rules they share: new files are uploaded, identical ones skipped, a remote file that
differs is reported and never overwritten, and nothing remote is ever deleted."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pgvdrill.ops.sync_plan import Group, Item, Plan

Say = Callable[[str], None]


@dataclass
class Comparison:
    """Local items against the remote side."""

    new: list[Item] = field(default_factory=list)  # not on the remote side yet
    identical: list[Item] = field(default_factory=list)  # same size and sha256
    differ: list[tuple[Item, str]] = field(default_factory=list)  # with how they differ


class Store(Protocol):
    name: str  # where the copies go, as the operator wrote it (s3://bucket/prefix/, host:path)

    def compare(self, items: Sequence[Item]) -> Comparison: ...

    def upload(self, items: Sequence[Item]) -> None:
        """Copy `items` (none of which exists remotely); never replaces a remote file."""

    def verify(self, items: Sequence[Item]) -> list[Item | tuple[Item, str]]:
        """The remote copies that are missing (an item) or differ (with how)."""


def diverged(store: Store, item: Item, why: str) -> str:
    return (f"{store.name}: {item.key} {why}: the remote and local copies diverged; "
            "the remote file was not overwritten")


def unverified(store: Store, bad: Item | tuple[Item, str]) -> str:
    if isinstance(bad, Item):
        return f"{store.name}: {bad.key} is missing after the upload"
    item, why = bad
    return f"{store.name}: {item.key} {why} after the upload (verification failed)"


@dataclass
class Totals:
    uploaded: int = 0
    skipped: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)
    remote: list[Item] = field(default_factory=list)  # uploaded or found identical

    def add(self, other: Totals) -> None:
        self.uploaded += other.uploaded
        self.skipped += other.skipped
        self.bytes += other.bytes
        self.problems += other.problems
        self.remote += other.remote


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def push(store: Store, the_plan: Plan, *, dry_run: bool, say: Say) -> Totals:
    """Copy every group of `the_plan` to `store` (or, with `dry_run`, only compare), one
    progress line per group."""
    totals = Totals()
    for group in the_plan.groups:
        started = time.monotonic()
        part = Totals()
        complete = _push(store, group.files, part, dry_run)
        if group.entry is not None and complete:
            _push(store, [group.entry], part, dry_run)
        say(_progress(store, group, part, dry_run, time.monotonic() - started))
        totals.add(part)
    return totals


def _progress(store: Store, group: Group, part: Totals, dry_run: bool, seconds: float) -> str:
    files = f"{len(group.files)} file(s)" + (" + catalog entry" if group.entry else "")
    line = (f"{store.name}: {group.name} ({files}): {part.uploaded} "
            f"{'to upload' if dry_run else 'uploaded'} ({mib(part.bytes)}), "
            f"{part.skipped} identical")
    if part.problems:
        line += f", {len(part.problems)} DIFFER from the local copy"
        line += "; catalog entry not copied" if group.entry else ""
    return f"{line} [{seconds:.1f}s]"


def _push(store: Store, items: Sequence[Item], totals: Totals, dry_run: bool) -> bool:
    """Upload the new ones of `items`; whether none differs remotely."""
    comparison = store.compare(items)
    if not dry_run and comparison.new:
        store.upload(comparison.new)
        totals.remote += comparison.new
    totals.uploaded += len(comparison.new)
    totals.bytes += sum(i.bytes for i in comparison.new)
    totals.skipped += len(comparison.identical)
    totals.remote += comparison.identical
    totals.problems += [diverged(store, item, why) for item, why in comparison.differ]
    return not comparison.differ
