"""`pgvdrill schedule`: the runbook's schedule as systemd units, /etc/cron.d lines and the
postgresql.conf archiving settings (see ops/schedule.py)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from pgvdrill.cli.common import Command, SubParsers, add_config_option, command_parser
from pgvdrill.config import Config, find_config
from pgvdrill.errors import ConfigError
from pgvdrill.ops.schedule import FORMATS, Install, files, write_files


def _default_bin() -> Path:
    beside = Path(sys.executable).parent / "pgvdrill"
    found = beside if beside.is_file() else shutil.which("pgvdrill")
    if found is None:
        raise ConfigError("cannot find the pgvdrill script (not beside this Python, not on "
                          "PATH)", "pass --bin /absolute/path/to/pgvdrill")
    return Path(found).absolute()


def install_from(args: argparse.Namespace, config: Config) -> Install:
    paths = {"--bin": args.bin or _default_bin(), "--python": args.python,
             "--installed-config": args.installed_config or config.path.absolute(),
             "--lock-dir": args.lock_dir}
    relative = [f"{k} {v}" for k, v in paths.items() if not Path(v).is_absolute()]
    if relative:
        raise ConfigError(f"not absolute: {', '.join(relative)}",
                          "cron and systemd run jobs from /: give absolute paths")
    return Install(paths["--bin"], paths["--python"], paths["--installed-config"], args.user,
                   paths["--lock-dir"])


HELP = "systemd units, cron lines and archive_command for the runbook's schedule"
DESCRIPTION = ("Generate the runbook's schedule for the configuration: systemd service and timer "
               "units, an /etc/cron.d file and the postgresql.conf archiving settings. Prints "
               "them, or writes them into --output-dir.")

EPILOG = """what it writes (--output-dir DIR) or prints:
  systemd    pgvdrill-{backup-logical,backup-physical,retention,drill}.{service,timer}:
             oneshot services as --user, hardened (ProtectSystem=strict, writable only
             the repository or the reports directory), timers with Persistent=true
  cron       pgvdrill.cron for /etc/cron.d: the same schedule, flock against overlaps
  archiving  pgvdrill-archiving.conf: archive_command into <repository>/wal (and the
             standard-library-only variant) for postgresql.conf
  Schedule (the runbook's): logical backup daily 02:00, physical backup Sunday 01:00,
  each followed by pgvdrill sync if [sync.rsync] or [sync.s3] is configured; retention
  daily 03:00; dr-drill --config --take on the first Sunday of the month 04:00 (after that
  night's backups and cleanup; it takes its own backups, so writes on the source do not
  fail it: remove --take for a standby source and pause its replay instead).
  A file DIR already holds with other content is never overwritten.

examples:
  pgvdrill schedule --config /etc/pgvdrill/pgvdrill.toml            # print everything
  pgvdrill schedule --config /etc/pgvdrill/pgvdrill.toml --format systemd \\
      --output-dir /etc/systemd/system && systemctl daemon-reload \\
      && systemctl enable --now pgvdrill-backup-logical.timer pgvdrill-backup-physical.timer \\
         pgvdrill-retention.timer pgvdrill-drill.timer
  pgvdrill schedule --format cron --user backup > /tmp/pgvdrill.cron

exit codes:
  0  printed, or every file written or already identical
  2  bad configuration (no [source], [drill] reports_dir not set, relative paths), or a
     file in --output-dir differs (nothing is written then)
"""


def add_parser(sub: SubParsers) -> None:
    parser = command_parser(sub, "schedule", HELP, DESCRIPTION, EPILOG)
    add_config_option(parser)
    parser.add_argument("--format", choices=(*FORMATS, "all"), default="all",
                        help="what to generate (default all)")
    parser.add_argument("--user", default="postgres",
                        help="the OS user the jobs run as (default postgres); its ~/.pgpass "
                             "holds the source's password")
    parser.add_argument("--bin", type=Path,
                        help="the pgvdrill script the jobs run (default: the one beside this "
                             "Python, else the one on PATH)")
    parser.add_argument("--python", type=Path, default=Path(sys.executable),
                        help="the interpreter of the standard-library archive_command "
                             "(default: this one)")
    parser.add_argument("--installed-config", type=Path,
                        help="the configuration's path where the jobs run (default: "
                             "--config's absolute path)")
    parser.add_argument("--lock-dir", type=Path, default=Path("/run/lock"),
                        help="cron: where the flock files are, writable for --user (default "
                             "/run/lock)")
    parser.add_argument("--output-dir", type=Path,
                        help="write the files here (created if missing) instead of printing")


def run(args: argparse.Namespace) -> int:
    config = find_config(args.config)
    texts = files(config, install_from(args, config),
                  list(FORMATS) if args.format == "all" else [args.format])
    if args.output_dir is not None:
        for line in write_files(texts, args.output_dir):
            print(line, flush=True)
        return 0
    for name, text in texts.items():
        print(f"# ==> {name} <==\n{text}", flush=True)
    return 0


COMMAND = Command("schedule", add_parser, run)
