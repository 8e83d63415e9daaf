"""Reading a postgresql.conf that someone else wrote (the source's, inside a restored
backup), as untrusted input: its settings and where each came from, following include,
include_if_exists and include_dir only to regular files inside the data directory.

The grammar is PostgreSQL's (guc-file.l): `name [=] value`, `#` comments, values quoted
with '...' ('' and backslash escapes) or bare; names are case-insensitive and the last
assignment wins. Nothing here is executed or written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

MAX_BYTES = 1 << 20  # a configuration file larger than this is not read
MAX_DEPTH = 10  # PostgreSQL's own include nesting limit
MAX_FILES = 1000  # files read in all: includes of includes multiply (a file including
# itself three times, ten deep, would be read 88573 times)
_LINE = re.compile(
    r"""^\s*(?P<name>[A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)?)\s*=?\s*
        (?P<value>'(?:[^'\\]|''|\\.)*'|[^\s#']*)\s*(?:\#.*)?$""", re.X)
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
INCLUDES = ("include", "include_if_exists", "include_dir")


@dataclass(frozen=True)
class Setting:
    """One assignment: its value (unquoted) and the file and line it came from."""

    value: str
    where: str


@dataclass
class ConfRead:
    """What the files said, and what was not followed or not understood."""

    settings: dict[str, Setting] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def unquote(raw: str) -> str:
    """A configuration value as PostgreSQL reads it."""
    if not (raw.startswith("'") and raw.endswith("'") and len(raw) >= 2):
        return raw
    body, out, i = raw[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == "'" and body[i + 1:i + 2] == "'":
            out.append("'")
            i += 2
        elif char == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def read_conf(path: Path, root: Path, read: ConfRead | None = None, depth: int = 0
              ) -> ConfRead:
    """The settings of `path` and the files it includes that lie inside `root`."""
    read = read or ConfRead()
    text = _safe_text(path, root, read)
    if text is None:
        return read
    shown = _shown(path, root)
    read.files.append(shown)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            read.problems.append(f"{shown}:{number}: not a setting, ignored")
            continue
        name, value = match["name"].lower(), unquote(match["value"])
        if name in INCLUDES:
            _include(name, value, path.parent, root, read, depth, f"{shown}:{number}")
        else:
            read.settings[name] = Setting(value, f"{shown}:{number}")
    return read


def _include(kind: str, value: str, base: Path, root: Path, read: ConfRead, depth: int,
             where: str) -> None:
    stop = (f"includes nested deeper than {MAX_DEPTH}" if depth >= MAX_DEPTH else
            f"more than {MAX_FILES} configuration files read (an include loop?)"
            if len(read.files) >= MAX_FILES else "")
    if stop:
        if not any(stop in problem for problem in read.problems):  # said once
            read.problems.append(f"{where}: {stop}, not followed")
        return
    target = Path(value) if Path(value).is_absolute() else base / value
    if not _inside(target, root):
        read.problems.append(f"{where}: {kind} {value!r} lies outside the data directory "
                             "(the source's own file): not read")
        return
    if kind == "include_dir":
        if target.is_dir() and not target.is_symlink():
            for conf in sorted(target.iterdir()):
                if conf.name.endswith(".conf") and not conf.name.startswith("."):
                    read_conf(conf, root, read, depth + 1)
        return
    if kind == "include_if_exists" and not target.exists():
        return
    read_conf(target, root, read, depth + 1)


def _safe_text(path: Path, root: Path, read: ConfRead) -> str | None:
    shown = _shown(path, root)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        read.problems.append(f"{shown}: a symlink or not a regular file: not read")
        return None
    if not path.exists():
        read.problems.append(f"{shown}: missing")
        return None
    if path.stat().st_size > MAX_BYTES:
        read.problems.append(f"{shown}: larger than {MAX_BYTES} bytes: not read")
        return None
    return path.read_bytes().decode("utf-8", "replace")


def _inside(path: Path, root: Path) -> bool:
    resolved, top = path.resolve(), root.resolve()
    return resolved == top or top in resolved.parents


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
