"""`pgvdrill verify`: check catalog backups, the whole repository, or a bare pg_dump
archive by its path (see ops/verify_repo.py for what is checked)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pgvdrill.cli.common import (
    Command,
    SubParsers,
    add_config_option,
    add_switches,
    command_parser,
    say,
)
from pgvdrill.config import find_config
from pgvdrill.errors import ConfigError
from pgvdrill.ops.verify import VerifyRequest, verify_archives, verify_backups

HELP = "check backups in the repository (or a pg_dump archive) without restoring"
DESCRIPTION = ("Check catalog backups, or the whole repository, without restoring them: checksums, "
               "manifests, the dump's table of contents and data, WAL continuity. Exit 4 on any "
               "problem.")

EPILOG = """what is checked:
  every backup: each file against its catalog entry (present, size, sha256; no file added)
  logical:      the dump's table of contents parses and every data block reads back;
                its globals.sql (the source's roles) is readable and holds CREATE ROLE (a
                backup taken before pgvdrill kept globals gets a note)
  physical:     pg_verifybackup against its manifest, its WAL parsed (pg_waldump for tar);
                when <repository>/wal holds archived WAL: every segment from the backup's
                start LSN on its timeline (following timeline history files) is there
  timelines:    (--all) the archive's timelines and history files (every line checked);
                a timeline branch the source's current timeline does not descend from
                (what a restored copy archiving into the archive leaves) is a problem,
                with a command that sets its files aside (nothing is deleted); the
                source's timeline is read with the [source] conninfo (its current WAL
                file; on a standby pg_stat_wal_receiver or pg_control_checkpoint()):
                when it cannot be read, a fork is a warning and the check says why
  gzip:         every .gz file of a backup (base.tar.gz, pg_wal.tar.gz, a directory
                dump's files) read to its end, each member's CRC-32 and length checked
  --deep:       also every record of every archived WAL segment, read with pg_waldump
                per timeline in runs of consecutive segments: the first record it cannot
                read is a problem naming its segment; the cost (seconds, segments,
                bytes) is printed. Without it the segments are checked by name, size and
                page header only
  --all (or no BACKUP_ID): every catalog entry, unreadable or invalid entries (each
                field checked: ids, kinds, times, sizes, LSNs, paths, hashes), backup
                directories without an entry (warnings: running or failed backups), and
                what in wal/ is not an archived WAL file: a symlink, FIFO or device, a
                non-WAL name, a segment whose size is not its header's segment size
  untrusted:    a symlinked repository root, a symlinked or missing directory, symlinks, hard
                links to files elsewhere and other non-regular files in a backup or in
                wal/ (never followed or read); with a reachable [source],
                backups of another database system (system identifier) or database
  PATH:         an argument with a / or a . (or that exists) is a pg_dump archive
                checked on its own, without a configuration (as before the repository)

examples:
  pgvdrill verify                                   # the whole repository
  pgvdrill verify --all --strict                    # warnings fail too (for monitoring)
  pgvdrill verify --deep                            # and every archived WAL record
  pgvdrill verify physical-20251102T010000Z --config /etc/pgvdrill/pgvdrill.toml
  pgvdrill verify /backup/postgres/full_backup_20251101.dump

output: one line per problem, naming the backup and the file; "ok: <id> ..." per good
backup; a summary line last.

exit codes:
  0  no problem (warnings allowed unless --strict)
  2  bad configuration, an unknown BACKUP_ID, no repository; or a base backup not
     checked (unknown): no installation of its PostgreSQL major is configured ([drill]
     installations), the other backups checked all the same
  3  a checking tool could not run
  4  a problem: a file missing, changed or added, a dump or base backup that does not
     read back (or a gzip file cut short), a gap in the archived WAL, a record
     pg_waldump cannot read (--deep), a stray timeline branch or a malformed history
     file, an unreadable or invalid catalog entry, a symlink, stray or wrong-size file,
     a backup of another source (with --strict also a warning); for a PATH: the
     archive is missing, empty, truncated or corrupt
  8  the machine failed, not the backup: a full disk, a permission, a read-only file
     system, a server that died (the cause is named; fix it and run again)
"""


def add_parser(sub: SubParsers) -> None:
    parser = command_parser(sub, "verify", HELP, DESCRIPTION, EPILOG)
    parser.add_argument("backups", nargs="*", metavar="BACKUP_ID|PATH",
                        help="catalog backup ids (default: all), or pg_dump archive paths")
    add_switches(parser, {
        "--all": "the whole repository (the default without BACKUP_ID)",
        "--strict": "warnings (backup directories without a catalog entry) fail too",
        "--deep": "also read every record of every archived WAL segment with pg_waldump (as "
                  "long as reading the archive takes; the cost is printed)"})
    parser.add_argument("--pg-bin", type=Path,
                        help="client tools to check with (default: [source] pg_bin, else "
                             "the embedded PostgreSQL 18 tools; a base backup of another "
                             "major: the [drill] installations of its major)")
    add_config_option(parser)


def is_path(argument: str) -> bool:
    """A pg_dump archive path rather than a backup id (ids hold neither / nor .)."""
    return "/" in argument or "." in argument or Path(argument).exists()


def run(args: argparse.Namespace) -> int:
    paths = [a for a in args.backups if is_path(a)]
    if paths:
        if len(paths) != len(args.backups) or args.all or args.deep:
            raise ConfigError("pgvdrill verify takes either pg_dump archive paths or backup "
                              "ids (or --all, --deep), not both", "run it once for each")
        return verify_archives([Path(p) for p in paths], args.pg_bin, say)
    request = VerifyRequest(tuple(args.backups), args.all, args.strict, args.deep, args.pg_bin)
    return verify_backups(find_config(args.config), request, say)


COMMAND = Command("verify", add_parser, run)
