"""Globals a database dump leaves out (roles, role memberships, tablespaces): dumped with
pg_dumpall --globals-only --no-role-passwords beside every logical backup, and the roles
a restore needs created from them on the target.

`dump_globals` connects to the source's own database (-l): pg_dumpall otherwise connects
to postgres or template1, which a least-privilege backup role may not reach. Without role
passwords no hash leaves the source, and a non-superuser can run it.

`restore_globals` creates roles the target lacks, and only those: an existing role is never
altered (neither its attributes nor its memberships), so the role pgvdrill connects as is
never touched. The file is untrusted (anyone who can write the repository): a role is
never created SUPERUSER, REPLICATION, BYPASSRLS or CREATEROLE, nor a member of a
predefined pg_ role (`withheld` names what was left out, for the operator to grant).
For each role it creates it replays the file's CREATE ROLE, ALTER ROLE ...
WITH/SET, COMMENT ON ROLE and the memberships that make the new role a member (GRANTED BY
a grantor the target did not have before is left out); tablespaces and per-database role
settings are not replayed. The statements run in one transaction on pgvdrill's own connection (no
file to share with a server in a container): all of them or none.

The file comes from the repository: whoever can write there must get no more out of it.
Only the shapes pg_dumpall writes are replayed (`CREATE ROLE name` alone, no PASSWORD, no
CURRENT_USER/SESSION_USER/CURRENT_ROLE/ALL for a name, one granted role and one member per
GRANT), each statement sent with the extended protocol, which runs one statement only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import psycopg

from pgvdrill.cluster.base import Server
from pgvdrill.errors import BackupError, RestoreError
from pgvdrill.logical.roles import role_name, statements, upper
from pgvdrill.proc.runner import ToolCall

GLOBALS_FILE = "globals.sql"
_GRANTED_BY = re.compile(r'\s+GRANTED\s+BY\s+("(?:[^"]|"")+"|[^\s"]+)\s*$', re.I)


def dump_globals(server: Server, outdir: Path, *, hint: str = "") -> Path:
    """pg_dumpall --globals-only --no-role-passwords of `server`, connected to its current
    database, into outdir/globals.sql (mode 0600); `BackupError` if the file exists or
    holds no role. `hint`: the hint of a pg_dumpall failure."""
    outdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = outdir / GLOBALS_FILE
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise BackupError(f"{target} already exists", "pgvdrill never overwrites a backup: "
                          "move it away or choose another directory") from None
    dbname = str(server.query("SELECT current_database()")[0][0])
    server.run_tool(ToolCall(
        "pg_dumpall", ["--globals-only", "--no-role-passwords", "--no-password",
                       "--database", dbname, "--file", str(target)],
        hint=hint or f"pg_dumpall --globals-only failed; {target} is incomplete"))
    if "CREATE ROLE" not in target.read_text():
        raise BackupError(f"{target} holds no CREATE ROLE: pg_dumpall wrote no globals",
                          "check that the role pg_dumpall connects as can read pg_roles")
    return target


# role specifications that name the connected role or every role, not a role called so
_SPECS = {"CURRENT_USER", "SESSION_USER", "CURRENT_ROLE", "ALL", "PUBLIC", "NONE"}


def _role(token: str) -> str | None:
    """The role an identifier token names; None for a role specification (CURRENT_USER,
    ALL...)."""
    return None if token.upper() in _SPECS else role_name(token)


def defined_roles(script: str) -> set[str]:
    """The roles a globals file creates (`CREATE ROLE name`, as pg_dumpall writes it)."""
    return {name for tokens, _ in statements(script)
            if upper(tokens[:2]) == ["CREATE", "ROLE"] and len(tokens) == 3
            and (name := _role(tokens[2])) is not None}


# what a globals file (untrusted: anyone who can write the repository) never grants on the
# target: the attributes that make a role more than an owner of objects, and memberships in
# predefined roles (pg_execute_server_program, pg_read_server_files, ...)
PRIVILEGED = {"SUPERUSER": "NOSUPERUSER", "REPLICATION": "NOREPLICATION",
              "BYPASSRLS": "NOBYPASSRLS", "CREATEROLE": "NOCREATEROLE"}
PREDEFINED = "pg_"


def withheld(script: str, create: set[str]) -> list[str]:
    """What creating the roles in `create` from `script` leaves out on purpose: privileged
    attributes and memberships in predefined roles, e.g. `app_owner SUPERUSER`."""
    left = []
    for tokens, _ in statements(script):
        words = upper(tokens)
        if words[:2] == ["ALTER", "ROLE"] and words[3:4] == ["WITH"] and \
                _role(tokens[2]) in create:
            left += [f"{role_name(tokens[2])} {w}" for w in words[4:] if w in PRIVILEGED]
        elif words[:1] == ["GRANT"] and words[2:3] == ["TO"] and len(tokens) > 3 and \
                _role(tokens[3]) in create and role_name(tokens[1]).startswith(PREDEFINED):
            left.append(f"{role_name(tokens[3])} IN ROLE {role_name(tokens[1])}")
    return left


def creation_statements(script: str, create: set[str], existing: set[str]) -> list[str]:
    """The statements of globals file `script` that create the roles in `create` as the
    source had them, on a server whose roles are `existing`, less what `withheld` names."""
    kept = []
    for tokens, text in statements(script):
        words = upper(tokens)
        named = _role(tokens[2]) if len(tokens) > 2 else None
        if words[:2] == ["CREATE", "ROLE"] and len(tokens) == 3:
            if named in create:
                kept.append(text)
        elif words[:2] == ["ALTER", "ROLE"] and words[3:4] in (["WITH"], ["SET"]):
            if named in create and not {"PASSWORD", "ENCRYPTED"} & set(words):
                kept.append(text if words[3] == "SET" or not PRIVILEGED.keys() & set(words)
                            else " ".join(PRIVILEGED.get(w, t) for t, w in zip(
                                tokens, words, strict=True)))
        elif words[:3] == ["COMMENT", "ON", "ROLE"] and len(words) > 3:
            if _role(tokens[3]) in create:
                kept.append(text)
        elif words[:1] == ["GRANT"] and words[2:3] == ["TO"] and len(tokens) > 3 \
                and words[4:5] in ([], ["WITH"], ["GRANTED"]):
            member, granted = _role(tokens[3]), _role(tokens[1])
            if member in create and granted in create | existing and \
                    granted is not None and not granted.startswith(PREDEFINED):
                kept.append(_without_new_grantor(text, existing))
    return kept


def _without_new_grantor(text: str, existing: set[str]) -> str:
    """A membership GRANT without its GRANTED BY unless the grantor existed before: a
    grantor missing, or created just now, holds no ADMIN option on the granted role there
    (PostgreSQL refuses `GRANTED BY` the source's bootstrap superuser recreated as an
    ordinary superuser); the grant is then the connecting role's."""
    match = _GRANTED_BY.search(text)
    return text[:match.start()] if match and role_name(match.group(1)) not in existing \
        else text


def restore_globals(server: Server, path: Path, roles: set[str] | None = None
                    ) -> list[str]:
    """Create on `server` the roles of globals file `path` it lacks (only those in `roles`
    when given), in one transaction; the roles created, sorted. `RestoreError` naming the
    statement that failed (then nothing was created)."""
    script = path.read_text()
    with server.connect(autocommit=False) as conn:
        existing = {str(name) for (name,) in conn.execute("SELECT rolname FROM pg_roles")}
        create = (defined_roles(script) if roles is None else roles) - existing
        conn.execute("SET LOCAL standard_conforming_strings = on")  # as pg_dumpall's
        for statement in creation_statements(script, create, existing):
            try:
                conn.execute(statement.encode(), prepare=True)  # one statement, no more
            except psycopg.Error as exc:
                raise RestoreError(
                    f"creating the roles {', '.join(sorted(create))} from {path} failed at "
                    f"{statement.splitlines()[0]!r}: {str(exc).strip()}; nothing was created",
                    "the role pgvdrill connects as needs CREATEROLE (SUPERUSER for superuser, "
                    "replication or bypassrls roles); or create the roles yourself (CREATE "
                    "ROLE)") from exc
    return sorted(create)
