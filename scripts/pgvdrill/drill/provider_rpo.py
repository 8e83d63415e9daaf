"""The data loss window a provider's WAL archive allowed when the drill began (its RPO
evidence), from what the source said then and where the restored copy's recovery ended.

Read-only towards the source (drill/provider_source.py reads it before the restore).
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

from datetime import datetime
from typing import Any

from pgvdrill.drill.provider_source import SourceWal
from pgvdrill.wal.names import format_lsn


def rpo_evidence(source: SourceWal, replayed_to: int | None,
                 last_commit: datetime | None, segment_size: int) -> dict[str, Any]:
    """The drill's `rpo` evidence (policy.verdicts) from `source` read before the restore
    and the copy's recovery: seconds, or None and why."""
    evidence: dict[str, Any] = {"kind": "wal_archiving", "seconds": None}
    if source.wal_lsn is None or source.at is None or replayed_to is None:
        evidence["why"] = ("recovery did not say where it ended" if replayed_to is None
                           else "the source did not say where its WAL or its clock was")
        return evidence
    evidence.update(source_lsn=format_lsn(source.wal_lsn), replayed_to=format_lsn(replayed_to))
    missing = source.wal_lsn // segment_size - replayed_to // segment_size - 1
    if missing <= 0:
        if source.archive_timeout:
            evidence["seconds"] = float(source.archive_timeout)
            evidence["basis"] = ("the archive held every segment but the one the source was "
                                 "writing, whose age archive_timeout bounds")
        else:
            evidence["why"] = ("the archive held every segment but the one the source was "
                               "writing, and the source's archive_timeout is off (or not "
                               "readable): nothing bounds that segment's age")
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
