"""`restore logical --with-globals` replays a globals.sql read from the repository, as a
privileged user, on the target. Whoever can write the repository must not get more out of
it than the missing roles created: no other statement, no existing role altered, no
existing role made a member of a new one."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgvdrill.cluster import Cluster
from pgvdrill.errors import RestoreError
from pgvdrill.logical.globals import restore_globals, withheld

EXISTING = "CREATE ROLE bob LOGIN CONNECTION LIMIT 5"


def _replay(target: Cluster, tmp_path: Path, text: str, roles: set[str]) -> str:
    """restore_globals of `text`; the error it raised, or "" when it ran."""
    target.query(EXISTING)
    path = tmp_path / "globals.sql"
    path.write_text(text)
    try:
        restore_globals(target, path, roles)
    except RestoreError as exc:
        return str(exc)
    return ""


def _untouched(target: Cluster) -> None:
    assert target.query("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'postgres'") \
        == [(-1,)]
    assert target.query("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'bob'") == [(5,)]
    assert target.query("SELECT count(*) FROM pg_class WHERE relname = 'smuggled'") == [(0,)]


@pytest.mark.parametrize("smuggled", [
    # PostgreSQL reads a block comment where the replay's tokenizer read a string literal
    "ALTER ROLE app_owner WITH NOLOGIN /* ' */; ALTER ROLE postgres CONNECTION LIMIT 1; "
    "CREATE TABLE smuggled(); -- ';",
    # ... and a dollar-quoted string
    "COMMENT ON ROLE app_owner IS $$ ' $$; ALTER ROLE bob CONNECTION LIMIT 1; "
    "CREATE TABLE smuggled(); -- ';",
    # nested block comments
    "ALTER ROLE app_owner WITH NOLOGIN /* /* */ ' */; ALTER ROLE postgres CONNECTION "
    "LIMIT 1; CREATE TABLE smuggled(); -- ';",
], ids=["block-comment", "dollar-quote", "nested-comment"])
def test_globals_replay_runs_only_role_statements(target: Cluster, tmp_path: Path,
                                                  smuggled: str) -> None:
    _replay(target, tmp_path, f"CREATE ROLE app_owner;\n{smuggled}\n", {"app_owner"})

    _untouched(target)


def test_globals_replay_never_makes_an_existing_role_a_member(target: Cluster,
                                                              tmp_path: Path) -> None:
    """`CREATE ROLE x ROLE bob` (and a GRANT to several) hands bob the new role, i.e.
    ownership of everything the restore then gives it."""
    _replay(target, tmp_path, "CREATE ROLE app_owner ROLE bob;\n"
            "CREATE ROLE reader;\nGRANT app_owner TO reader, bob;\n",
            {"app_owner", "reader"})

    assert target.query("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r "
                        "ON r.oid = m.member WHERE r.rolname = 'bob'") == [(0,)]


@pytest.mark.parametrize("spec", ["CURRENT_USER", "SESSION_USER", "CURRENT_ROLE", "ALL"])
def test_globals_replay_never_alters_the_connected_role(target: Cluster, tmp_path: Path,
                                                        spec: str) -> None:
    """A role named "current_user" (quoted) in the dump and the globals; the bare keyword
    in ALTER ROLE names the restoring user (or every role)."""
    name = spec.lower()
    _replay(target, tmp_path, f'CREATE ROLE "{name}";\n'
            f"ALTER ROLE {spec} SET work_mem = '64kB';\n", {name})

    assert target.query("SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r "
                        f"ON r.oid = s.setrole WHERE r.rolname <> '{name}'") == [(0,)]
    assert target.query("SELECT count(*) FROM pg_db_role_setting WHERE setrole = 0") \
        == [(0,)]


def test_globals_replay_sets_no_password(target: Cluster, tmp_path: Path) -> None:
    """Roles are created without passwords (pg_dumpall --no-role-passwords): a password
    written into globals.sql would be a login the repository's writer knows."""
    _replay(target, tmp_path, "CREATE ROLE app_owner;\nALTER ROLE app_owner WITH "
            "SUPERUSER LOGIN PASSWORD 'known-to-the-writer';\n", {"app_owner"})

    assert target.query("SELECT rolpassword IS NULL FROM pg_authid "
                        "WHERE rolname = 'app_owner'") in ([(True,)], [])


def test_globals_replay_creates_no_privileged_role(target: Cluster, tmp_path: Path) -> None:
    _replay(target, tmp_path, "CREATE ROLE app_owner;\nALTER ROLE app_owner WITH SUPERUSER "
            "LOGIN;\nGRANT pg_execute_server_program TO app_owner;\n", {"app_owner"})

    assert target.query("SELECT rolsuper FROM pg_roles WHERE rolname = 'app_owner'") \
        in ([(False,)], [])
    assert target.query("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON "
                        "r.oid = m.roleid WHERE r.rolname = 'pg_execute_server_program'") \
        == [(0,)]
    assert withheld("ALTER ROLE app_owner WITH SUPERUSER LOGIN;\n"
                    "GRANT pg_execute_server_program TO app_owner;\n", {"app_owner"}) == [
        "app_owner SUPERUSER", "app_owner IN ROLE pg_execute_server_program"]
