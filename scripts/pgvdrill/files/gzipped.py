"""gzip files read to their very end: every member's data, CRC-32 and length checked.

Readers that stop where their content ends (tar at its end-of-archive blocks,
pg_verifybackup) never look at the 8-byte trailer, so a gzip file cut there, or one whose
data no longer matches its CRC, would pass them.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

CHUNK = 1 << 20


def gzip_problem(path: Path) -> str | None:
    """Why `path` is not a complete, intact gzip file (cut short, its trailer missing, its
    CRC-32 or length wrong), or None. OSError when it cannot be read at all."""
    try:
        with gzip.open(path, "rb") as compressed:
            while compressed.read(CHUNK):
                pass
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        return f"{path.name} is not an intact gzip file: {exc}"
    return None
