"""The upgrade drill's parts that need no server: the downgrade refusal (before any file
is read), pg_controldata's checksum line, the downtime (preparation left out) and the
report entries of an upgrade and of a failed one (judged without an RTO kind)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgvdrill.drill.upgrade import (
    UpgradeDrill,
    UpgradeFailure,
    refuse_downgrade,
    version_key,
)
from pgvdrill.drill.upgrade_pg import data_checksums
from pgvdrill.errors import ConfigError, RestoreError
from pgvdrill.installation import Installation
from pgvdrill.policy.targets import load_targets
from pgvdrill.policy.verdicts import judged
from pgvdrill.timing import Phase
from pgvdrill.verify import Check, Verification

NOWHERE = Path("/nonexistent/bin")  # refused before its files would be read


def test_a_newer_major_to_an_older_is_refused_before_anything_is_read() -> None:
    with pytest.raises(RestoreError) as raised:
        refuse_downgrade(Installation(NOWHERE, "18.6"), Installation(NOWHERE, "16.2"),
                         ("dump", "pg_upgrade"))
    assert "PostgreSQL 18.6" in raised.value.message and "is a downgrade" in raised.value.message
    assert "nothing was started" in raised.value.message
    assert raised.value.exit_code == 5


def test_pg_upgrade_within_one_major_is_refused() -> None:
    with pytest.raises(RestoreError, match="same major"):
        refuse_downgrade(Installation(NOWHERE, "16.2"), Installation(NOWHERE, "16.4"),
                         ("pg_upgrade",))


def test_versions_compare_by_their_numbers() -> None:
    assert version_key("0.10.0") > version_key("0.8.6") > version_key("0.6.2")
    assert version_key("16.2") < version_key("18.6")


@pytest.mark.parametrize(("line", "on"), [("Data page checksum version:           1", True),
                                          ("Data page checksum version:           0", False)])
def test_the_checksum_setting_is_read_from_pg_controldata(line: str, on: bool) -> None:
    assert data_checksums(f"pg_control version number:            1300\n{line}\n") is on


def test_pg_controldata_without_the_checksum_line_is_an_error() -> None:
    with pytest.raises(ConfigError, match="Data page checksum version"):
        data_checksums("pg_control version number: 1300\n")


def upgraded(ok: bool) -> UpgradeDrill:
    check = Check("extension", ok, [] if ok else ["extension vector is at 0.6.2"], 0.1)
    return UpgradeDrill(
        "pg_upgrade", {"postgresql": "16.2", "pgvector": "0.6.2"},
        {"postgresql": "18.6", "pgvector": "0.8.6"},
        [Phase("stop", 1.0), Phase("initdb", 5.0), Phase("check", 3.0),
         Phase("pg_upgrade", 10.0), Phase("start", 0.5)], Verification([check]))


def test_the_downtime_leaves_out_what_is_prepared_beforehand() -> None:
    drill = upgraded(True)
    assert drill.downtime == pytest.approx(11.5)
    assert drill.as_dict()["measures"]["downtime_seconds"] == 11.5
    assert drill.as_dict()["measures"]["total_seconds"] == 19.5
    assert "initdb 5.0s beforehand" in drill.summary()


def test_an_upgrade_entry_is_judged_without_an_rto_kind() -> None:
    targets = load_targets(None)
    for drill in (upgraded(True), upgraded(False)):
        entry = judged(targets, drill.as_dict())
        assert entry["kind"] == "upgrade" and entry["verdicts"] == []
        assert entry["drill"] == "upgrade:pg_upgrade:16.2->18.6"
    assert judged(targets, upgraded(False).as_dict())["problems"] == [
        "extension: extension vector is at 0.6.2"]


def test_a_failed_upgrade_is_judged_without_an_rto_kind() -> None:
    failure = UpgradeFailure("upgrade:dump:16.2->18.6", "upgrade", "pg_dump failed",
                             stage="dump")
    entry = judged(load_targets(None), failure.as_dict())
    assert entry["ok"] is False and entry["verdicts"] == [] and entry["error"] == "pg_dump failed"
