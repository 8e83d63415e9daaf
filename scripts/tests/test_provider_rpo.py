"""The RPO evidence of a provider drill: from the source's WAL position and the copy's end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pgvdrill.drill.provider_rpo import rpo_evidence
from pgvdrill.drill.provider_source import SourceWal
from pgvdrill.policy.targets import load_targets
from pgvdrill.policy.verdicts import evaluate

SEGMENT = 16 * 2**20
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _source(lsn: int | None, archive_timeout: int | None) -> SourceWal:
    return SourceWal("7", lsn, None, NOW, archive_timeout)


def _verdict(evidence: dict[str, object]) -> tuple[str, str]:
    verdict = evaluate(load_targets(None, None), {"rpo": evidence})[0]
    return verdict.status, verdict.detail


def test_an_archive_holding_all_but_the_open_segment_is_bounded_by_archive_timeout() -> None:
    source = _source(5 * SEGMENT + 100, 60)

    evidence = rpo_evidence(source, 4 * SEGMENT + 40, NOW - timedelta(hours=2), SEGMENT)

    assert evidence["seconds"] == 60.0
    assert _verdict(evidence)[0] == "pass"


def test_without_archive_timeout_the_window_is_unknown_and_says_why() -> None:
    evidence = rpo_evidence(_source(5 * SEGMENT, 0), 5 * SEGMENT - 10, None, SEGMENT)

    status, detail = _verdict(evidence)
    assert evidence["seconds"] is None and status == "unknown"
    assert "archive_timeout is off" in detail


def test_an_archive_missing_whole_segments_fails_by_the_time_since_the_last_commit() -> None:
    source = _source(9 * SEGMENT + 5, 60)

    evidence = rpo_evidence(source, 4 * SEGMENT + 40, NOW - timedelta(minutes=30), SEGMENT)

    assert evidence["missing_segments"] == 4 and evidence["seconds"] == 1800.0
    assert _verdict(evidence)[0] == "fail"


def test_no_word_from_the_source_or_recovery_is_unknown() -> None:
    assert "source did not say" in _verdict(rpo_evidence(_source(None, 60), 1, None,
                                                         SEGMENT))[1]
    assert "recovery did not say" in _verdict(
        rpo_evidence(_source(1, 60), None, None, SEGMENT))[1]
