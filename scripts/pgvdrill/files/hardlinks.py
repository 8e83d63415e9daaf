"""Hard links that lead out of a directory.

A regular file with more names (st_nlink) than its directory holds is also reachable, and
changeable, under a name elsewhere: planted in a repository (whose wal/ the server's OS
user owns), it would make root read, upload or serve a file from outside it, the way a
symlink would (fs.protected_hardlinks = 1 keeps a user from linking files it cannot
already read and write, but not every host sets it). pgvdrill itself writes each file
once; archive-wal and the catalog writer link a temporary name to the final one and
unlink the temporary, so a crash between the two leaves two names, both in the same
directory: those are not counted.
"""

from __future__ import annotations

import os
from pathlib import Path


def names_elsewhere(info: os.stat_result, directory: Path | int) -> int:
    """How many of the names of the file `info` describes are not entries of `directory`
    (a path or a descriptor); 0 for a file with one name."""
    if info.st_nlink <= 1:
        return 0
    with os.scandir(directory) as it:  # a descriptor stays open
        here = sum(1 for e in it if e.inode() == info.st_ino
                   and e.stat(follow_symlinks=False).st_dev == info.st_dev)
    return info.st_nlink - here


def hard_link_problem(info: os.stat_result, directory: Path | int) -> str | None:
    """'a hard link (N of its M names outside this directory)', or None."""
    elsewhere = names_elsewhere(info, directory)
    return (f"a hard link ({elsewhere} of its {info.st_nlink} names outside this directory: "
            "a file from elsewhere)") if elsewhere else None
