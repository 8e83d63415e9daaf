"""Where `restore physical|pitr` may make a data directory: a directory of its own, never a
shared or system one, never in, at or around a cluster's files or the repository.

Refused, before anything is written (symlinks followed: where the files would land):
- `/`, a top-level directory, anything at or below the system's trees (/etc, /usr, /var,
  /boot, /run, /bin, /lib..., SYSTEM_TREES) but for a directory below the data
  directories' usual places (/var/lib/postgresql, /var/lib/pgsql, /usr/local/pgsql) or
  /var/tmp, a user's home directory;
- a directory others may write into (world-writable or sticky, like /tmp): the copy
  would be theirs to change, and PostgreSQL's mode (0700) is not pgvdrill's to impose;
- a directory inside a PostgreSQL data directory (an ancestor holds PG_VERSION), a
  tablespace (PG_<version>_<catalog> below it) or a WAL directory (segment files):
  the source's own or any other cluster's, which needs no connection to the source (it
  is usually down when a restore runs);
- with --force, a directory that holds such a thing up to MAX_DEPTH levels down;
- the repository, a directory inside it or one holding it.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
from pathlib import Path

from pgvdrill.errors import RestoreError
from pgvdrill.wal.names import SEGMENT_RE

# the system's own trees: refused at any depth (a data directory's files added to
# /etc/cron.d or /etc/systemd/system are read by the system, /usr is the software's)
SYSTEM_TREES = tuple(Path(p) for p in (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run",
    "/sbin", "/snap", "/sys", "/usr", "/var"))
# ... except below the places PostgreSQL's packages and docs keep data directories in, and
# below /var/tmp (scratch space like /tmp, where pgvdrill's own drills work as root)
DATA_TREES = tuple(Path(p) for p in (
    "/var/lib/postgresql", "/var/lib/pgsql", "/usr/local/pgsql", "/var/tmp"))  # noqa: S108
TABLESPACE_RE = re.compile(r"PG_\d+_\d+")
MAX_DEPTH = 3  # how deep a --force directory is searched for a cluster's files
MAX_DIRS = 2000  # more than this below a --force directory: refused as not checkable


def refuse_unsafe_place(pgdata: Path, repository: Path) -> None:
    """RestoreError when `pgdata` is no place for a restored data directory (see above)."""
    place = pgdata.resolve()
    why = _shared_or_system(place)
    if why is None:
        why = _inside_a_cluster(place)
    if why is None and _overlaps(place, repository.resolve()):
        why = f"in or around the backup repository {repository}"
    if why is None and place.is_dir():
        why = _holds_a_cluster(place)
    if why is not None:
        raise RestoreError(
            f"restore target {pgdata} is {why}: pgvdrill restores only into a directory "
            "of its own, and never changes one it did not create",
            f"make one for the copy (owned by the server's OS user) and pass it as "
            f"--pgdata: mkdir -m 0700 {_suggestion(place, repository)}")


def _shared_or_system(place: Path) -> str | None:
    if len(place.parts) <= 2 or _in_system_tree(place):
        return "a system directory"
    if place in _home_dirs():
        return "a user's home directory"
    if place.is_dir():
        mode = place.stat().st_mode
        if mode & (stat.S_ISVTX | stat.S_IWOTH):
            return (f"a shared directory (mode {stat.S_IMODE(mode):04o}: "
                    f"{'sticky' if mode & stat.S_ISVTX else 'world-writable'})")
    return None


def _in_system_tree(place: Path) -> bool:
    """At or below a SYSTEM_TREES directory and not below a DATA_TREES one."""
    def within(tree: Path) -> bool:
        return place == tree or tree in place.parents
    return any(within(tree) for tree in SYSTEM_TREES) and \
        not any(tree in place.parents for tree in DATA_TREES)


def _home_dirs() -> set[Path]:
    return {Path(entry.pw_dir).resolve() for entry in pwd.getpwall()
            if entry.pw_dir and entry.pw_dir != "/"}


def _inside_a_cluster(place: Path) -> str | None:
    for above in place.parents:
        what = _cluster_part(above)
        if what is not None:
            return f"inside {above}, {what}"
    return None


def _holds_a_cluster(place: Path) -> str | None:
    """What below `place` (itself included, but for a data directory: refused as such by
    restore_datadir.existing_names) belongs to a cluster, searched MAX_DEPTH down."""
    for seen, (root, dirs, _) in enumerate(os.walk(place), 1):
        what = _cluster_part(Path(root))
        if what is not None and Path(root) != place:
            return f"holding {root}, {what}"
        if what is not None and "PG_VERSION" not in what:
            return what
        if seen > MAX_DIRS:
            return (f"holding more than {MAX_DIRS} directories: that none belongs to a "
                    "PostgreSQL cluster cannot be checked")
        if len(Path(root).relative_to(place).parts) >= MAX_DEPTH:
            dirs.clear()
    return None


def _cluster_part(directory: Path) -> str | None:
    """What part of a PostgreSQL cluster `directory` is, if it is one."""
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    if "PG_VERSION" in names:
        return "a PostgreSQL data directory (PG_VERSION)"
    if any(TABLESPACE_RE.fullmatch(n) for n in names):
        return "a tablespace location (PG_<version>_<catalog>)"
    if any(SEGMENT_RE.fullmatch(n) for n in names):
        return "a WAL directory (pg_wal or an archive: WAL segment files)"
    return None


def _overlaps(place: Path, other: Path) -> bool:
    return place == other or other in place.parents or place in other.parents


def _suggestion(place: Path, repository: Path) -> Path:
    """A new directory to suggest: beside `place` when that would be accepted, else
    /srv/pgvdrill-restore."""
    beside = place.parent / f"{place.name}-pgvdrill-restore"
    if len(place.parts) > 2 and not _in_system_tree(beside) and place not in _home_dirs() and \
            _inside_a_cluster(beside) is None and not _overlaps(beside, repository.resolve()):
        return beside
    return Path("/srv/pgvdrill-restore")
