"""Which roles a pg_restore run will name, read from the script it would run.

The script is `pg_restore --schema-only --file -` with the restore's own --no-owner and
--no-privileges, so what it names is what the restore needs: owners (each item's `Owner:`
comment, as its ALTER ... OWNER TO), grantees and grantors of ACL items (GRANT ... TO,
REVOKE ... FROM, GRANTED BY, SET SESSION AUTHORIZATION of a grant made by a non-owner),
the roles of default privileges (FOR ROLE) and the roles a policy or a user mapping applies
to. Statements are tokenized (quoted identifiers, string literals, parentheses), never
split at spaces: a column named "a TO b" is one token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pgvdrill.cluster.base import ToolRunner
from pgvdrill.logical.archive import Archive
from pgvdrill.logical.restore import restore_argv
from pgvdrill.logical.table_items import unquote
from pgvdrill.proc.runner import ToolCall

_HEADER = re.compile(r"^-- Name: .*?; Type: (.*?); Schema: .*?; Owner: ?(.*)$", re.M)
# comments and psql meta-commands (skipped), quoted identifiers, string literals
# (dollar-quoted too), words; a nested block comment is read to its first */
_TOKEN = re.compile(r'--[^\n]*|/\*[\s\S]*?\*/|^\\[^\n]*|"(?:[^"]|"")*"'
                    r"|[Ee]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'"
                    r"|\$(?P<tag>(?:[A-Za-z_]\w*)?)\$[\s\S]*?\$(?P=tag)\$"
                    r"|[A-Za-z_][\w$]*|\d+|\S", re.M)
# Items whose statements name roles besides their owner.
_NAMING = ("ACL", "DEFAULT ACL", "POLICY", "USER MAPPING")
# Role specifications that name no role.
_NOT_ROLES = {"PUBLIC", "CURRENT_USER", "CURRENT_ROLE", "SESSION_USER", "GROUP", "DEFAULT"}


def restore_script(tools: ToolRunner, archive: Archive, *, no_owner: bool,
                   no_privileges: bool) -> str:
    """The schema part of the SQL `pg_restore` would run for `archive` with these options
    (read from the archive alone, no server)."""
    args = ["--schema-only", "--file", "-"]
    args += ["--no-owner"] if no_owner else []
    args += ["--no-privileges"] if no_privileges else []
    return tools.run_tool(ToolCall("pg_restore", restore_argv(archive.path, *args))).stdout


def needed_roles(script: str) -> dict[str, set[str]]:
    """Role -> what in `script` names it ("owner", "ACL", "DEFAULT ACL", "POLICY", "USER
    MAPPING")."""
    needs: dict[str, set[str]] = {}
    headers = list(_HEADER.finditer(script))
    for header, following in zip(headers, [*headers[1:], None], strict=True):
        kind, owner = header.group(1), header.group(2).strip()
        body = script[header.end():following.start() if following else len(script)]
        if owner and owner != "-":  # the header's name has newlines made spaces: the
            for role in _owners(body) or [owner]:  # ALTER ... OWNER TO names it exactly
                needs.setdefault(role, set()).add("owner")
        if kind in _NAMING:
            for tokens, _ in statements(body):
                for role in statement_roles(tokens):
                    needs.setdefault(role, set()).add(kind)
    return needs


def _owners(body: str) -> list[str]:
    """The roles the ALTER ... OWNER TO statements of one item's `body` name."""
    if "OWNER TO" not in body:
        return []
    found = []
    for tokens, _ in statements(body):
        words = upper(tokens)
        if words[:1] == ["ALTER"]:
            found += [role_name(tokens[i + 2]) for i in _top_level(words, "OWNER")
                      if words[i + 1:i + 2] == ["TO"] and len(tokens) > i + 2]
    return found


def statements(sql: str) -> Iterator[tuple[list[str], str]]:
    """The statements in `sql`: each one's tokens and its text without the semicolon
    (comments and psql meta-commands skipped)."""
    tokens: list[str] = []
    start = 0
    for match in _TOKEN.finditer(sql):
        lexeme = match.group()
        if lexeme.startswith(("--", "/*", "\\")):
            continue
        if lexeme == ";":
            if tokens:
                yield tokens, sql[start:match.start()]
            tokens = []
            continue
        if not tokens:
            start = match.start()
        tokens.append(lexeme)
    if tokens:
        yield tokens, sql[start:]


def statement_roles(tokens: list[str]) -> list[str]:
    """The roles one statement names (GRANT, REVOKE, ALTER DEFAULT PRIVILEGES, CREATE
    POLICY, CREATE USER MAPPING, SET SESSION AUTHORIZATION)."""
    words = upper(tokens)
    roles: list[str] = []
    if words[:3] == ["SET", "SESSION", "AUTHORIZATION"]:
        roles += _role_list(tokens, 3, ())
    elif words[:4] == ["CREATE", "USER", "MAPPING", "FOR"]:
        roles += _role_list(tokens, 4, ("SERVER",))
    elif words[:3] == ["ALTER", "DEFAULT", "PRIVILEGES"]:
        if words[3:5] in (["FOR", "ROLE"], ["FOR", "USER"]):
            roles += _role_list(tokens, 5, ("IN", "GRANT", "REVOKE"))
        roles += _grant_roles(tokens, words)
    elif words[:1] in (["GRANT"], ["REVOKE"]):
        roles += _grant_roles(tokens, words)
    elif words[:2] == ["CREATE", "POLICY"]:
        at = _top_level(words, "TO")
        if at:
            roles += _role_list(tokens, at[0] + 1, ("USING", "WITH"))
    return roles


def _grant_roles(tokens: list[str], words: list[str]) -> list[str]:
    """Grantees (after the last top-level TO of a GRANT, FROM of a REVOKE) and grantor."""
    verb = next(words[i] for i in _top_indexes(words) if words[i] in ("GRANT", "REVOKE"))
    marks = _top_level(words, "TO" if verb == "GRANT" else "FROM")
    roles = _role_list(tokens, marks[-1] + 1, ("WITH", "GRANTED", "CASCADE", "RESTRICT")) \
        if marks else []
    for at in _top_level(words, "GRANTED"):
        if words[at + 1:at + 2] == ["BY"]:
            roles += _role_list(tokens, at + 2, ())
    return roles


def _top_indexes(words: list[str]) -> list[int]:
    """Positions of the words outside parentheses."""
    depth, found = 0, []
    for i, word in enumerate(words):
        depth += (word == "(") - (word == ")")
        if depth == 0:
            found.append(i)
    return found


def _top_level(words: list[str], keyword: str) -> list[int]:
    """Positions of the bare `keyword` outside parentheses."""
    return [i for i in _top_indexes(words) if words[i] == keyword]


def upper(tokens: list[str]) -> list[str]:
    """`tokens` with bare words upper-cased (keywords compare as words)."""
    return [t.upper() if _bare(t) else t for t in tokens]


def role_name(token: str) -> str:
    """The role an identifier token names (bare identifiers fold to lower case)."""
    return unquote(token) if token.startswith('"') else token.lower()


def _role_list(tokens: list[str], start: int, stop: tuple[str, ...]) -> list[str]:
    """The roles of a comma-separated role list starting at `start`, up to a word in
    `stop` (PUBLIC, CURRENT_USER ... name no role)."""
    roles = []
    for lexeme in tokens[start:]:
        word = lexeme.upper() if _bare(lexeme) else lexeme
        if word in stop:
            break
        if word in _NOT_ROLES or word == ",":
            continue
        roles.append(role_name(lexeme))
    return roles


def _bare(token: str) -> bool:
    return not token.startswith(('"', "'"))
