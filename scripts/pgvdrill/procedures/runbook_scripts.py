"""The runbook's scripts, written from its description (RUNBOOK.md sections 2, 4 and 5; the
original files are not part of the document): each does what the runbook says it does, in
the order it says, and nothing it does not say. They are drilled as the runbook's, never
used by pgvdrill itself.

archive_wal.sh and restore_test.sh are procedure templates ({wal_dir} is the archive); the
BackupManager is a Python program whose methods a command line calls.
"""

from __future__ import annotations

# Section 2: "a script archive_wal.sh %p %f that copies to /backup/wal and optionally
# rsyncs to a remote host, then exit 0".
ARCHIVE_WAL_SH = """#!/bin/bash
# archive_wal.sh %p %f: copy a WAL segment into the archive, optionally rsync it off-site
WAL_PATH="$1"
WAL_FILE="$2"
ARCHIVE_DIR={wal_dir}
REMOTE_HOST=""        # e.g. backup-host; empty: no remote copy

cp "$WAL_PATH" "$ARCHIVE_DIR/$WAL_FILE"
if [ -n "$REMOTE_HOST" ]; then
    rsync -a "$ARCHIVE_DIR/$WAL_FILE" "$REMOTE_HOST:/backup/wal/"
fi
exit 0
"""

# Section 5: "restore_test.sh <dump>: createdb test_restore_<ts>, pg_restore -d it, count the
# base tables in information_schema.tables, list pg_stat_user_tables.n_live_tup for the top
# 10 tables, dropdb".
RESTORE_TEST_SH = """#!/bin/bash
# restore_test.sh <dump>: restore a dump into a test database, count what arrived, drop it
BACKUP_FILE="$1"
TEST_DB="test_restore_$(date +%Y%m%d_%H%M%S)"

createdb -U postgres "$TEST_DB"
pg_restore -U postgres -d "$TEST_DB" "$BACKUP_FILE"
psql -U postgres -d "$TEST_DB" -c "SELECT count(*) FROM information_schema.tables \
WHERE table_schema = 'public' AND table_type = 'BASE TABLE';"
psql -U postgres -d "$TEST_DB" -c "SELECT schemaname, relname, n_live_tup \
FROM pg_stat_user_tables ORDER BY n_live_tup DESC LIMIT 10;"
dropdb -U postgres "$TEST_DB"
"""

# Section 4: BackupManager(db_config, backup_dir="/backup/postgres"), wal_dir =
# backup_dir/wal; full_backup() runs the pg_dump of section 2 (1 h timeout, the password
# through PGPASSWORD) and returns the file if it exists and is non-empty; verify_backup(f)
# runs pg_restore -l f; cleanup_old_backups(days=7) and cleanup_old_wal(days=3) delete files
# by modification time; logs to a file and stderr. Called as
# `python3 backup_manager.py CONFIG.json METHOD [ARG]`, CONFIG holding db_config and
# backup_dir; prints what the method returned, exits 1 when that is false or None.
BACKUP_MANAGER_PY = '''
import json
import logging
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path


class BackupManager:
    def __init__(self, db_config, backup_dir="/backup/postgres"):
        self.db_config = db_config
        self.backup_dir = Path(backup_dir)
        self.wal_dir = self.backup_dir / "wal"
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        self.logger = logging.getLogger("BackupManager")
        self.logger.setLevel(logging.INFO)
        for handler in (logging.FileHandler(self.backup_dir / "backup.log"),
                        logging.StreamHandler()):
            self.logger.addHandler(handler)

    def full_backup(self):
        timestamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        backup_file = self.backup_dir / f"full_backup_{timestamp}.dump"
        env = os.environ.copy()
        env["PGPASSWORD"] = self.db_config["password"]
        cmd = ["pg_dump", "-h", self.db_config["host"], "-p", str(self.db_config["port"]),
               "-U", self.db_config["user"], "-d", self.db_config["database"],
               "-F", "c", "-Z", "9", "-f", str(backup_file)]
        try:
            subprocess.run(cmd, env=env, check=True, timeout=3600)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            self.logger.error("full backup failed: %s", exc)
            return None
        if backup_file.exists() and backup_file.stat().st_size > 0:
            self.logger.info("full backup done: %s", backup_file)
            return backup_file
        return None

    def verify_backup(self, backup_file):
        result = subprocess.run(["pg_restore", "-l", str(backup_file)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            self.logger.error("backup %s is invalid: %s", backup_file, result.stderr)
            return False
        items = [line for line in result.stdout.splitlines() if not line.startswith(";")]
        self.logger.info("backup %s is valid: %d items", backup_file, len(items))
        return True

    def cleanup_old_backups(self, days=7):
        cutoff = time.time() - days * 86400
        removed = 0
        for path in self.backup_dir.glob("full_backup_*.dump"):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        self.logger.info("removed %d backups older than %d days", removed, days)
        return removed

    def cleanup_old_wal(self, days=3):
        cutoff = time.time() - days * 86400
        removed = 0
        for path in self.wal_dir.iterdir():
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        self.logger.info("removed %d WAL files older than %d days", removed, days)
        return removed


if __name__ == "__main__":
    config = json.loads(Path(sys.argv[1]).read_text())
    manager = BackupManager(config["db_config"], config["backup_dir"])
    args = [int(a) if a.isdigit() else a for a in sys.argv[3:]]
    returned = getattr(manager, sys.argv[2])(*args)
    print(returned)
    sys.exit(1 if returned is None or returned is False else 0)
'''
