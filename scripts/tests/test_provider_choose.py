"""Which provider backup a DR drill restores (drill.provider_choose); no tool."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pgvdrill.drill.provider_choose import named, newest
from pgvdrill.errors import ConfigError, RestoreError
from pgvdrill.providers.base import CLOCK_SKEW, ProviderBackup
from pgvdrill.wal.pitr import Target

END = Target("end")


def _at(hour: int) -> datetime:
    return datetime(2026, 12, 1, hour, tzinfo=UTC)


BACKUPS = [ProviderBackup("b1", "physical", finished=_at(1), end_lsn="0/3000100"),
           ProviderBackup("d1", "logical", finished=_at(2)),
           ProviderBackup("b3", "physical", finished=_at(5), end_lsn="0/9000100"),
           ProviderBackup("b2", "physical", finished=_at(3), end_lsn="0/5000100")]


def test_the_newest_of_each_kind_by_finish_time() -> None:
    assert newest(BACKUPS, "physical", END, "p") == BACKUPS[2]
    assert newest(BACKUPS, "logical", END, "p") == BACKUPS[1]
    assert newest(BACKUPS[:1], "logical", END, "p") is None


def test_without_finish_times_the_last_listed() -> None:
    listed = [ProviderBackup("x", "physical"), ProviderBackup("y", "physical", finished=_at(9)),
              ProviderBackup("z", "physical")]
    assert newest(listed, "physical", END, "p") == listed[-1]


def test_a_time_target_takes_the_newest_finished_before_it() -> None:
    target = Target("time", _at(4).isoformat())
    assert newest(BACKUPS, "physical", target, "p") == BACKUPS[3]
    unplaced = [ProviderBackup("x", "physical"), BACKUPS[0]]
    assert newest(unplaced, "physical", target, "p") == BACKUPS[0]


def test_an_lsn_target_takes_the_newest_ended_at_or_before_it() -> None:
    assert newest(BACKUPS, "physical", Target("lsn", "0/5000100"), "p") == BACKUPS[3]
    assert newest(BACKUPS, "physical", Target("lsn", "0/4000000"), "p") == BACKUPS[0]


def test_no_backup_before_the_target_is_an_error_saying_so() -> None:
    with pytest.raises(RestoreError, match="no physical backup that finished before"):
        newest(BACKUPS, "physical", Target("time", _at(0).isoformat()), "p")


def test_xid_name_and_immediate_targets_take_the_newest() -> None:
    for target in (Target("xid", "900"), Target("name", "n"), Target("immediate")):
        assert newest(BACKUPS, "physical", target, "p") == BACKUPS[2]


def test_a_named_backup_or_the_newest_ids_listed() -> None:
    assert named(BACKUPS, "b2", "p") == BACKUPS[3]
    with pytest.raises(ConfigError, match="lists no backup 'b9'") as raised:
        named(BACKUPS, "b9", "p")
    assert "b2" in raised.value.hint


def test_a_finish_within_the_clock_skew_is_believed_beyond_it_refused() -> None:
    """B2: a tool clock a little ahead is fine; a backup finished later than the skew
    allows is never taken as the newest (the drill says so, naming it)."""
    now = datetime.now(UTC)
    ahead = ProviderBackup("ahead", "physical", finished=now + CLOCK_SKEW / 2)
    assert newest([BACKUPS[0], ahead], "physical", END, "p") == ahead
    future = ProviderBackup("future", "physical", finished=now + 2 * CLOCK_SKEW)
    with pytest.raises(RestoreError, match=r"backup future finished at .* in the future"):
        newest([BACKUPS[0], future], "physical", END, "p")
