"""The low-level backup API: pg_backup_start, a file copy, pg_backup_stop, all in one
session, the returned backup_label (and tablespace_map) written into the copy.

The WAL from the start to the stop location is copied from pg_wal into the copy, so it
restores without an archive; a temporary replication slot made in the same session keeps
those segments from being recycled while the copy runs.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

from pgvdrill.cluster import Server
from pgvdrill.cluster.directory import DirectoryCluster
from pgvdrill.errors import BackupError, ConfigError
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS, BaseBackup
from pgvdrill.physical.manifest import label_range

# What PostgreSQL's documentation says to leave out of a copy ("Backing Up the Data
# Directory"): emptied directories keep existing, the rest is skipped.
EMPTIED_DIRS = {"pg_wal", "pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial",
                "pg_snapshots", "pg_stat_tmp", "pg_subtrans"}
SKIPPED_FILES = {"postmaster.pid", "postmaster.opts", "backup_label", "tablespace_map",
                 "pg_internal.init", "backup_manifest"}


def low_level_backup(cluster: Server, dest: Path, *, label: str = "pgvdrill low-level",
                     fast: bool = True) -> BaseBackup:
    """Copy `cluster`'s running data directory between pg_backup_start(label, fast) and
    pg_backup_stop() in the same session into `dest` (which must not exist)."""
    if not isinstance(cluster, DirectoryCluster):
        raise ConfigError(f"the low-level backup copies a local data directory; cluster "
                          f"{cluster.name} has none", "use a pg_basebackup setting")
    if os.path.lexists(dest):
        raise BackupError(f"{dest} already exists", "pgvdrill never overwrites a backup: "
                          "move it away or choose another directory")
    if any((cluster.datadir / "pg_tblspc").iterdir()):
        raise ConfigError(f"cluster {cluster.name} has tablespaces, which the low-level copy "
                          "does not follow", "use a pg_basebackup setting (-T maps them)")
    slot = f"pgvdrill_lowlevel_{secrets.token_hex(4)}"
    started = time.monotonic()
    with cluster.connect() as conn:
        conn.execute("SELECT pg_create_physical_replication_slot(%s, true, true)", (slot,))
        row = conn.execute("SELECT pg_walfile_name(lsn) FROM pg_backup_start(%s, %s) AS lsn",
                           (label, fast)).fetchone()
        assert row is not None
        first_segment = str(row[0])
        copy_datadir(cluster.datadir, dest)
        stop = conn.execute("SELECT lsn::text, labelfile, spcmapfile, pg_walfile_name(lsn) "
                            "FROM pg_backup_stop()").fetchone()
        assert stop is not None
        stop_lsn, labelfile, spcmapfile, last_segment = (str(v or "") for v in stop)
    (dest / "backup_label").write_text(labelfile)
    if spcmapfile:
        (dest / "tablespace_map").write_text(spcmapfile)
    copy_wal(cluster.datadir / "pg_wal", dest / "pg_wal", first_segment, last_segment)
    seconds = time.monotonic() - started
    return BaseBackup(BASE_BACKUP_SETTINGS["low-level"], dest, seconds,
                      [label_range(labelfile, stop_lsn)])


def copy_datadir(datadir: Path, dest: Path) -> None:
    """Copy a live data directory, leaving out what the documentation says to; files that
    vanish while copying (temporary files, dropped relations) are skipped."""
    for root, dirs, files in os.walk(datadir):
        rel = Path(root).relative_to(datadir)
        (dest / rel).mkdir(mode=0o700, parents=True, exist_ok=True)
        if rel.parts and rel.parts[0] in EMPTIED_DIRS:
            dirs.clear()
            continue
        dirs[:] = [d for d in dirs if not d.startswith("pgsql_tmp")]
        for name in files:
            if name in SKIPPED_FILES or name.startswith("pgsql_tmp"):
                continue
            try:
                shutil.copy2(Path(root) / name, dest / rel / name)
            except FileNotFoundError:
                continue


def copy_wal(pg_wal: Path, dest: Path, first: str, last: str) -> None:
    """Copy the WAL segments `first`..`last` (and timeline history files) from `pg_wal`."""
    names = sorted(p.name for p in pg_wal.iterdir() if p.is_file())
    wanted = [n for n in names if n.endswith(".history") or
              (len(n) == 24 and n[:8] == last[:8] and first <= n <= last)]
    missing = [n for n in (first, last) if n not in wanted]
    if missing:
        raise BackupError(f"WAL segment {missing[0]} is not in {pg_wal}",
                          "the backup ends in WAL that is gone: take the backup again")
    for name in wanted:
        shutil.copy2(pg_wal / name, dest / name)
