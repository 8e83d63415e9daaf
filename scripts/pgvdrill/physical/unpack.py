"""Safe tar extraction of base backups (no absolute paths, no `..`, no links out)."""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from pgvdrill.errors import BackupError, classified


def extract(archive: Path, dest: Path, *, members: Callable[[str], bool] | None = None
            ) -> list[str]:
    """Extract `archive` (.tar or .tar.gz) into `dest`, refusing any member whose path is
    absolute or climbs out with `..`; `members` selects by name. Returns the names
    extracted. A truncated or corrupt archive is a `BackupError` naming it; a full disk or
    a permission where it is extracted an `EnvironmentFailure`."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            chosen = [m for m in tar.getmembers() if members is None or members(m.name)]
            for member in chosen:
                unsafe(archive, member)
            tar.extractall(dest, members=chosen, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError) and exc.filename == str(archive):
            raise BackupError(f"{archive} is missing", "the backup is incomplete") from exc
        failure = classified(exc, f"cannot extract {archive} into {dest}")
        if failure is not None:
            raise failure from exc
        raise BackupError(f"cannot extract {archive}: {exc}",
                          "the archive is truncated or corrupt: do not restore from this "
                          "backup, use another one") from exc
    return [m.name for m in chosen]


def unsafe(archive: Path, member: tarfile.TarInfo) -> None:
    """Raise `BackupError` if `member` would land outside the extraction directory."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts:
        raise BackupError(
            f"{archive} holds {member.name!r}, a path outside the data directory",
            "refusing to extract it: a base backup only holds relative paths; this archive "
            "was not written by pg_basebackup or has been tampered with")
