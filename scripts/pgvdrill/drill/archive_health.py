"""Can the WAL archive carry recovery past a base backup? The DR drill asks it of the newest
physical backup: a base backup that restores is no proof that point-in-time recovery
works, which needs every archived segment from the backup's start on, all of this
database system, replayable, and a source that is archiving now.
"""

from __future__ import annotations

from datetime import datetime

from pgvdrill.backup.stored import has_wal, wal_reach
from pgvdrill.drill.physical import ArchiveReplay
from pgvdrill.repository import Entry, Repository
from pgvdrill.server import ExternalServer
from pgvdrill.wal.names import Segment
from pgvdrill.wal.timelines import current_timeline, scan

ARCHIVER = ("SELECT current_setting('archive_mode'), pg_is_in_recovery(), last_archived_wal,"
            " last_archived_time, last_failed_wal, last_failed_time FROM pg_stat_archiver")


def check_archive(repo: Repository, entry: Entry, source: ExternalServer
                  ) -> tuple[ArchiveReplay | None, list[str]]:
    """How the DR drill replays the archive after restoring `entry` (to its end, which must
    reach the last segment of its contiguous part), and what stops recovery through it:
    a missing or foreign segment, a primary that no longer archives or whose archiving
    fails now. Neither while the repository holds no WAL (archiving not in use); a
    standby source is not asked (its primary archives). Recovery follows the timeline the
    source is on now, never a stray branch in the archive (a restored copy that archived
    into it); when that timeline cannot be read, the archive's latest, said as a problem
    when the archive forks."""
    if not repo.wal.is_dir():
        return None, [f"WAL archive {repo.wal} is missing: an unmounted disk or a directory "
                      "moved away (recovery cannot go past the backup's end)"]
    if not has_wal(repo):
        return None, []
    with source.connect() as conn:
        current, how = current_timeline(conn)
    reach, problem = wal_reach(repo, entry, current)
    replay = None
    if reach is not None and reach.segments:
        last = Segment.from_name(reach.segments[-1].removesuffix(".partial"))
        replay = ArchiveReplay(repo.wal, last.start, reach.partial, reach.segments,
                               reach.timeline)
    problems = [f"WAL archive {repo.wal}: {problem}"] if problem else []
    if current is None and scan(repo.wal).branches():
        problems.append(f"WAL archive {repo.wal} forks into timelines, and which one the "
                        f"source is on is unknown ({how}): recovery followed the latest")
    mode, standby, archived, archived_at, failed, failed_at = source.query(ARCHIVER)[0]
    if standby:
        return replay, problems
    if mode == "off":
        problems.append(f"the source {source.describe()} does not archive WAL (archive_mode "
                        f"= off), yet {repo.wal} holds archived WAL: point-in-time recovery "
                        "ends where the archive stopped")
    elif isinstance(failed_at, datetime) and (
            not isinstance(archived_at, datetime) or failed_at > archived_at):
        last_ok = (f"the last success was {archived} at {archived_at:%Y-%m-%d %H:%M:%S%z}"
                   if isinstance(archived_at, datetime) else "nothing was archived since")
        problems.append(f"archiving on the source {source.describe()} is failing: {failed} "
                        f"failed at {failed_at:%Y-%m-%d %H:%M:%S%z}, {last_ok}: recovery "
                        "cannot go past the last archived segment (see the source's log "
                        "for archive_command's error)")
    return replay, problems
