"""Creating, from pg_dumpall --globals-only output, only the roles a server lacks."""

from __future__ import annotations

from pgvdrill.logical.globals import creation_statements, defined_roles

# pg_dumpall 18 --globals-only --no-role-passwords output (abridged)
GLOBALS = r'''\restrict e1k3P2JC
SET standard_conforming_strings = on;
CREATE ROLE "App ""Owner""";
ALTER ROLE "App ""Owner""" WITH NOSUPERUSER INHERIT NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE app_reader;
ALTER ROLE app_reader WITH NOSUPERUSER LOGIN CONNECTION LIMIT 10;
COMMENT ON ROLE app_reader IS 'reads;
and only reads';
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER LOGIN;
ALTER ROLE app_reader SET search_path TO 'app', 'public';
ALTER ROLE app_reader IN DATABASE vector_db SET work_mem TO '64MB';
GRANT "App ""Owner""" TO app_reader WITH INHERIT TRUE GRANTED BY postgres;
GRANT pg_read_all_data TO app_reader WITH INHERIT TRUE GRANTED BY "Boot Strap";
GRANT app_reader TO postgres WITH INHERIT TRUE GRANTED BY postgres;
CREATE TABLESPACE fast OWNER postgres LOCATION '/srv/fast';
\unrestrict e1k3P2JC
'''


def test_defined_roles_unquoted() -> None:
    assert defined_roles(GLOBALS) == {'App "Owner"', "app_reader", "postgres"}


def test_only_the_missing_roles_are_created_and_no_existing_role_is_altered() -> None:
    script = creation_statements(GLOBALS, {'App "Owner"', "app_reader"},
                             {"postgres", "pg_read_all_data"})

    assert script == [
        'CREATE ROLE "App ""Owner"""',
        'ALTER ROLE "App ""Owner""" WITH NOSUPERUSER INHERIT NOLOGIN NOREPLICATION '
        "NOBYPASSRLS",
        "CREATE ROLE app_reader",
        "ALTER ROLE app_reader WITH NOSUPERUSER LOGIN CONNECTION LIMIT 10",
        "COMMENT ON ROLE app_reader IS 'reads;\nand only reads'",
        "ALTER ROLE app_reader SET search_path TO 'app', 'public'",
        'GRANT "App ""Owner""" TO app_reader WITH INHERIT TRUE GRANTED BY postgres',
        # a grantor the server lacks is left out; postgres (existing) gains no membership
        "GRANT pg_read_all_data TO app_reader WITH INHERIT TRUE"]


def test_a_grantor_created_now_is_left_out() -> None:
    """The source's bootstrap superuser (here "Boot Strap") created on the target as an
    ordinary role holds no ADMIN option there: GRANTED BY it is refused."""
    script = GLOBALS.replace("CREATE ROLE postgres;", 'CREATE ROLE "Boot Strap";')
    grants = [s for s in creation_statements(script, {"app_reader", "Boot Strap"},
                                             {"postgres", "pg_read_all_data"})
              if s.startswith("GRANT pg_read_all_data")]
    assert grants == ["GRANT pg_read_all_data TO app_reader WITH INHERIT TRUE"]


def test_an_existing_role_gains_nothing_and_a_missing_granted_role_is_not_granted() -> None:
    script = "\n".join(creation_statements(GLOBALS, {"app_reader"}, {"postgres"}))

    assert "postgres WITH" not in script and "TO postgres" not in script
    assert "App" not in script and "pg_read_all_data" not in script  # neither exists
    assert "TABLESPACE" not in script and "IN DATABASE" not in script


def test_nothing_to_create_is_an_empty_script() -> None:
    assert creation_statements(GLOBALS, set(), {"postgres"}) == []
