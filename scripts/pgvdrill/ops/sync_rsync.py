"""The rsync store of `pgvdrill sync`: a local directory or host:path (over ssh, with the
operator's ssh keys), through the rsync program.

Files are compared by content (`--checksum --dry-run --itemize-changes`), only new ones are
sent (`--ignore-existing`, so a file that appeared meanwhile is not replaced either), and
nothing is ever deleted (no --delete: the runbook's `rsync -av --delete` would carry a
local deletion or corruption over to the off-site copy). rsync writes each file under a
temporary name and renames it when complete, so a remote name always holds a whole file.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pgvdrill.config import RsyncTarget
from pgvdrill.errors import ConfigError
from pgvdrill.ops.sync_plan import Item
from pgvdrill.ops.sync_store import Comparison
from pgvdrill.proc.runner import run, which
from pgvdrill.repository.catalog import sha256_of

# rsync --itemize-changes: YXcstpoguax, Y the update type, X the file type
_ITEM = re.compile(r"(?P<code>[<>ch.*](?P<type>[fdLDS]).{9}) (?P<name>.+)")
MISSING = "is missing remotely"


def is_remote(dest: str) -> bool:
    """rsync's rule: a colon before the first slash makes `dest` remote (host:path)."""
    return dest.startswith("rsync://") or ":" in dest.split("/", 1)[0]


def itemized(stdout: str) -> dict[str, str]:
    """The itemize code of every regular file in rsync's --itemize-changes output."""
    found = {}
    for line in stdout.splitlines():
        match = _ITEM.fullmatch(line)
        if match and match["type"] == "f":
            found[match["name"]] = match["code"]
    return found


def _difference(code: str | None) -> str | None:
    """How a file differs by its itemize code (with --checksum); None when identical."""
    if code is None:
        return "was not reported by rsync"
    if code[0] == ".":
        return None  # content identical (attributes such as the time may differ)
    if code[2:] == "+" * (len(code) - 2):
        return MISSING
    return f"differs from the local file (rsync --checksum itemizes it as {code})"


class RsyncStore:
    """Copies below `target.dest`; a relative local directory is relative to `base` (the
    configuration file's directory)."""

    def __init__(self, target: RsyncTarget, root: Path, base: Path) -> None:
        try:
            self.rsync = which("rsync")
        except ConfigError:
            raise ConfigError("[sync.rsync] needs the rsync program, which is not on PATH",
                              "install it (Debian/Ubuntu: apt-get install rsync) or sync "
                              "with --to s3") from None
        self.root = root
        self.remote = is_remote(target.dest)
        self.local = None if self.remote else base / target.dest
        self.dest = target.dest if self.remote else str(self.local)
        self.name = target.dest

    def compare(self, items: Sequence[Item]) -> Comparison:
        codes = self._rsync(items, "--checksum", "--dry-run", "--itemize-changes",
                            "--itemize-changes")
        comparison = Comparison()
        for item in items:
            why = _difference(codes.get(item.key))
            if why is None:
                comparison.identical.append(item)
            elif why == MISSING:
                comparison.new.append(item)
            else:
                comparison.differ.append((item, why))
        return comparison

    def upload(self, items: Sequence[Item]) -> None:
        self._rsync(items, "--ignore-existing")

    def verify(self, items: Sequence[Item]) -> list[Item | tuple[Item, str]]:
        """Hash the copies in a local directory; ask rsync to compare by checksum remotely."""
        if self.local is None:
            codes = self._rsync(items, "--checksum", "--dry-run", "--itemize-changes",
                                "--itemize-changes")
            return [i if why == MISSING else (i, why)
                    for i in items if (why := _difference(codes.get(i.key)))]
        bad: list[Item | tuple[Item, str]] = []
        for item in items:
            copy = self.local / item.key
            if not copy.is_file():
                bad.append(item)
            elif copy.stat().st_size != item.bytes:
                bad.append((item, f"has {copy.stat().st_size} bytes, {item.bytes} locally"))
            elif (digest := sha256_of(copy)) != item.sha256:
                bad.append((item, f"has sha256 {digest}, {item.sha256} locally"))
        return bad

    def _rsync(self, items: Sequence[Item], *options: str) -> dict[str, str]:
        """Run rsync on `items` (relative to the repository root, directories 0700 and files
        0600 on the remote side); the itemize codes it printed."""
        with tempfile.NamedTemporaryFile("w", prefix="pgvdrill-sync-", suffix=".list") as names:
            names.write("".join(f"{i.key}\0" for i in items))
            names.flush()
            result = run([self.rsync, "--archive", "--chmod=D0700,F0600", "--from0",
                          f"--files-from={names.name}", "--out-format=%i %n", *options,
                          f"{self.root}/", f"{self.dest.rstrip('/')}/"],
                         hint=f"rsync to {self.name} failed: check that the destination "
                              "exists and is writable (for host:path: ssh access with a "
                              "key); run pgvdrill sync again: identical files are skipped")
        return itemized(result.stdout)
