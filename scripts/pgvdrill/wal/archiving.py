"""Continuous archiving on a cluster: archive directories, the archive_command and
restore_command pgvdrill's servers run, and waiting until a segment is archived."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pgvdrill import osuser
from pgvdrill.cluster import Cluster
from pgvdrill.cluster.base import ConfigValue
from pgvdrill.errors import BackupError
from pgvdrill.proc.wait import Waited, wait_until
from pgvdrill.wal.names import SEGMENT_RE


def make_archive_dir(path: Path, server_user: str | None) -> Path:
    """Create an empty archive directory the server's OS user owns (mode 0700)."""
    path.mkdir(mode=0o700, parents=True)
    osuser.chown_tree(path, server_user)
    return path


def expected_spans(segments: Sequence[str]) -> list[str]:
    """walcmd --expect ranges (FIRST:LAST per timeline) of the segment files `segments`
    (recovery's order; a .partial one left out: it is served only under its own name)."""
    spans: dict[str, list[str]] = {}
    for name in segments:
        if SEGMENT_RE.fullmatch(name):
            spans.setdefault(name[:8], []).append(name)
    return [f"{min(names)}:{max(names)}" for names in spans.values()]


def switch_and_wait(cluster: Cluster, archive: Path, timeout: float = 60) -> str:
    """Close the current segment (pg_switch_wal) and wait until it is in `archive`;
    returns its name."""
    segment = str(cluster.query("SELECT pg_walfile_name(pg_switch_wal())")[0][0])
    wait_archived(cluster, archive, segment, timeout)
    return segment


def wait_archived(cluster: Cluster, archive: Path, name: str, timeout: float = 60) -> None:
    """Wait until `archive/name` exists (archive-wal links a file there only once it is
    durable); on timeout, `BackupError` with the archiver's statistics."""
    def stalled(_: Waited) -> str:
        last, failed, failures = cluster.query(
            "SELECT last_archived_wal, last_failed_wal, failed_count FROM pg_stat_archiver")[0]
        return (f"{name} was not archived into {archive} within {timeout:.0f}s (last "
                f"archived {last}, last failed {failed}, {failures} failure(s))")

    wait_until((archive / name).exists, timeout=timeout, error=BackupError, message=stalled,
               hint="read the server log for archive_command's error output")


def hand_to_server(directory: Path, server_user: str | None) -> None:
    """Give a directory a client tool wrote as us (pg_receivewal's) to the server's OS
    user, so that its restore_command can read it."""
    osuser.chown_tree(directory, server_user)


def enable_archiving(cluster: Cluster, archive: Path, **settings: ConfigValue) -> None:
    """archive_mode on with the cluster's archive command into `archive` (plus `settings`),
    then restart."""
    cluster.configure(archive_mode="on", archive_command=cluster.archive_command(archive),
                      **settings)
    cluster.stop()
    cluster.start()
