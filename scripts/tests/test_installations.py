"""Choosing among installations by major or target version, and reading a SIGILL from a
server log (no server)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from pgvdrill.capabilities import illegal_instruction
from pgvdrill.cli.common import target_version
from pgvdrill.errors import ConfigError
from pgvdrill.installation import Found, Installation, for_major, for_target

FOUND = [Found("embedded", Installation(Path("/emb/bin"), "18.6")),
         Found("[drill] installations", Installation(Path("/pg16/bin"), "16.2")),
         Found("--installation", Installation(Path("/pg18.3/bin"), "18.3"))]
# PostgreSQL 18.3's log when pgvector's AVX-512 code ran on a CPU without it
SIGILL_LOG = """\
1796669835.443 [32592] : LOG:  database system is ready to accept connections
1796669835.732 [32592] : LOG:  client backend (PID 32603) was terminated by signal 4: \
Illegal instruction
1796669835.732 [32592] : DETAIL:  Failed process was running: SELECT v <-> w FROM t
1796669835.732 [32592] : LOG:  terminating any other active server processes
"""


def test_a_physical_restore_takes_the_sources_major() -> None:
    assert for_major(FOUND, 16, "restoring x").installation.version == "16.2"
    assert for_major(FOUND, 18, "restoring x").origin == "embedded"  # the first of 18


def test_no_installation_of_the_major_names_what_was_found() -> None:
    with pytest.raises(ConfigError) as caught:
        for_major(FOUND, 17, "restoring physical backup p-1 of a PostgreSQL 17.4 source",
                  ["--installation /nope: no postgres in /nope"])
    message = str(caught.value)
    assert "restoring physical backup p-1 of a PostgreSQL 17.4 source needs PostgreSQL 17" \
        in message
    assert "PostgreSQL 16.2 in /pg16/bin ([drill] installations)" in message
    assert "left out: --installation /nope" in message
    assert "[drill] installations" in caught.value.hint


def test_a_target_version_is_a_major_or_an_exact_version() -> None:
    assert for_target(FOUND, "18", "x").installation.version == "18.6"
    assert for_target(FOUND, "18.3", "x").installation.version == "18.3"
    with pytest.raises(ConfigError, match=r"target version is PostgreSQL 18\.1, and no "
                                          r"installation of it was found"):
        for_target(FOUND, "18.1", "x")


@pytest.mark.parametrize("value", ["18", "18.3", "9.6"])
def test_target_version_option(value: str) -> None:
    assert target_version(value) == value


@pytest.mark.parametrize("value", ["", "0", "18.", "v18", "18.3.1", "eighteen"])
def test_target_version_option_refuses(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not a PostgreSQL version"):
        target_version(value)


def test_a_backend_killed_by_sigill_is_named() -> None:
    reason = illegal_instruction(SIGILL_LOG, "/opt/pg/bin", "18.3")
    assert reason is not None
    assert reason.startswith("pgvector in /opt/pg/bin uses CPU instructions this machine "
                             "lacks (the server process died of SIGILL running "
                             "'SELECT v <-> w FROM t'")
    assert "client backend (PID 32603) was terminated by signal 4" in reason


def test_other_deaths_are_not_called_sigill() -> None:
    assert illegal_instruction(SIGILL_LOG.replace("signal 4: Illegal instruction",
                                                  "signal 9: Killed"), "/b", "18.3") is None
    assert illegal_instruction(SIGILL_LOG.replace("signal 4:", "signal 45:"), "/b",
                               "18.3") is None
