"""Replaying pg_dumpall --globals-only output on a server that has some of its roles."""

from __future__ import annotations

from pgvdrill.logical.globals import without_existing_roles

# pg_dumpall 18 --globals-only output (password hashes shortened)
GLOBALS = r'''\restrict e1k3P2JC
SET standard_conforming_strings = on;
CREATE ROLE "App ""Owner""";
ALTER ROLE "App ""Owner""" WITH NOSUPERUSER INHERIT NOLOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE app_reader;
ALTER ROLE app_reader WITH NOSUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$4096:SLp4j7bq';
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$4096:UIXxqqdA';
GRANT "App ""Owner""" TO app_reader WITH INHERIT TRUE GRANTED BY postgres;
\unrestrict e1k3P2JC
'''


def test_the_connecting_superuser_is_left_alone_and_new_roles_created() -> None:
    script, skipped = without_existing_roles(GLOBALS, {"postgres"}, "postgres")

    assert skipped == ["postgres"]
    assert "ROLE postgres" not in script
    assert script.count("CREATE ROLE") == 2 and script.count("ALTER ROLE") == 2
    assert script.startswith("\\restrict ") and "GRANTED BY postgres" in script


def test_existing_roles_keep_their_alter_role_quoted_names_unquoted() -> None:
    script, skipped = without_existing_roles(GLOBALS, {"postgres", 'App "Owner"', "app_reader"},
                                             "postgres")

    assert skipped == ['App "Owner"', "app_reader", "postgres"]
    assert "CREATE ROLE" not in script
    altered = [line.split(" WITH ")[0] for line in script.splitlines() if "ALTER" in line]
    assert altered == ['ALTER ROLE "App ""Owner"""', "ALTER ROLE app_reader"]
