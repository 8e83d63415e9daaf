"""A provider drill whose tool is missing: skipped on a fresh machine, failed where CI says
the tools must be there (fixtures/backup_tools.py)."""

from __future__ import annotations

import pytest

from fixtures.backup_tools import REQUIRE, tool_or_skip


def test_a_missing_tool_skips_naming_the_install_script(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.delenv(REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"scripts/install-backup-tools\.sh"):
        tool_or_skip(False, "Barman")
    tool_or_skip(True, "Barman")  # present: nothing happens


def test_a_missing_tool_fails_where_the_run_requires_it(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setenv(REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match="this run requires it"):
        tool_or_skip(False, "pgBackRest")
