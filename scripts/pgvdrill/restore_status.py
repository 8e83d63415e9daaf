"""How PostgreSQL reads the exit status of `restore-wal` (wal/walcmd.py): the two statuses it
exits with on failure, and the `case` a restore_command wraps it in. Standard library only:
walcmd imports it on a server's own python3."""

from __future__ import annotations

# restore-wal: the file is not in the archive. PostgreSQL takes any status from 1 to 125
# as that; a distinct one lets restore_command tell it from a program that failed to start
# (Python exits 1 on an ImportError, 2 on a usage error of its own).
NOT_IN_ARCHIVE = 99
# restore-wal's every other failure: above 125, which stops PostgreSQL's recovery (FATAL)
# instead of ending it there; not 128 + a signal number (143, SIGTERM, means "shut down")
ABORT_RECOVERY = 126


def as_restore_command(command: str) -> str:
    """`command` (a restore-wal command line for sh) as a restore_command: restore-wal's
    NOT_IN_ARCHIVE becomes 1 ("not found"), every other failure, including one of a program
    that could not start, ABORT_RECOVERY. A signal that kills restore-wal kills the shell
    too, which PostgreSQL handles itself (SIGTERM: shut down; any other: stop)."""
    return (f"{command}; case $? in 0) ;; {NOT_IN_ARCHIVE}) exit 1 ;; "
            f"*) exit {ABORT_RECOVERY} ;; esac")
