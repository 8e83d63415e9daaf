"""Pure logic of `pgvdrill backup`: the tools' argv from the configuration, the tool
version rule, and the runner's live stderr (no server)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pgvdrill.backup.source import require_tools_for
from pgvdrill.backup.take import artifact_name, basebackup_argv, dump_argv
from pgvdrill.config import Logical, Physical
from pgvdrill.errors import ConfigError, ToolError
from pgvdrill.installation import Installation
from pgvdrill.proc import runner

TARGET = Path("/repo/logical/x/vector_db.dump")


def test_the_runbooks_dump_setting_is_expressible() -> None:
    argv = dump_argv(Logical(format="custom", compress="9"), TARGET)
    assert argv == ["--format", "custom", "--file", str(TARGET), "--compress", "9",
                    "--verbose", "--no-password"]


def test_parallel_dumps_need_the_directory_format() -> None:
    assert dump_argv(Logical(format="directory", jobs=4), TARGET)[6:8] == ["--jobs", "4"]
    with pytest.raises(ConfigError, match='jobs = 4 needs format = "directory"'):
        dump_argv(Logical(format="custom", jobs=4), TARGET)


def test_basebackup_argv_from_the_physical_section() -> None:
    argv = basebackup_argv(Physical(format="tar", compress="client-gzip:1",
                                    checkpoint="spread", wal_method="fetch"),
                           Path("/repo/physical/x"), "pgvdrill x")
    assert argv == ["--pgdata", "/repo/physical/x", "--format", "tar", "--wal-method", "fetch",
                    "--checkpoint", "spread", "--label", "pgvdrill x",
                    "--compress", "client-gzip:1", "--progress", "--verbose", "--no-password"]
    assert "--compress" not in basebackup_argv(Physical(), Path("/b"), "l")
    assert "--max-rate" not in basebackup_argv(Physical(), Path("/b"), "l")
    assert basebackup_argv(Physical(max_rate="32k"), Path("/b"), "l")[-5:] == \
        ["--max-rate", "32k", "--progress", "--verbose", "--no-password"]


@pytest.mark.parametrize("compress", ["client-gzip:1", "gzip", "9"])
def test_client_side_compression_of_a_plain_backup_is_refused(compress: str) -> None:
    with pytest.raises(ConfigError, match="cannot do for format"):
        basebackup_argv(Physical(format="plain", compress=compress), Path("/b"), "l")
    basebackup_argv(Physical(format="plain", compress="server-gzip"), Path("/b"), "l")


def test_artifact_names() -> None:
    assert artifact_name("vector_db", "custom") == "vector_db.dump"
    assert artifact_name("a/b", "directory") == "a_b.dir"


def _facts(version: str) -> dict[str, object]:
    """server_facts of a server of `version` ("18.1")."""
    major, minor = version.split(".")
    return {"describe": "db1:5432/vector_db", "server_version": version,
            "server_version_num": int(major) * 10000 + int(minor)}


def test_tools_older_than_the_server_are_refused() -> None:
    facts = _facts("18.1")
    require_tools_for(facts, Installation(Path("/pg18/bin"), "18.0"), "logical")
    require_tools_for(facts, Installation(Path("/pg19/bin"), "19.2"), "logical")
    with pytest.raises(ConfigError, match=r"PostgreSQL 17\.6, older than the server "
                                          r"db1:5432/vector_db \(PostgreSQL 18\.1\)"):
        require_tools_for(facts, Installation(Path("/pg17/bin"), "17.6"), "logical")


def test_physical_backups_need_the_servers_own_major() -> None:
    facts = _facts("16.2")
    require_tools_for(facts, Installation(Path("/pg16/bin"), "16.9"), "physical")
    require_tools_for(facts, Installation(Path("/pg18/bin"), "18.6"), "logical")
    with pytest.raises(ConfigError, match=r"a physical backup of the server db1:5432/vector_db "
                                          r"\(PostgreSQL 16\.2\) needs PostgreSQL 16's "
                                          r"pg_basebackup.*/pg18/bin are PostgreSQL 18\.6") as got:
        require_tools_for(facts, Installation(Path("/pg18/bin"), "18.6"), "physical")
    assert "[drill] installations" in got.value.hint


def test_tee_stderr_shows_it_as_it_comes_and_keeps_it(capfd: pytest.CaptureFixture[str]
                                                      ) -> None:
    result = runner.run(["sh", "-c", "echo out; printf 'step 1\\r' >&2; echo done >&2"],
                        tee_stderr=True)
    assert (result.stdout, result.stderr) == ("out\n", "step 1\rdone\n")
    assert capfd.readouterr().err == "step 1\rdone\n"


def test_tee_stderr_failure_still_carries_the_tail() -> None:
    with pytest.raises(ToolError, match="exited with code 2") as caught:
        runner.run(["sh", "-c", "echo broken >&2; exit 2"], tee_stderr=True)
    assert "broken" in caught.value.stderr


def test_tee_stderr_timeout_kills_the_program() -> None:
    started = time.monotonic()
    with pytest.raises(ToolError, match="timed out"):
        runner.run(["sleep", "30"], timeout=0.2, tee_stderr=True)
    assert time.monotonic() - started < 10  # killed: not waited for to close its stderr
