"""needed_roles: the roles a pg_restore script names, from pg_restore 18's own output."""

from __future__ import annotations

from pgvdrill.logical.roles import needed_roles

# pg_restore --schema-only --file - of a dump with owners, grants by a non-owner, column
# grants on a column named "a TO b", default privileges, a policy and a user mapping
SCRIPT = r'''\restrict 5UJJxaks
SET row_security = off;
--
-- Name: app; Type: SCHEMA; Schema: -; Owner: app_owner
--
CREATE SCHEMA app;
ALTER SCHEMA app OWNER TO app_owner;
--
-- Name: vector; Type: EXTENSION; Schema: -; Owner: -
--
CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;
--
-- Name: f(); Type: FUNCTION; Schema: app; Owner: App Owner
--
CREATE FUNCTION app.f() RETURNS integer
    LANGUAGE sql
    AS $$SELECT 'GRANT x TO nobody'$$;
ALTER FUNCTION app.f() OWNER TO "App Owner";
--
-- Name: items p; Type: POLICY; Schema: app; Owner: app_owner
--
CREATE POLICY p ON app.items FOR SELECT TO reader, "we ird" USING ((id > 0));
--
-- Name: items q; Type: POLICY; Schema: app; Owner: app_owner
--
CREATE POLICY q ON app.items USING ((note = 'TO x'::text));
--
-- Name: SCHEMA public; Type: ACL; Schema: -; Owner: pg_database_owner
--
GRANT USAGE ON SCHEMA public TO PUBLIC;
--
-- Name: FUNCTION f(); Type: ACL; Schema: app; Owner: App Owner
--
REVOKE ALL ON FUNCTION app.f() FROM PUBLIC;
REVOKE GRANT OPTION FOR EXECUTE ON FUNCTION app.f() FROM revoked;
--
-- Name: TABLE items; Type: ACL; Schema: app; Owner: app_owner
--
GRANT INSERT ON TABLE app.items TO reader WITH GRANT OPTION;
SET SESSION AUTHORIZATION reader;
GRANT INSERT ON TABLE app.items TO "we ird";
RESET SESSION AUTHORIZATION;
GRANT SELECT ON TABLE app.items TO "Mixed" GRANTED BY grantor;
--
-- Name: COLUMN items."a TO b"; Type: ACL; Schema: app; Owner: app_owner
--
GRANT SELECT("a TO b") ON TABLE app.items TO CURRENT_USER, col_reader;
--
-- Name: DEFAULT PRIVILEGES FOR TABLES; Type: DEFAULT ACL; Schema: app; Owner: definer
--
ALTER DEFAULT PRIVILEGES FOR ROLE definer IN SCHEMA app GRANT SELECT ON TABLES TO reader;
--
-- Name: USER MAPPING mapped SERVER s; Type: USER MAPPING; Schema: -; Owner: app_owner
--
CREATE USER MAPPING FOR mapped SERVER s OPTIONS (user 'TO remote');
\unrestrict 5UJJxaks
'''


def test_every_role_the_script_names_and_why() -> None:
    assert needed_roles(SCRIPT) == {
        "app_owner": {"owner"},
        "App Owner": {"owner"},
        "pg_database_owner": {"owner"},
        "reader": {"POLICY", "ACL", "DEFAULT ACL"},
        "we ird": {"POLICY", "ACL"},
        "revoked": {"ACL"},
        "Mixed": {"ACL"},
        "grantor": {"ACL"},
        "col_reader": {"ACL"},
        "definer": {"owner", "DEFAULT ACL"},
        "mapped": {"USER MAPPING"},
    }


def test_no_owner_no_privileges_leaves_what_policies_name() -> None:
    # what pg_restore prints with --no-owner --no-privileges: owners "-", no ACL items
    script = (SCRIPT.split("-- Name: SCHEMA public")[0]
              .replace("Owner: app_owner", "Owner: -").replace("Owner: App Owner", "Owner: -")
              .replace('ALTER FUNCTION app.f() OWNER TO "App Owner";', "")
              .replace("ALTER SCHEMA app OWNER TO app_owner;", ""))

    assert needed_roles(script) == {"reader": {"POLICY"}, "we ird": {"POLICY"}}
