"""Continuous archiving and point-in-time recovery: WAL names and LSNs, the
archive_command/restore_command programs, pg_receivewal, archive continuity, PITR.

Keep this package's `__init__` and `names`/`walcmd` free of third-party imports: the
server runs `python -m pgvdrill.wal.walcmd` as archive_command with only the standard
library available.
"""
