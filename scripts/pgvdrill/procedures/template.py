"""Procedure templates: a team's own command lines with placeholders, rendered for one run.

A template is a POSIX shell command line, always run with `sh -c`, so pipes, `&&`,
redirections and variables work as in the team's scripts. Always, rather than only when
the text looks like it needs a shell: telling shell syntax from text (a `>` in quotes,
`$VAR`, a glob) is guesswork, and for a plain command `sh -c` with quoted values hands the
program exactly the argv a direct start would, so one way is both simpler and safer.

Every placeholder is replaced by its value quoted for the shell (`shlex.quote`): a path
with spaces, quotes, `$(...)` or `;` stays one word and is never run. That is why a
placeholder must stand outside quotes (`'{backup}'` would wrap quotes around the quoted
value): rendering refuses it. `{{` and `}}` are literal braces, `${name}` is the shell's
own expansion and is left alone, and a `{word}` that is no placeholder is refused as a
typo outside quotes (inside quotes it is shell text, e.g. awk's '{print}'). Heredoc bodies
are not parsed: write no placeholder into one.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping

from pgvdrill.errors import ConfigError

PLACEHOLDERS: dict[str, str] = {
    "dsn": "libpq connection string of the throw-away source database (no password: "
           "PGPASSFILE is set)",
    "target_dsn": "libpq connection string of the scratch target database (logical)",
    "backup": "where the backup goes: a file or directory path that does not exist yet, "
              "read back by the restore",
    "wal_dir": "the WAL archive directory (owned by the server's OS user)",
    "pgdata": "the empty data directory a physical restore fills",
    "target_time": "a recovery target time, e.g. '2025-11-01 10:00:00+00'",
}
_NAME = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _pieces(template: str, where: str) -> Iterator[tuple[str, bool]]:
    """The template as (text, is_placeholder) pieces; ConfigError for a quoted placeholder,
    an unknown `{word}` outside quotes, or an unterminated quote."""
    quote = ""  # the open quote character, if any
    i = 0
    while i < len(template):
        char = template[i]
        if char in "{}" and template[i:i + 2] in ("{{", "}}"):
            yield char, False
            i += 2
            continue
        match = _NAME.match(template, i) if char == "{" else None
        if match and not (i and template[i - 1] == "$"):
            name = match.group(1)
            if name in PLACEHOLDERS and quote:
                raise ConfigError(
                    f"{where}: placeholder {{{name}}} stands inside {quote}quotes{quote}",
                    f"write {{{name}}} without quotes: pgvdrill quotes every value itself")
            if not quote:
                if name not in PLACEHOLDERS:
                    raise ConfigError(f"{where}: unknown placeholder {{{name}}}",
                                      f"placeholders: {', '.join(PLACEHOLDERS)}; write {{{{ "
                                      "and }} for literal braces")
                yield name, True
                i = match.end()
                continue
        if char == "\\" and quote != "'":
            yield template[i:i + 2], False
            i += 2
            continue
        if char in "'\"" and quote in ("", char):
            quote = "" if quote else char
        yield char, False
        i += 1
    if quote:
        raise ConfigError(f"{where}: unterminated {quote}quote{quote}",
                          "close every quote in the command")


def placeholders(template: str, where: str = "template") -> set[str]:
    """The placeholders `template` uses (checking it as `render` does)."""
    return {text for text, named in _pieces(template, where) if named}


def render(template: str, values: Mapping[str, str], where: str = "template") -> str:
    """`template` with each placeholder replaced by its shell-quoted value; ConfigError
    naming `where` for a placeholder without a value in this kind of procedure."""
    out = []
    for text, named in _pieces(template, where):
        if not named:
            out.append(text)
        elif text in values:
            out.append(shlex.quote(values[text]))
        else:
            raise ConfigError(f"{where}: placeholder {{{text}}} has no value here",
                              f"available: {', '.join(sorted(values))}")
    return "".join(out)
