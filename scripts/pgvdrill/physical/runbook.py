"""The runbook's literal physical steps, run as written, each reporting exactly why it no
longer works on a current PostgreSQL.

- `SELECT pg_start_backup('label')` ... `SELECT pg_stop_backup()`: the exclusive backup
  functions were removed in PostgreSQL 15 (pg_backup_start/pg_backup_stop replace them).
- `recovery.conf`: since PostgreSQL 12 its settings go in postgresql.conf plus a
  recovery.signal file, and a server refuses to start with a recovery.conf present.
"""

from __future__ import annotations

import psycopg

from pgvdrill.cluster import Cluster
from pgvdrill.cluster.base import ConfigValue, quote
from pgvdrill.errors import ConfigError, DrillError, RestoreError

START_BACKUP_SQL = "SELECT pg_start_backup('label')"
RECOVERY_CONF_REJECTED = 'using recovery command file "recovery.conf" is not supported'


def runbook_start_backup(cluster: Cluster) -> None:
    """Run the runbook's `SELECT pg_start_backup('label')` (and, where it exists, its
    `pg_stop_backup()`); a `ConfigError` quoting the server when the function is gone."""
    with cluster.connect() as conn:
        try:
            conn.execute(START_BACKUP_SQL)
        except psycopg.errors.UndefinedFunction as exc:
            raise ConfigError(
                f"the runbook's step `{START_BACKUP_SQL}` fails on PostgreSQL "
                f"{cluster.major}: {str(exc).splitlines()[0]} (pg_start_backup and "
                "pg_stop_backup were removed in PostgreSQL 15)",
                "use pg_backup_start('label', fast) and pg_backup_stop() in the same "
                "session, and write the backup_label pg_backup_stop returns into the copy "
                "(pgvdrill's `low-level` setting does)") from exc
        conn.execute("SELECT pg_stop_backup()")


def runbook_recovery_conf(cluster: Cluster, settings: dict[str, ConfigValue]) -> None:
    """Write the runbook's recovery.conf with `settings` into a stopped (restored) cluster
    and start it; a `RestoreError` with the server's own message when it refuses."""
    text = "".join(f"{k} = {quote(v)}\n" for k, v in settings.items())
    cluster.write_file("recovery.conf", text.encode())
    try:
        cluster.start(timeout=60)
    except DrillError as exc:
        log = cluster.server_log(40)
        if RECOVERY_CONF_REJECTED not in log:
            raise
        fatal = next(ln for ln in log.splitlines() if RECOVERY_CONF_REJECTED in ln)
        raise RestoreError(
            f"the runbook's recovery.conf is rejected by PostgreSQL {cluster.major}, the "
            f"server does not start: {fatal.strip()}",
            "since PostgreSQL 12 recovery settings go in postgresql.conf (or a file it "
            "includes) and an empty recovery.signal file starts targeted recovery; remove "
            "recovery.conf") from exc
