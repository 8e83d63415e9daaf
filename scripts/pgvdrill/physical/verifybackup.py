"""pg_verifybackup on a base backup: every file against its manifest, and the WAL it needs
parsed from start to end. A broken backup is a `BackupError` naming each bad file.

pg_verifybackup cannot parse WAL inside tar files ("You must use -n/--no-parse-wal"), and
WAL archives (pg_wal.tar) are not in the manifest, so for tar backups the manifest is
checked with -n and the WAL is extracted and parsed with pg_waldump, as pg_verifybackup
does for a plain backup.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pgvdrill.cluster.base import ToolRunner
from pgvdrill.errors import BackupError, ToolError
from pgvdrill.files.gzipped import gzip_problem
from pgvdrill.physical.manifest import manifest_ranges
from pgvdrill.physical.unpack import extract
from pgvdrill.proc.runner import ToolCall

_QUOTED = re.compile(r'"([^"]+)"')


@dataclass(frozen=True)
class BackupCheck:
    path: Path
    format: str  # tar or plain
    seconds: float
    wal_parsed: bool

    def as_dict(self) -> dict[str, object]:
        return {"path": str(self.path), "format": self.format,
                "seconds": round(self.seconds, 3), "wal_parsed": self.wal_parsed}


def backup_format(path: Path) -> str:
    """`plain` (a data directory) or `tar` (base.tar or base.tar.gz), else `BackupError`."""
    if (path / "PG_VERSION").is_file():
        return "plain"
    if (path / "base.tar").is_file() or (path / "base.tar.gz").is_file():
        return "tar"
    raise BackupError(f"{path} is not a base backup: no PG_VERSION, base.tar or base.tar.gz",
                      "point at the directory pg_basebackup -D wrote")


def check_backup(tools: ToolRunner, path: Path) -> BackupCheck:
    """Run pg_verifybackup on the backup at `path` (plain or tar), and parse its WAL."""
    fmt = backup_format(path)
    started = time.monotonic()
    if fmt == "plain":
        _without_manifest(path)
        _verifybackup(tools, path, [])
    else:
        _gzip_intact(path)
        _verifybackup(tools, path, ["--no-parse-wal"])
        with tempfile.TemporaryDirectory(prefix="pgvdrill-wal-") as tmp:
            _parse_wal(tools, path, _tar_wal(path, Path(tmp)))
    return BackupCheck(path, fmt, time.monotonic() - started, True)


def _gzip_intact(path: Path) -> None:
    """Every .tar.gz of a tar backup read to its end (pg_verifybackup never checks the gzip
    trailer: a base.tar.gz cut there passes it)."""
    problems = [p for p in map(gzip_problem, sorted(path.glob("*.tar.gz"))) if p]
    if problems:
        raise BackupError(f"base backup {path} is broken: " + "; ".join(problems),
                          "do not restore from it: take a new base backup, and find out "
                          "what changed this one")


def _without_manifest(path: Path) -> None:
    """A plain copy without backup_manifest, named for what it is (`BackupError` either
    way): a data directory copied without its backup_label (not a backup at all), or one
    with its backup_label (a low-level backup, or a pg_basebackup copy that lost its
    manifest) whose files pg_verifybackup cannot check."""
    if (path / "backup_manifest").is_file():
        return
    if not (path / "backup_label").is_file():
        raise BackupError(
            f"{path} has no backup_label (and no backup_manifest): a data directory copied "
            "without the backup_label pg_backup_stop() returned is not a backup; started, "
            "it would recover as after a crash from the copy's last checkpoint and be "
            "silently inconsistent",
            "write the labelfile pg_backup_stop() returns into backup_label in the copy "
            "(pgvdrill's low-level setting does), or take the backup with pg_basebackup")
    raise BackupError(
        f"{path} has a backup_label but no backup_manifest (a low-level backup, or a "
        "pg_basebackup copy that lost its manifest): pg_verifybackup cannot check its files",
        "check it by restoring it into a scratch directory and starting it, or take "
        "backups with pg_basebackup, which writes the manifest")


def _verifybackup(tools: ToolRunner, path: Path, extra: list[str]) -> None:
    result = tools.run_tool(ToolCall("pg_verifybackup", [*extra, path], check=False))
    if result.returncode != 0:
        read = sorted(p.name for p in path.glob("*.tar*") if not p.name.startswith("pg_wal"))
        raise broken(path, "pg_verifybackup", result.stderr, read)


def broken(path: Path, tool: str, stderr: str, read: list[str]) -> BackupError:
    """A `BackupError` listing `tool`'s complaints and the files they name (or, when they
    name none, the files `read` that the tool was reading)."""
    lines = [ln.removeprefix(f"{tool}: ").removeprefix("error: ")
             for ln in stderr.strip().splitlines() if "hint:" not in ln]
    files = sorted({m for ln in lines for m in _QUOTED.findall(ln)}) or read
    named = f" ({', '.join(files)})" if files else ""
    listed = "\n".join(f"  - {ln}" for ln in lines[:20])
    return BackupError(f"base backup {path} is broken{named}: {tool} reports:\n{listed}",
                       "do not restore from it: take a new base backup, and find out what "
                       "changed this one")


def _tar_wal(path: Path, tmp: Path) -> Path:
    """Extract the backup's WAL (pg_wal.tar[.gz], or pg_wal/ inside base.tar for -X fetch)."""
    for name in ("pg_wal.tar", "pg_wal.tar.gz"):
        if (path / name).is_file():
            extract(path / name, tmp / "pg_wal")
            return tmp / "pg_wal"
    base = path / ("base.tar" if (path / "base.tar").is_file() else "base.tar.gz")
    extract(base, tmp, members=lambda n: n.startswith("pg_wal/"))
    return tmp / "pg_wal"


def _parse_wal(tools: ToolRunner, path: Path, waldir: Path) -> None:
    for wal in manifest_ranges(path / "backup_manifest"):
        try:
            tools.run_tool(ToolCall("pg_waldump", ["--quiet", "--path", waldir, "--timeline",
                                                   str(wal.timeline), "--start", wal.start,
                                                   "--end", wal.end]))
        except ToolError as exc:
            raise broken(path, "pg_waldump", exc.stderr,
                         [p.name for p in path.glob("pg_wal.tar*")] or ["base.tar: pg_wal/"]
                         ) from exc
