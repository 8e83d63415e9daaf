"""Files that decide what pgvdrill runs (configuration files, `pg_bin` directories and the
programs in them, procedure executables) are code: they are used only when nobody but
root and the caller can change them.

The rule, as sudo and sshd apply it: the file (a symlink's target) and every directory
above it, up to /, is owned by root or the caller and writable by nobody else; so is
every symlink on the way and every directory holding one, hop by hop. A
directory writable by every user is allowed above it only with the sticky bit (as /tmp):
there nobody can rename or replace an entry they do not own. Group write is allowed only
for group root.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from pgvdrill.errors import ConfigError
from pgvdrill.files import elf


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
    sticky_dir = above and stat.S_ISDIR(st.st_mode) and mode & stat.S_ISVTX
    if st.st_uid not in (0, os.geteuid()):
        why = "is owned by another user"
    elif stat.S_ISLNK(st.st_mode):
        return None  # a link's mode means nothing; its directory decides who replaces it
    elif mode & stat.S_IWOTH and not sticky_dir:
        why = "is writable by every user"
    elif mode & stat.S_IWGRP and st.st_gid != 0 and not sticky_dir:
        why = f"is writable by its group (gid {st.st_gid})"
    else:
        return None
    return f"{path} (owner {_owner(st.st_uid)}, mode {mode:04o}) {why}"


MAX_LINKS = 40  # symlinks followed in one path, as Linux's ELOOP limit


def _walk(path: Path) -> tuple[list[tuple[Path, os.stat_result]], bool]:
    """Every entry the kernel passes to reach `path`, in order: /, each directory, each
    symlink (then its target's entries, hop by hop) and the file; and whether the walk
    reached the file (it stops at a missing or unreachable entry, or after MAX_LINKS)."""
    pending = os.path.join(os.getcwd(), path).split("/")
    current = "/"
    walked = [(Path("/"), os.lstat("/"))]
    links = 0
    while pending:
        name = pending.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            current = os.path.dirname(current)
            continue
        entry = os.path.join(current, name)
        try:
            st = os.lstat(entry)
        except OSError:
            return walked, False  # missing or unreachable: reported by whoever opens it
        walked.append((Path(entry), st))
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_LINKS:
                return walked, False
            target = os.readlink(entry)
            current = "/" if target.startswith("/") else current
            pending[:0] = target.split("/")
        else:
            current = entry
    return walked, True


def problem(path: Path, *, itself: bool = True) -> tuple[Path, str] | None:
    """The first entry, and why, that lets someone other than root and the caller change
    what `path` names: the file (unless not `itself`), every directory the kernel passes
    to reach it, every symlink on the way (through every hop) and the directories of its
    targets. The file is checked first, then upwards. None when nobody else can."""
    walked, complete = _walk(path)
    final = [walked.pop()] if complete else []
    order = [(e, st, False) for e, st in final if itself] + \
            [(e, st, True) for e, st in walked[::-1]]
    seen: set[Path] = set()
    for entry, st, above in order:
        if entry in seen:
            continue
        seen.add(entry)
        found = _entry_problem(entry, st, above=above)
        if found:
            return entry, found
    return None


def require_trusted(path: Path, what: str, *, itself: bool = True,
                    stake: str = "chooses what pgvdrill runs as {user}") -> None:
    """ConfigError naming `path` unless only root and the caller can change it (see module;
    not `itself`: only the directories above it); `stake` says what that one decides."""
    found = problem(path, itself=itself)
    if found:
        entry, why = found
        user = _name(os.geteuid())
        owners = "root" if user == "root" else f"root or {user}"
        raise ConfigError(
            f"refusing {what} {path}: {why}: whoever can change it {stake.format(user=user)}",
            f"make {'it and ' if itself else ''}every directory above it owned by {owners} "
            f"and writable by nobody else (e.g. chown {user} {entry} && chmod go-w {entry}), "
            f"or move it to such a directory{', e.g. /etc/pgvdrill' if itself else ''}")


def require_trusted_bindir(bindir: Path, what: str) -> None:
    """`require_trusted` for a bin directory, every program directly in it, and every
    library its programs load (`library_dirs`)."""
    require_trusted(bindir, what)
    programs = _files(bindir)
    for program in programs:
        require_trusted(program, f"{what}: program")
    for directory, loader in library_dirs(bindir, programs):
        require_trusted_files(directory, f"{what}: library directory of {loader.name}",
                              f"{what}: library")


def require_trusted_files(directory: Path, what: str, each: str) -> None:
    """`require_trusted` for a directory whose files are loaded or run (shared libraries,
    a server's extension modules and scripts), `what`, and for each file in it, `each`."""
    _require_trusted_dir(directory, what)
    for path in _files(directory):
        require_trusted(path, each)


def _files(directory: Path) -> list[Path]:
    """The regular files directly in `directory` (none if it cannot be read)."""
    try:
        return sorted(p for p in directory.iterdir() if p.is_file())
    except OSError:
        return []  # unreadable or missing: whoever opens it names it


def _require_trusted_dir(directory: Path, what: str) -> None:
    """`require_trusted` for a directory programs are loaded from, or, when it is
    missing, for its nearest existing ancestor: whoever can write that can create it."""
    nearest = directory
    while not os.path.lexists(nearest) and nearest != nearest.parent:
        nearest = nearest.parent
    if nearest != directory:
        what = f"{what} {directory} is missing; whoever can create it in"
    require_trusted(nearest, what)


def library_dirs(bindir: Path, programs: Iterable[Path]) -> list[tuple[Path, Path]]:
    """The directories the programs' shared libraries are loaded from, with the file that
    names each: the ELF RPATH/RUNPATH entries of the programs and, transitively, of the
    libraries in those directories (`$ORIGIN` is the file's real directory), plus the
    installation's own `lib` next to `bindir` (libpq in many builds, the server's
    modules). The system's default directories (ld.so.conf) are root's. ConfigError for a
    relative entry: the loader takes it relative to whatever directory the tool runs in."""
    found: dict[Path, Path] = {}
    lib = Path(os.path.realpath(bindir)).parent / "lib"
    if lib.is_dir():
        found[lib] = bindir
    pending = [p for p in programs if elf.is_elf(p)]
    while pending:
        loader = pending.pop()
        origin = os.path.dirname(os.path.realpath(loader))
        for entry in elf.search_path(loader):
            text = entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
            if "$" in text:  # $LIB or $PLATFORM: the part before it holds every choice
                text = text[:text.index("$")].rpartition("/")[0] or "/"
            if not text.startswith("/"):
                raise ConfigError(
                    f"refusing {loader}: it loads libraries from the relative directory "
                    f"{entry!r}, i.e. from wherever it is run",
                    "use a build without a relative RPATH/RUNPATH (readelf -d shows it)")
            directory = Path(os.path.normpath(text))
            if directory not in found:
                found[directory] = loader
                pending.extend(p for p in _files(directory) if elf.is_elf(p))
    return list(found.items())


_PROGRAM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")


def _words(command: str, depth: int = 3) -> Iterator[str]:
    """The shell words of `command` (operators apart), and those of every word that is
    itself a command line (as in `sh -c '...'`), `depth` levels down."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:
        return  # unbalanced quotes: the template check names it
    for word in words:
        yield word
        if depth and any(c.isspace() or c in ";|&" for c in word):
            yield from _words(word, depth - 1)


def require_trusted_command(command: str, what: str, search_path: str) -> None:
    """`require_trusted` for every file a shell command line names, as `sh -c` will run
    it: each absolute (or `~/`) path word, and the value of a `--name=PATH` or `VAR=PATH`
    word, that names an existing file, executable or not (`sh script`, `python3 x.py`
    run it just the same); each bare word that is a program on `search_path`, with every
    directory searched before it (a program planted there would run instead). A relative
    path climbing out with `..` is refused: procedures run in a fresh work directory of
    their own, so a relative path names only what the procedure wrote there."""
    for word in _words(command):
        for text in {word, word.partition("=")[2]} - {""}:
            text = os.path.expanduser(text) if text.startswith("~") else text
            if text.startswith("/"):
                if os.path.isfile(text):
                    require_trusted(Path(text), f"{what} runs")
            elif text.split("/")[0] == "..":
                raise ConfigError(f"refusing {what}: it names {text!r}, relative to the "
                                  "temporary work directory it runs in",
                                  "write its absolute path")
            elif _PROGRAM.fullmatch(text):
                _require_trusted_lookup(text, what, search_path)


def _require_trusted_lookup(name: str, what: str, search_path: str) -> None:
    """`require_trusted` for program `name` as the shell finds it on `search_path` and for
    the directories searched before it; nothing if it is no program there."""
    searched: list[str] = []
    for entry in search_path.split(os.pathsep):
        directory = entry or "."
        candidate = os.path.join(directory, name)
        if directory.startswith("/") and os.path.isfile(candidate) \
                and os.access(candidate, os.X_OK):
            require_trusted(Path(candidate), f"{what} runs")
            for earlier in searched:
                if not earlier.startswith("/"):
                    raise ConfigError(
                        f"refusing {what} runs {name!r} from {candidate} through $PATH, "
                        f"which first searches the relative directory {earlier!r} (the "
                        "procedure's work directory)",
                        f"remove relative entries from PATH, or write {candidate}")
                _require_trusted_dir(Path(earlier), f"{what} runs {name!r} from "
                                     f"{candidate} through $PATH, which first searches")
            return
        searched.append(directory)


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
