"""Physical backups and restores: pg_basebackup in each form, incremental backups combined
with pg_combinebackup, the low-level pg_backup_start/pg_backup_stop API, pg_verifybackup,
and restores of each into a fresh data directory."""
