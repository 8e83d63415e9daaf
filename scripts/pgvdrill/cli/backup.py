"""`pgvdrill backup logical|physical`: a backup of the configured source into the
repository, with its catalog entry (see backup/take.py)."""

from __future__ import annotations

import argparse

from pgvdrill.backup.take import take_backup
from pgvdrill.cli.common import Command, SubParsers, add_config_option, command_parser, say
from pgvdrill.config import find_config
from pgvdrill.repository import KINDS, Repository, lock

HELP = "back up the configured source into the repository (with a catalog entry)"
DESCRIPTION = ("Take a logical (pg_dump) or physical (pg_basebackup) backup of the [source] server "
               "into the [repository], check it, restrict and hash its files and write its catalog "
               "entry. Read-only towards the source; the tool's progress is shown on stderr as it "
               "runs.")

EXIT_CODES = """exit codes:
  0  the backup is complete, checked and in the catalog
  2  bad configuration, or the source cannot be reached, or its client tools are older
     than the server
  3  pg_dump or pg_basebackup failed (its stderr is shown)
  4  the backup was taken but does not check out (pg_restore cannot read it,
     pg_verifybackup or pg_waldump report damage)
  8  the machine failed, not the backup: a full disk, a permission, a read-only file
     system, a server that died (the cause is named; fix it and run again)
  130, 143  interrupted by SIGINT or SIGTERM: the tool's whole process group was ended
     first; a tool running past [limits] tool_timeout is ended the same way (exit 3)
  On every failure the backup directory stays without a catalog entry: incomplete, never
  used by restore or drill, reported by pgvdrill verify.
"""

EXAMPLES = """what it does:
  logical:  pg_dump --format/--compress/--jobs from [logical] --verbose into
            <repository>/logical/<id>/<dbname>.dump (or .dir), then pg_restore reads
            its table of contents and every data block back
  physical: pg_basebackup --format/--wal-method/--checkpoint/--compress from [physical]
            --progress --verbose into <repository>/physical/<id>/, then pg_verifybackup
            checks it against its manifest and its WAL is parsed
  then: files 0600, directories 0700, sha256 of every file, and the catalog entry
  <repository>/catalog/<id>.json (times, duration, LSNs, timeline, size, sha256s, tool
  versions, settings, source version, system identifier, pgvector) written last.
  The runbook's pg_dump -F c -Z 9 is [logical] format = "custom", compress = "9".

examples:
  pgvdrill backup logical --config /etc/pgvdrill/pgvdrill.toml
  pgvdrill backup physical                  # config from $PGVDRILL_CONFIG or the defaults
  PGPASSFILE=/etc/pgvdrill/pgpass pgvdrill backup physical

""" + EXIT_CODES


def add_parser(sub: SubParsers) -> None:
    parser = command_parser(sub, "backup", HELP, DESCRIPTION, EXAMPLES)
    parser.add_argument("kind", choices=KINDS, help="logical (pg_dump) or physical "
                                                    "(pg_basebackup)")
    add_config_option(parser)


def run(args: argparse.Namespace) -> int:
    config = find_config(args.config)
    with lock.shared(Repository(config.require_repository()).ensure()):
        take_backup(config, args.kind, say)
    return 0


COMMAND = Command("backup", add_parser, run)
