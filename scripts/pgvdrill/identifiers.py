"""SQL names as the operator writes them (in TOML, on the command line), parsed the way
PostgreSQL reads them."""

from __future__ import annotations

import re

_NAME_PART = re.compile(r'\s*(?:"((?:[^"]|"")*)"|([^".\s]+))\s*')


def parse_table_name(text: str) -> tuple[str, str]:
    """(schema, table) of a name as SQL reads it: `items`, `app.items`, `"My Schema"."T"`.

    Unquoted parts fold to lower case; a bare name is in `public`.
    """
    parts: list[str] = []
    pos = 0
    while True:
        match = _NAME_PART.match(text, pos)
        if match is None:
            raise ValueError(f"not a table name: {text!r}")
        quoted, bare = match.groups()
        parts.append(quoted.replace('""', '"') if quoted is not None else bare.lower())
        pos = match.end()
        if pos == len(text):
            break
        if text[pos] != "." or len(parts) == 2:
            raise ValueError(f"not a table name: {text!r}")
        pos += 1
    return ("public", parts[0]) if len(parts) == 1 else (parts[0], parts[1])
