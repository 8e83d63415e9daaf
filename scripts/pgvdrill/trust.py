"""Files that decide what pgvdrill runs (configuration files, `pg_bin` directories and the
programs in them, procedure executables) are code: they are used only when nobody but
root and the caller can change them.

The rule, as sudo and sshd apply it: the file (a symlink's target) and every directory
above it, up to /, is owned by root or the caller and writable by nobody else. A
directory writable by every user is allowed above it only with the sticky bit (as /tmp):
there nobody can rename or replace an entry they do not own. Group write is allowed only
for group root.
"""

from __future__ import annotations

import os
import pwd
import shlex
import stat
from collections.abc import Iterable
from pathlib import Path

from pgvdrill.errors import ConfigError


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _owner(uid: int) -> str:
    return f"{_name(uid)} (uid {uid})"


def _entry_problem(path: Path, st: os.stat_result, *, above: bool) -> str | None:
    """Why one file or directory could be changed by another user; None when it cannot."""
    mode = stat.S_IMODE(st.st_mode)
    described = f"{path} (owner {_owner(st.st_uid)}, mode {mode:04o})"
    if st.st_uid not in (0, os.geteuid()):
        return f"{described} is owned by another user"
    sticky_dir = above and stat.S_ISDIR(st.st_mode) and mode & stat.S_ISVTX
    if mode & stat.S_IWOTH and not sticky_dir:
        return f"{described} is writable by every user"
    if mode & stat.S_IWGRP and st.st_gid != 0 and not sticky_dir:
        return f"{described} is writable by its group (gid {st.st_gid})"
    return None


def problem(path: Path) -> tuple[Path, str] | None:
    """The first entry, and why, that lets someone other than root and the caller change
    `path`: the file, its target when it is a symlink, or a directory above either. None
    when nobody else can."""
    absolute = Path(os.path.abspath(path))
    chains = [absolute.resolve()]
    if absolute.resolve() != absolute:  # a symlink on the way: whoever replaces it decides
        chains.append(absolute.parent.resolve())
    seen: set[Path] = set()
    for start in chains:
        for index, entry in enumerate([start, *start.parents]):
            if entry in seen:
                continue
            seen.add(entry)
            try:
                st = os.lstat(entry)
            except (FileNotFoundError, PermissionError, NotADirectoryError):
                continue  # a missing or unreachable file is reported by whoever opens it
            found = _entry_problem(entry, st, above=index > 0 or start != chains[0])
            if found:
                return entry, found
    return None


def require_trusted(path: Path, what: str) -> None:
    """ConfigError naming `path` unless only root and the caller can change it (see module)."""
    found = problem(path)
    if found:
        entry, why = found
        user = _name(os.geteuid())
        owners = "root" if user == "root" else f"root or {user}"
        raise ConfigError(
            f"refusing {what} {path}: {why}: whoever can change it chooses what pgvdrill "
            f"runs as {user}",
            f"make it and every directory above it owned by {owners} and writable by nobody "
            f"else (e.g. chown {user} {entry} && chmod go-w {entry}), or move it to such a "
            "directory, e.g. /etc/pgvdrill")


def require_trusted_bindir(bindir: Path, what: str) -> None:
    """`require_trusted` for a bin directory and every program directly in it."""
    require_trusted(bindir, what)
    try:
        programs = sorted(bindir.iterdir())
    except OSError:
        return  # unreadable or missing: the tool lookup names it
    for program in programs:
        if program.is_file():
            require_trusted(program, f"{what}: program")


def command_paths(command: str) -> Iterable[Path]:
    """The absolute paths of existing executable files a shell command line names."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return ()  # unbalanced quotes: the template check names it
    return [Path(w) for w in words
            if w.startswith("/") and os.path.isfile(w) and os.access(w, os.X_OK)]


def safe_directory(path: Path) -> str | None:
    """Why files found in directory `path` could have been put there by another user (it is
    writable by others, sticky or not, or a directory above it is unsafe); None if safe."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror})"
    mode = stat.S_IMODE(st.st_mode)
    if mode & stat.S_IWOTH or (mode & stat.S_IWGRP and st.st_gid != 0):
        return f"{path} (owner {_owner(st.st_uid)}, mode {mode:04o}) is writable by other users"
    found = problem(path)
    return found[1] if found else None
