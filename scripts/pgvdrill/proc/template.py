"""Templates: a team's own command lines with placeholders, rendered for one run (the
procedures' (pgvdrill.procedures.template) and a `command` provider's).

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
from collections.abc import Collection, Iterator, Mapping

from pgvdrill.errors import ConfigError

_NAME = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _pieces(template: str, where: str, known: Collection[str]) -> Iterator[tuple[str, bool]]:
    """The template as (text, is_placeholder) pieces; ConfigError for a quoted placeholder,
    a `{word}` outside quotes that is not one of `known`, or an unterminated quote."""
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
            if name in known and quote:
                raise ConfigError(
                    f"{where}: placeholder {{{name}}} stands inside {quote}quotes{quote}",
                    f"write {{{name}}} without quotes: pgvdrill quotes every value itself")
            if not quote:
                if name not in known:
                    raise ConfigError(f"{where}: unknown placeholder {{{name}}}",
                                      f"placeholders: {', '.join(known)}; write {{{{ "
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


def placeholders(template: str, known: Collection[str], where: str = "template") -> set[str]:
    """The placeholders of `known` that `template` uses (checking it as `render` does)."""
    return {text for text, named in _pieces(template, where, known) if named}


def render(template: str, values: Mapping[str, str], known: Collection[str],
           where: str = "template") -> str:
    """`template` with each placeholder (one of `known`) replaced by its shell-quoted value;
    ConfigError naming `where` for a placeholder without a value in this use."""
    out = []
    for text, named in _pieces(template, where, known):
        if not named:
            out.append(text)
        elif text in values:
            out.append(shlex.quote(values[text]))
        else:
            raise ConfigError(f"{where}: placeholder {{{text}}} has no value here",
                              f"available: {', '.join(sorted(values))}")
    return "".join(out)
