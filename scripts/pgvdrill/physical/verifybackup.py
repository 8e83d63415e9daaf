"""pg_verifybackup on a base backup: every file against its manifest, and the WAL it needs
parsed from start to end. A broken backup is a `BackupError` naming each bad file.

The tools must be of the backup's own major (a `ConfigError` otherwise: another major's
tools cannot read it, which says nothing about the backup). pg_verifybackup reads tar
backups from PostgreSQL 18 on, but cannot parse WAL inside tar files ("You must use
-n/--no-parse-wal"), and WAL archives (pg_wal.tar) are not in the manifest: so the manifest
is checked with -n and the WAL is extracted and parsed with pg_waldump, as pg_verifybackup
does for a plain backup. An older pg_verifybackup checks a tar backup extracted (safely,
unpack.py) into a plain copy in a temporary directory, WAL and all.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pgvdrill.capabilities import VERIFYBACKUP_TAR_MAJOR, require_tool_major
from pgvdrill.cluster.base import ToolRunner
from pgvdrill.errors import BackupError, ToolError
from pgvdrill.files.gzipped import gzip_problem
from pgvdrill.physical.manifest import manifest_ranges
from pgvdrill.physical.unpack import base_archive, extract, extract_backup, read_member
from pgvdrill.proc.runner import ToolCall

_QUOTED = re.compile(r'"([^"]+)"')


@dataclass(frozen=True)
class BackupCheck:
    path: Path
    format: str  # tar or plain
    seconds: float
    wal_parsed: bool
    major: int  # the backup's PostgreSQL major (PG_VERSION), the tools' too
    extracted: bool = False  # a tar backup checked as the plain copy extracted from it

    def as_dict(self) -> dict[str, object]:
        return {"path": str(self.path), "format": self.format,
                "seconds": round(self.seconds, 3), "wal_parsed": self.wal_parsed,
                "postgresql_major": self.major, "extracted": self.extracted}


def backup_format(path: Path) -> str:
    """`plain` (a data directory) or `tar` (base.tar or base.tar.gz), else `BackupError`."""
    if (path / "PG_VERSION").is_file():
        return "plain"
    if (path / "base.tar").is_file() or (path / "base.tar.gz").is_file():
        return "tar"
    raise BackupError(f"{path} is not a base backup: no PG_VERSION, base.tar or base.tar.gz",
                      "point at the directory pg_basebackup -D wrote")


def backup_major(path: Path) -> int:
    """The PostgreSQL major of the base backup at `path` (its PG_VERSION)."""
    if backup_format(path) == "plain":
        text: bytes | None = (path / "PG_VERSION").read_bytes()
    else:
        text = read_member(base_archive(path), "PG_VERSION")
    try:
        return int((text or b"").decode().strip())
    except ValueError:
        raise BackupError(f"base backup {path} has no readable PG_VERSION ({text!r})",
                          "it is not a base backup, or a damaged one: take a new one"
                          ) from None


def check_backup(tools: ToolRunner, path: Path) -> BackupCheck:
    """Run pg_verifybackup (of the backup's major) on the backup at `path` (plain or tar),
    and parse its WAL."""
    fmt = backup_format(path)
    if fmt == "tar":
        _gzip_intact(path)
    major = backup_major(path)
    verifier = require_tool_major(tools, "pg_verifybackup", major, f"base backup {path}")
    started = time.monotonic()
    extracted = fmt == "tar" and verifier < VERIFYBACKUP_TAR_MAJOR
    if fmt == "plain":
        _without_manifest(path)
        _verifybackup(tools, path, [])
    elif extracted:
        with tempfile.TemporaryDirectory(prefix="pgvdrill-verify-") as tmp:
            copy = Path(tmp) / "data"
            extract_backup(path, copy)
            (copy / "backup_manifest").write_bytes((path / "backup_manifest").read_bytes())
            _verifybackup(tools, copy, [], shown=path)
    else:
        _verifybackup(tools, path, ["--no-parse-wal"])
        require_tool_major(tools, "pg_waldump", major, f"base backup {path}")
        with tempfile.TemporaryDirectory(prefix="pgvdrill-wal-") as tmp:
            _parse_wal(tools, path, _tar_wal(path, Path(tmp)))
    return BackupCheck(path, fmt, time.monotonic() - started, True, major, extracted)


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


def _verifybackup(tools: ToolRunner, path: Path, extra: list[str], *,
                  shown: Path | None = None) -> None:
    """pg_verifybackup on `path`; a failure names `shown` (the tar backup `path` was
    extracted from), the extracted copy's files being the archive's members."""
    result = tools.run_tool(ToolCall("pg_verifybackup", [*extra, path], check=False))
    if result.returncode != 0:
        shown = shown or path
        read = sorted(p.name for p in shown.glob("*.tar*") if not p.name.startswith("pg_wal"))
        stderr = result.stderr.replace(str(path), str(shown))
        raise broken(shown, "pg_verifybackup", stderr, read)


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
    extract(base_archive(path), tmp, members=lambda n: n.startswith("pg_wal/"))
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
