"""Role names are identifiers anyone with CREATEROLE on the source chose: a name holding a
newline or the header's own separators must still be the role the restore checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgvdrill.cluster import Cluster
from pgvdrill.logical.archive import inspect
from pgvdrill.logical.roles import needed_roles, restore_script
from pgvdrill.proc.runner import ToolCall


@pytest.mark.parametrize("role", ["app\nowner", "x; Owner: postgres", "Ünïcode owner"])
def test_the_owner_checked_is_the_role_that_owns(target: Cluster, tmp_path: Path,
                                                 role: str) -> None:
    target.query("CREATE ROLE {} NOLOGIN".format('"' + role.replace('"', '""') + '"'))
    target.query("CREATE TABLE owned (id int)")
    target.query("ALTER TABLE owned OWNER TO {}".format('"' + role.replace('"', '""') + '"'))
    dump = tmp_path / "db.dump"
    target.run_tool(ToolCall("pg_dump", ["-Fc", "--file", str(dump), "--dbname", "postgres"]))

    script = restore_script(target, inspect(target, dump), no_owner=False,
                            no_privileges=False)

    assert role in needed_roles(script)
