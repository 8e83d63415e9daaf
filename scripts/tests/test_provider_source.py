"""Whose backup a provider drill restored (drill.provider_source.SourceWal.same_server):
the restored copy's system identifier, from its pg_controldata output, against the
source's (B5); no server."""

from __future__ import annotations

import pytest

from pgvdrill.drill.provider_source import SourceWal
from pgvdrill.errors import BackupError

CONTROL = ("pg_control version number:            1800\n"
           "Database system identifier:           7581234567890123456\n"
           "Bytes per WAL segment:                16777216\n")


def test_a_backup_of_another_server_is_refused_naming_both() -> None:
    with pytest.raises(BackupError, match="7581234567890123456, the source is 1234: not a "
                       "backup of this source"):
        SourceWal("1234", None, None).same_server(CONTROL, "b1")


def test_the_same_server_passes_and_an_unreadable_identifier_is_unknown() -> None:
    same = SourceWal("7581234567890123456", None, None).same_server(CONTROL, "b1")
    assert same["status"] == "pass"
    unread = SourceWal(None, None, None).same_server(CONTROL, "b1")
    assert unread["status"] == "unknown" and "source" in str(unread["why"])
    garbage = SourceWal("1234", None, None).same_server("Database system identifier: x\n", "b")
    assert garbage["status"] == "unknown" and "restored copy" in str(garbage["why"])
