"""The `pgvdrill` command.

Exit codes: 0 success, 1 verification failed, 2 bad input or configuration,
3 an external tool failed, 4 a backup is broken, 5 a restore cannot succeed (the target
or the dump lacks something: pgvector, roles, the extension), 6 every drill verified but
a documented target was missed (see --fail-on), 7 the repository is in use (retention),
8 the machine failed, not the backup (a full disk, a permission, a server that died),
130/143/129 interrupted by SIGINT/SIGTERM/SIGHUP (after ending every program it had
started).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import psycopg

from pgvdrill import __version__
from pgvdrill.cli import (
    backup,
    bench,
    dr_drill,
    drill,
    image,
    installations,
    procedure,
    providers,
    restore,
    retention,
    schedule,
    settings,
    sync,
    upgrade,
    verify,
)
from pgvdrill.cli import physical as physcmd
from pgvdrill.cli.common import Command
from pgvdrill.errors import (
    ENVIRONMENT_HINT,
    ConfigError,
    DrillError,
    EnvironmentFailure,
    environment_cause,
)
from pgvdrill.proc.interrupts import Interrupted, handle_signals
from pgvdrill.wal import walcmd

# in the order an operator meets them
COMMANDS = (
    # first the drill, on a throw-away dataset, what its settings mean, and the
    # installations it can run on
    drill.COMMAND, settings.COMMAND, installations.COMMAND,
    # then production's daily path: back up, archive WAL, check, copy off-site, expire,
    # and the schedule that runs all of it
    backup.COMMAND, Command("archive-wal", walcmd.add_archive_parser, walcmd.cmd_archive),
    verify.COMMAND, physcmd.VERIFY_BACKUP, providers.COMMAND, sync.COMMAND, retention.COMMAND,
    schedule.COMMAND,
    # then recovery: restore, its restore_command, the monthly DR drill that rehearses it
    restore.COMMAND, Command("restore-wal", walcmd.add_restore_parser, walcmd.cmd_restore),
    dr_drill.COMMAND, upgrade.COMMAND,
    # and the tools around them
    procedure.COMMAND, bench.COMMAND, image.COMMAND,
)
HANDLERS = {command.name: command.run for command in COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgvdrill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"pgvdrill {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def truthful(exc: Exception, command: str) -> Exception:
    """`exc` as the CLI reports it: an OSError or a psycopg error that nothing caught, when
    the machine caused it (a full disk, a permission, a server that died or cannot be
    reached), is an `EnvironmentFailure`; every pgvdrill error is already what it says
    (the point where the machine failed raises EnvironmentFailure itself)."""
    if isinstance(exc, DrillError):
        return exc
    cause = environment_cause(exc)
    if cause is None:
        return exc
    return EnvironmentFailure(f"pgvdrill {command}: {_first_line(exc)}", ENVIRONMENT_HINT)


def _first_line(exc: Exception) -> str:
    text = exc.message if isinstance(exc, DrillError) else str(exc)
    return (text.strip().splitlines() or [type(exc).__name__])[0]


def main(argv: Sequence[str] | None = None) -> int:
    handle_signals()
    args = walcmd.parse_args(build_parser(), argv)  # restore-wal's usage errors: 126
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    try:
        try:
            return HANDLERS[args.command](args)
        except (OSError, psycopg.OperationalError) as exc:  # nothing caught: the machine?
            failure = exc if args.command in walcmd.COMMANDS else truthful(exc, args.command)
            if failure is exc:
                raise
            raise failure from exc
    except DrillError as exc:
        kind = "error" if isinstance(exc, ConfigError) else type(exc).__name__
        print(f"pgvdrill: {kind}: {exc}", file=sys.stderr)
        return exc.exit_code
    except Interrupted as exc:
        print(f"pgvdrill: interrupted by {exc.name}: stopped, with every program it had "
              "started; a backup it was taking is left incomplete, without a catalog entry",
              file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("pgvdrill: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
