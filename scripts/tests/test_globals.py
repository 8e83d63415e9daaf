"""Creating, from pg_dumpall --globals-only output, only the roles a server lacks."""

from __future__ import annotations

from pgvdrill.logical.globals import creation_statements, defined_roles, withheld

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
        'GRANT "App ""Owner""" TO app_reader WITH INHERIT TRUE GRANTED BY postgres']
    # postgres (existing) gains no membership; pg_read_all_data (predefined) is withheld


def test_a_grantor_created_now_is_left_out() -> None:
    """The source's bootstrap superuser (here "Boot Strap") created on the target as an
    ordinary role holds no ADMIN option there: GRANTED BY it is refused."""
    script = ('CREATE ROLE "Boot Strap";\nCREATE ROLE app_owner;\nCREATE ROLE app_reader;\n'
              'GRANT app_owner TO app_reader WITH INHERIT TRUE GRANTED BY "Boot Strap";\n')
    grants = [s for s in creation_statements(
        script, {"app_owner", "app_reader", "Boot Strap"}, {"postgres"}) if "GRANT" in s]
    assert grants == ["GRANT app_owner TO app_reader WITH INHERIT TRUE"]


def test_privileges_a_repository_file_names_are_withheld() -> None:
    script = GLOBALS.replace("WITH NOSUPERUSER LOGIN CONNECTION LIMIT 10",
                             "WITH SUPERUSER LOGIN REPLICATION CONNECTION LIMIT 10")
    made = creation_statements(script, {"app_reader"}, {"postgres", "pg_read_all_data"})
    assert "ALTER ROLE app_reader WITH NOSUPERUSER LOGIN NOREPLICATION CONNECTION LIMIT 10" \
        in made
    assert not any("pg_read_all_data" in statement for statement in made)
    assert withheld(script, {"app_reader"}) == [
        "app_reader SUPERUSER", "app_reader REPLICATION", "app_reader IN ROLE pg_read_all_data"]


def test_an_existing_role_gains_nothing_and_a_missing_granted_role_is_not_granted() -> None:
    script = "\n".join(creation_statements(GLOBALS, {"app_reader"}, {"postgres"}))

    assert "postgres WITH" not in script and "TO postgres" not in script
    assert "App" not in script and "pg_read_all_data" not in script  # neither exists
    assert "TABLESPACE" not in script and "IN DATABASE" not in script


def test_nothing_to_create_is_an_empty_script() -> None:
    assert creation_statements(GLOBALS, set(), {"postgres"}) == []
