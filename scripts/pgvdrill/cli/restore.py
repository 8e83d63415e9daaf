"""`pgvdrill restore logical|physical|pitr`: a catalog backup restored, after its files were
checked against the catalog (see ops/restore.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pgvdrill.backup.stored import artifact_path, globals_path
from pgvdrill.cli.common import (
    Command,
    SubParsers,
    add_config_option,
    add_installation_option,
    add_switches,
    command_parser,
    positive_int,
    say,
)
from pgvdrill.cli.drill_options import add_target_options
from pgvdrill.config import Config, find_config
from pgvdrill.errors import ConfigError
from pgvdrill.ops.restore import require_intact, restore_base
from pgvdrill.ops.restore_choose import LATEST, choose, parse_time
from pgvdrill.ops.restore_logical import Ownership, restore_logical
from pgvdrill.repository import Repository, lock
from pgvdrill.repository.catalog import read_catalog
from pgvdrill.wal.names import parse_lsn
from pgvdrill.wal.pitr import Action, Target

EXIT_CODES = """exit codes:
  0  restored (physical, pitr: the data directory is ready to start)
  2  bad input: an unknown BACKUP_ID, a backup of another kind, bad target values, the
     server's OS user cannot run the restore_command or read the WAL archive
  3  pg_restore failed (its stderr is shown)
  4  the backup's files differ from its catalog entry, or it cannot be read: not restored
  5  refused or impossible: a non-empty data directory or one that is shared, a system
     or home directory, in or around a cluster's files or the repository; a target
     database that is the source's (system identifier and database OID) or whose identity
     cannot be told, or already holds tables; a recovery target before the backup's end,
     no backup ending before the target, a known pg_restore pitfall
  8  the machine failed, not the backup: a full disk, a permission, a read-only file
     system, a server that died (the cause is named; fix it and run again)
"""
LOGICAL_EPILOG = """The dump's files are checked against the catalog, the dump is read back,
then pg_restore --exit-on-error --no-password --verbose [--clean --if-exists] [--jobs N]
restores it into the database the conninfo names, which must exist (createdb). No password
in the conninfo: libpq takes it from ~/.pgpass, PGPASSFILE, a service file or PGPASSWORD.

Roles: before anything moves, the roles the dump names (owners, grantees, default
privileges, policies) are looked up on the target; when some are missing the restore is
refused (exit 5) naming them. --with-globals creates the missing ones, and only those, from
the globals.sql every logical backup keeps (pg_dumpall --globals-only --no-role-passwords):
no existing role is changed, the roles created have no password. --no-owner leaves owners
out (objects belong to the user you connect as); when grants name missing roles add
--no-privileges. A backup taken without globals.sql cannot use --with-globals.

Never over the source (exit 5, unless --force): a target reached at the same server as the
[source] conninfo (host names looked up, this host's addresses and socket directories on one
port are one server) and the same database; one with the source's system identifier and
database OID, as the live source shows them or the catalog recorded them, unless
--into-copy-of-source says it is a physical copy (a primary and its standbys share them;
refused anyway when it streams WAL to standbys); one whose identity cannot be told (it
hides pg_control_system(), or the source cannot answer and the catalog entry records none
or could have been written by someone other than you or root).

On failure: with one job pg_restore runs as one transaction (--single-transaction): the
target database is left as it was, fix the cause and rerun. With --jobs N it cannot: the
database keeps what was restored so far; drop and re-create it (dropdb, createdb), or rerun
with --clean.

examples:
  pgvdrill restore logical latest --target-dsn "host=db2 dbname=vector_db user=postgres"
  pgvdrill restore logical logical-20251101T020000Z --target-dsn "service=restore" -j 4
  pgvdrill restore logical latest --target-dsn "host=db2 dbname=vector_db" --clean
  pgvdrill restore logical latest --target-dsn "host=db2 dbname=vector_db" --with-globals
  pgvdrill restore logical latest --target-dsn "service=restore" --no-owner --no-privileges
  pgvdrill restore logical latest --target-dsn "host=copy1 dbname=vector_db" --into-copy-of-source

""" + EXIT_CODES
SAFE_START = """The copy is made safe to start beside the source, its configuration kept otherwise
(it may become production); what changed is printed: appended to DIR/postgresql.auto.conf
(read last, so it wins) archive_mode = 'off' (nothing archives into the source's archive),
primary_conninfo = '', primary_slot_name = ''; the recovery settings the backup carries
there (restore_command, recovery_target_*, primary_conninfo: an earlier PITR's or a
standby's) commented out; standby.signal and recovery.signal renamed *.moved-by-pgvdrill.
The port stays the source's: when the source runs on this host, start the copy with
-o "-p <free port>" (the next steps say whether the port is in use). A backup without
postgresql.conf (Debian keeps it in /etc/postgresql/) is named, with what to copy.
Once the copy replaces the source: ALTER SYSTEM SET archive_mode = 'on', then restart.
"""
PHYSICAL_EPILOG = """The base backup's files are checked against the catalog, then it is
unpacked into DIR (tar archives extracted, a plain backup copied) with the programs of the
source's major version (as the catalog records it): [source] pg_bin, else the first of
that major among the embedded PostgreSQL, [drill] pg_bin, [drill] installations and
--installation; none of that major is an error (exit 2) naming what was found. DIR must be
missing or empty; --force also takes a DIR holding other files (lost+found of a mount
point) when it holds no PG_VERSION and none of the backup's names: nothing is ever deleted
or replaced. The files take DIR's owner (its parent's when DIR is new): create DIR as the
server's OS user. DIR is refused when it is /, a system or home directory, shared
(world-writable or sticky), inside or around a cluster's data directory, tablespace or WAL
directory, or the repository; a DIR pgvdrill did not create keeps its mode and owner. Then
start it yourself: it replays the backup's own WAL to its end.

""" + SAFE_START + """
examples:
  pgvdrill restore physical latest --pgdata /var/lib/postgresql/18/restore
  pgvdrill restore physical physical-20251102T010000Z --pgdata /srv/pg/restore

""" + EXIT_CODES
PITR_EPILOG = """As restore physical, then recovery settings appended to DIR/postgresql.auto.conf
(after the safe-start settings) with DIR/recovery.signal:
  restore_command = '... -m pgvdrill.wal.walcmd restore-wal %f %p --source <repository>/wal
    --expect FIRST:LAST; case $? in 0) ;; 99) exit 1 ;; *) exit 126 ;; esac' (one line)
  recovery_target_time|xid|lsn|name or recovery_target = 'immediate' (none: the end of the
  archive; the other recovery_target_* set to '' so that no other target in the source's
  postgresql.conf counts), recovery_target_inclusive, recovery_target_action, and
  recovery_target_timeline: the timeline printed before anything is unpacked.
  A target before the backup's end, or one the archive cannot reach, is refused, and so
  are archived segments recovery needs that the server's OS user cannot read; restore-wal
  exits 126 on any failure but a missing file (99, which the case turns into 1), and on a
  segment the restore saw that is gone (--expect); the case turns a program that cannot
  start into 126 too: recovery stops instead of promoting early. `latest` picks the
  newest backup that finished before a time or LSN target (any backup for an xid or name
  target: where those lie is not known before replaying). Times need a zone:
  "2025-11-01 10:00:00+00".

timeline (--target-timeline): by default the one the source is on now (read with the
[source] conninfo), never a branch the source does not descend from, such as a restored
copy that archived into the archive (pgvdrill verify --all names those). When the source
cannot be reached: the archive's only lineage; if its timelines fork, restore pitr refuses
(exit 5) and lists them. N: that timeline (it must descend from the backup's). latest:
PostgreSQL's 'latest', the newest in the archive, even a stray branch.

""" + SAFE_START + """
examples:
  pgvdrill restore pitr latest --pgdata /srv/pg/pitr --target-time "2025-11-01 10:00:00+00"
  pgvdrill restore pitr latest --pgdata /srv/pg/pitr --target-xid 7531 --exclusive
  pgvdrill restore pitr latest --pgdata /srv/pg/pitr --target-lsn 16/B374D848
  pgvdrill restore pitr latest --pgdata /srv/pg/pitr --target-name before_migration
  pgvdrill restore pitr physical-20251102T010000Z --pgdata /srv/pg/pitr --target immediate
  pgvdrill restore pitr latest --pgdata /srv/pg/pitr      # to the end of the archive
  pgvdrill restore pitr latest --pgdata /srv/pg/pitr --target-name nightly --target-action pause
  pgvdrill restore pitr latest --pgdata /srv/pg/pitr --target-timeline 2
  pgvdrill restore pitr latest --pgdata /srv/pg/pitr --target-timeline latest

""" + EXIT_CODES


def _kind_parser(kinds: SubParsers, name: str, help_text: str, epilog: str
                 ) -> argparse.ArgumentParser:
    parser = command_parser(kinds, name, help_text, help_text, epilog)
    parser.add_argument("backup", metavar="BACKUP_ID|latest",
                        help="a catalog backup id, or latest")
    add_config_option(parser)
    return parser


def _datadir_parser(kinds: SubParsers, name: str, help_text: str, epilog: str
                    ) -> argparse.ArgumentParser:
    parser = _kind_parser(kinds, name, help_text, epilog)
    parser.add_argument("--pgdata", type=Path, required=True, metavar="DIR",
                        help="the data directory to make (missing or empty)")
    parser.add_argument("--force", action="store_true",
                        help="allow a DIR holding other files (never a cluster, a shared, "
                             "system or home directory; nothing is replaced, its mode and "
                             "owner are kept)")
    add_installation_option(parser)
    return parser


HELP = "restore a catalog backup: logical, physical or point-in-time"
DESCRIPTION = ("Restore a backup from the repository, after checking its files against the "
               "catalog. Physical and pitr restores prepare a data directory and print how to "
               "start it.")
EPILOG = "see pgvdrill restore logical|physical|pitr --help\n\n" + EXIT_CODES


def add_parser(sub: SubParsers) -> None:
    restore = command_parser(sub, "restore", HELP, DESCRIPTION, EPILOG)
    kinds = restore.add_subparsers(dest="restore_kind", required=True,
                                   metavar="logical|physical|pitr")
    logical = _kind_parser(kinds, "logical", "pg_restore a logical backup into a database",
                           LOGICAL_EPILOG)
    logical.add_argument("--target-dsn", required=True, metavar="CONNINFO",
                         help="libpq connection string of the existing target database")
    logical.add_argument("-j", "--jobs", type=positive_int, default=1,
                         help="parallel pg_restore jobs (default 1)")
    add_switches(logical, {
        "--clean": "drop the dump's objects before re-creating them (--clean --if-exists): "
                   "needed for a database that holds tables",
        "--force": "restore even into the source's database (or one whose identity cannot "
                   "be checked)",
        "--into-copy-of-source": "the target is a physical copy of the source (restored from "
                                 "its backup, not replicating to or from it): its system "
                                 "identifier and database OID are the source's; the other "
                                 "checks stay",
        "--with-globals": "create the roles the target lacks from the backup's globals.sql "
                          "(never alters an existing role)",
        "--no-owner": "objects owned by the connecting user, not the dump's owners",
        "--no-privileges": "leave the dump's grants and default privileges out"})
    _datadir_parser(kinds, "physical", "unpack a base backup into a new data directory",
                    PHYSICAL_EPILOG)
    pitr = _datadir_parser(kinds, "pitr", "a base backup plus recovery settings for a point "
                                          "in time", PITR_EPILOG)
    add_target_options(pitr)
    pitr.add_argument("--target-action", choices=("promote", "pause", "shutdown"),
                      help="what the server does at the target (default promote)")
    pitr.add_argument("--target-timeline", type=timeline_option, metavar="N|current|latest",
                      help="the timeline to follow: a number, current (the source's now: "
                           "the default; when the source cannot be reached, the archive's "
                           "only lineage) or latest (the archive's newest, which may be a "
                           "stray branch)")


def run(args: argparse.Namespace) -> int:
    config = find_config(args.config)
    repo = Repository(config.require_repository())
    with lock.shared(repo):  # retention waits: the backup restored here stays
        return _restore(args, config, repo)


def _restore(args: argparse.Namespace, config: Config, repo: Repository) -> int:
    entries, unreadable = read_catalog(repo)
    if args.restore_kind == "logical":
        entry = choose(entries, unreadable, "logical", args.backup)
        require_intact(repo, entry)
        restore_logical(config, entry, repo.entry_path(entry.id), artifact_path(repo, entry),
                        args.target_dsn, jobs=args.jobs, clean=args.clean, force=args.force,
                        say=say, globals_file=globals_path(repo, entry),
                        ownership=Ownership(args.with_globals, args.no_owner,
                                            args.no_privileges),
                        copy_of_source=args.into_copy_of_source)
        return 0
    target = target_from(args) if args.restore_kind == "pitr" else None
    entry = choose(entries, unreadable, "physical", args.backup, target)
    if args.backup == LATEST:
        say(f"latest: {entry.id} (finished {entry.finished}, end LSN {entry.end_lsn})")
    restore_base(config, repo, entry, args.pgdata.absolute(), target, force=args.force,
                 timeline=getattr(args, "target_timeline", None), say=say,
                 installations=args.installation)
    return 0


def target_from(args: argparse.Namespace) -> Target:
    """The recovery target of `restore pitr`'s options (none given: the end of the
    archive)."""
    inclusive = not args.exclusive
    action: Action = args.target_action or "promote"  # argparse allows only these
    if args.target_time is not None:
        target = Target("time", parse_time(args.target_time).isoformat(), inclusive, action)
    elif args.target_xid is not None:
        if not args.target_xid.isdigit():
            raise ConfigError(f"--target-xid {args.target_xid!r} is not a transaction id",
                              "give the number, e.g. 7531 (txid_current() / xid8)")
        target = Target("xid", args.target_xid, inclusive, action)
    elif args.target_lsn is not None:
        try:
            parse_lsn(args.target_lsn)
        except ValueError as exc:
            raise ConfigError(f"--target-lsn: {exc}", "write it like 0/A000028") from None
        target = Target("lsn", args.target_lsn.upper(), inclusive, action)
    elif args.target_name is not None:
        target = Target("name", args.target_name, action=action)
    elif args.target == "immediate":
        target = Target("immediate", action=action)
    else:
        if args.target_action:
            raise ConfigError("--target-action needs a target",
                              "recovery to the end of the archive always promotes")
        target = Target("end")
    if args.exclusive and target.kind not in ("time", "xid", "lsn"):
        raise ConfigError(f"--exclusive applies to time, xid and lsn targets, not "
                          f"{target.kind}", "leave it out")
    return target


def timeline_option(value: str) -> str:
    """--target-timeline: a timeline number, current or latest."""
    if value in ("current", "latest") or (value.isdigit() and 0 < int(value) < 2**32):
        return value
    raise argparse.ArgumentTypeError(f"{value!r}: give a timeline number (e.g. 2), current "
                                     "(the source's now) or latest (the archive's newest)")




COMMAND = Command("restore", add_parser, run)
