"""The data loss window a provider's WAL archive allowed when the drill began (its RPO
evidence), from what the source said then and where the restored copy's recovery ended.

Read-only towards the source: one query (its WAL position, clock and archive_timeout).
- The copy replayed into the segment before the one the source was writing, or into that
  one: everything but the open segment was in the archive. What the open segment holds is
  lost in a disaster; archive_timeout bounds its age, so that setting is the window. With
  archive_timeout off (0) nothing bounds it: unknown, saying so. (A tool streaming WAL,
  such as Barman's pg_receivewal, has a smaller window than this; it is not measured.)
- The copy ended whole segments earlier: the archive lacks WAL the source wrote. The
  window is at least the time from the last transaction the copy replayed to the drill's
  start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from pgvdrill.server import ExternalServer
from pgvdrill.wal.names import format_lsn, parse_lsn

POSITION_SQL = """SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
    ELSE pg_current_wal_lsn() END::text, now(),
    (SELECT setting FROM pg_catalog.pg_settings WHERE name = 'archive_timeout')"""


@dataclass(frozen=True)
class SourceAt:
    """The source when the drill began: its WAL position, its clock, archive_timeout (s)."""

    lsn: int
    at: datetime
    archive_timeout: int

    @classmethod
    def read(cls, source: ExternalServer) -> SourceAt | None:
        """None when the source does not say (a standby that replayed nothing)."""
        try:
            rows = source.query(POSITION_SQL)
        except psycopg.Error:
            return None
        lsn, at, timeout = rows[0] if rows else (None, None, None)
        if lsn is None or not isinstance(at, datetime) or not str(timeout).isdigit():
            return None
        return cls(parse_lsn(str(lsn)), at, int(str(timeout)))


def rpo_evidence(source: SourceAt | None, replayed_to: int | None,
                 last_commit: datetime | None, segment_size: int) -> dict[str, Any]:
    """The drill's `rpo` evidence (policy.verdicts): seconds, or None and why."""
    evidence: dict[str, Any] = {"kind": "wal_archiving", "seconds": None}
    if source is None or replayed_to is None:
        evidence["why"] = ("the source did not say where its WAL was" if source is None
                           else "recovery did not say where it ended")
        return evidence
    evidence.update(source_lsn=format_lsn(source.lsn), replayed_to=format_lsn(replayed_to))
    missing = source.lsn // segment_size - replayed_to // segment_size - 1
    if missing <= 0:
        if source.archive_timeout > 0:
            evidence["seconds"] = float(source.archive_timeout)
            evidence["basis"] = ("the archive held every segment but the one the source was "
                                 "writing, whose age archive_timeout bounds")
        else:
            evidence["why"] = ("the archive held every segment but the one the source was "
                               "writing, and the source's archive_timeout is 0: nothing "
                               "bounds that segment's age")
        return evidence
    evidence["missing_segments"] = missing
    if last_commit is None:
        evidence["why"] = (f"the archive lacks {missing} complete segment(s) the source wrote "
                           "before the drill, and the copy replayed no transaction to date "
                           "its end")
        return evidence
    evidence["seconds"] = max(0.0, (source.at - last_commit).total_seconds())
    evidence["basis"] = (f"the archive lacks {missing} complete segment(s) the source wrote "
                         "before the drill: at least the time since the copy's last "
                         "replayed transaction")
    return evidence
