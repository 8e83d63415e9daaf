"""`pgvdrill schedule`: the runbook's schedule (section 4) as systemd units, /etc/cron.d
lines and the postgresql.conf archiving settings, generated from the configuration so the
jobs, the repository and the sandboxes agree with it.

Jobs: logical backup daily at 02:00, physical backup Sundays at 01:00 (each followed by
`pgvdrill sync` when an off-site target is configured), retention daily at 03:00, and
the disaster-recovery drill on the first Sunday of each month at 04:00, in the week's
quietest window, after that night's backups and cleanup. The drill takes its own
backups (`--take`, with the configured settings) and compares each with the source at
the moment it describes: a source taking writes would fail a drill of a backup hours
old, compared with the source as it is now (TAKE_NOTE).
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pgvdrill.cli.common import (
    CONFIG_ENV,
    REGISTRARS,
    AddBackendOptions,
    Handler,
    SubParsers,
    add_config_option,
    config_from,
)
from pgvdrill.config import Config
from pgvdrill.errors import ConfigError
from pgvdrill.ops.sync_rsync import is_remote
from pgvdrill.wal.walcmd import as_restore_command

FORMATS = ("systemd", "cron", "archiving")
CRON_FILE = "pgvdrill.cron"
ARCHIVING_FILE = "pgvdrill-archiving.conf"
# scratch clusters: on disk (unlike a tmpfs /tmp), private to a unit (PrivateTmp=yes)
DRILL_WORKDIR = "/var/tmp"  # noqa: S108
DRILL_CACHE = "pgvdrill-drill"  # the drill unit's CacheDirectory= (templates), /var/cache/...
LOCAL_HOSTS = ("", "localhost", "127.0.0.1", "::1")
TAKE_NOTE = (
    "--take: the drill backs the source up now and compares each backup with the source "
    "at that\n# backup's own moment, so writes on the source neither fail nor fool it (a "
    "backup from the\n# repository would be compared with the source as it is now, exact "
    "only on a source that\n# does not change). A standby source cannot give the physical "
    "comparison point: for one,\n# remove --take and pause its replay during the drill "
    "(pg_wal_replay_pause()).")


@dataclass(frozen=True)
class Job:
    """One scheduled pgvdrill run."""

    name: str  # unit name stem, lock file name
    what: str
    argv: tuple[str, ...]  # pgvdrill's arguments
    calendar: str  # systemd OnCalendar=
    cron: str  # the five cron time fields
    writes: tuple[Path, ...]
    kind: Literal["backup", "cleanup", "drill"]  # backups read the source, then sync
    first_week: bool = False  # cron: only when the day of the month is 1..7
    delay: str = "5min"  # RandomizedDelaySec=

    @property
    def backup(self) -> bool:
        return self.kind == "backup"


@dataclass(frozen=True)
class Install:
    """Where and as whom the jobs run."""

    bin: Path  # the pgvdrill script
    python: Path  # an interpreter that imports pgvdrill (stdlib-only archive_command)
    config: Path  # the configuration file as the jobs read it
    user: str
    lock_dir: Path  # cron's flock files


def jobs(config: Config, install: Install) -> list[Job]:
    """The runbook's schedule for `config`."""
    config.require_source()
    reports = config.drill.reports_dir
    if not reports.is_absolute():
        raise ConfigError(f"{config.path}: [drill] reports_dir is not set (the default "
                          f"{reports} is relative to wherever a job starts)",
                          'add [drill] reports_dir = "/var/lib/pgvdrill/reports", a directory '
                          "the job's user owns")
    repo = config.repository
    backups = (repo, *_local_copy(config))
    return [
        Job("pgvdrill-backup-logical", "daily logical backup (pg_dump)",
            ("backup", "logical"), "*-*-* 02:00:00", "0 2 * * *", backups, "backup"),
        Job("pgvdrill-backup-physical", "weekly physical backup (pg_basebackup)",
            ("backup", "physical"), "Sun *-*-* 01:00:00", "0 1 * * 0", backups, "backup"),
        Job("pgvdrill-retention", "cleanup by the retention policy", ("retention",),
            "*-*-* 03:00:00", "0 3 * * *", (repo,), "cleanup"),
        Job("pgvdrill-drill", "monthly disaster-recovery drill",
            ("drill", "--config", str(install.config), "--take", "--workdir", DRILL_WORKDIR),
            "Sun *-*-01..07 04:00:00", "0 4 * * 0", (reports, *backups), "drill",
            first_week=True, delay="30min"),
    ]


def _local_copy(config: Config) -> tuple[Path, ...]:
    """[sync.rsync]'s destination when it is a directory on this host (sync writes it)."""
    if config.rsync is None or is_remote(config.rsync.dest):
        return ()
    return (config.path.parent / config.rsync.dest,)


def _syncs(config: Config) -> bool:
    return config.rsync is not None or config.s3 is not None


def _local_source(config: Config) -> bool:
    host = config.require_source().conninfo.get("host", "")
    return host.startswith("/") or host in LOCAL_HOSTS


def _header(install: Install) -> str:
    return (f"# Generated by `pgvdrill schedule` from {install.config}: change the "
            "configuration and\n# regenerate rather than editing this file.\n")


# --- systemd -------------------------------------------------------------------------

def _unit_word(text: str, *, command: bool = False) -> str:
    """One word of a unit setting: specifiers (%) escaped, and in a command line variables
    ($); quoted when it holds blanks, a quote or ; (files() refuses " and backslashes)."""
    text = text.replace("%", "%%")
    if command:
        text = text.replace("$", "$$")
    return f'"{text}"' if re.search(r"[\s';]", text) else text


def _exec(install: Install, *args: str) -> str:
    return " ".join(_unit_word(a, command=True) for a in (str(install.bin), *args))


HARDENING = """\
UMask=0077
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=strict
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes
"""


def service(job: Job, config: Config, install: Install) -> str:
    """The oneshot service running `job`."""
    after = ["network-online.target", "postgresql.service"] if job.backup \
        else ["network-online.target"]
    wants = ["network-online.target"]
    lines = [_header(install), "[Unit]", f"Description=pgvdrill: {job.what}"]
    if job.backup:
        lines.append("# postgresql.service orders this after a server on this host (Debian's "
                     "postgresql@.service\n# clusters come before it); it is pulled in only "
                     "when [source] is on this host.")
        if _local_source(config):
            wants.append("postgresql.service")
    lines += [f"After={' '.join(after)}", f"Wants={' '.join(wants)}", "",
              "[Service]", "Type=oneshot", f"User={install.user}",
              "# No secrets here or in the configuration: libpq reads the password from the "
              "user's ~/.pgpass\n# (0600), a service file (service= in [source] conninfo) or "
              "PGPASSFILE.",
              f"Environment={_unit_word(f'{CONFIG_ENV}={install.config}')}"]
    args = list(job.argv)
    if job.kind == "drill":
        args += ["--cache-dir", f"/var/cache/{DRILL_CACHE}"]
        lines.append(f"# {TAKE_NOTE}")
    lines.append(f"ExecStart={_exec(install, *args)}")
    if job.backup and _syncs(config):
        lines += ["# the off-site copy, only after the backup succeeded (a failed sync fails "
                  "the unit too)", f"ExecStartPost={_exec(install, 'sync')}"]
    lines += ["# a run still going after a day is hung: the next one would be skipped",
              "TimeoutStartSec=23h"]
    if job.backup:
        lines += ["# pgvdrill's own work (compression, checksums, writing) yields to the "
                  "server;\n# the server-side reading is the server's",
                  "Nice=10", "IOSchedulingClass=best-effort", "IOSchedulingPriority=7"]
    else:
        lines.append("# not niced: the drill's restore times are measured against the RTO "
                     "targets" if job.kind == "drill" else "# deletes only: cheap")
    lines.append(HARDENING.rstrip("\n"))
    lines.append(f"ReadWritePaths={' '.join(_unit_word(str(p)) for p in job.writes)}")
    if job.kind == "drill":
        lines += [f"# scratch clusters in the private {DRILL_WORKDIR} (gone when the run ends), "
                  f"templates in /var/cache/{DRILL_CACHE}", f"CacheDirectory={DRILL_CACHE}"]
    lines.append("# alerting: add OnFailure= with a unit that notifies you")
    return "\n".join(lines) + "\n"


def timer(job: Job, install: Install) -> str:
    """The timer starting `job`'s service on its calendar."""
    return "\n".join([
        _header(install), "[Unit]", f"Description=pgvdrill: {job.what}, {job.calendar}", "",
        "[Timer]", f"OnCalendar={job.calendar}",
        "# a run missed while the machine was off happens at the next boot",
        "Persistent=true",
        "# spreads many hosts' runs against one source or off-site store",
        f"RandomizedDelaySec={job.delay}",
        f"Unit={job.name}.service", "",
        "[Install]", "WantedBy=timers.target", ""])


def systemd_units(config: Config, install: Install) -> dict[str, str]:
    units: dict[str, str] = {}
    for job in jobs(config, install):
        units[f"{job.name}.service"] = service(job, config, install)
        units[f"{job.name}.timer"] = timer(job, install)
    return units


# --- cron ------------------------------------------------------------------------------

def cron_line(job: Job, config: Config, install: Install) -> str:
    commands = [[str(install.bin), *job.argv]]
    if job.backup and _syncs(config):
        commands.append([str(install.bin), "sync"])
    run = shlex.join(commands[0]) if len(commands) == 1 else \
        "-c " + shlex.quote(" && ".join(shlex.join(c) for c in commands))
    lock = shlex.quote(str(install.lock_dir / f"{job.name}.lock"))
    locked = f"/usr/bin/flock -n {lock} {run}".replace("%", "\\%")
    guard = '[ "$(date +\\%d)" -le 7 ] && ' if job.first_week else ""
    return f"{job.cron} {install.user} {guard}{locked}"


CRON_NOTES = """\
# Install as /etc/cron.d/pgvdrill, root-owned, mode 0644: without a dot in the name, which
# Debian's cron ignores there. Each job holds its own lock (flock -n): a run still going
# when the next is due makes that one exit 1 instead of overlapping. The lock directory
# must be writable for the user (Debian's /run/lock is; else pgvdrill schedule --lock-dir).
# No secrets here: libpq reads the password from the user's ~/.pgpass or a service file.
# cron mails a job's output to MAILTO (progress on stdout, errors on stderr)."""


def cron_file(config: Config, install: Install) -> str:
    """An /etc/cron.d file with the same schedule (without systemd's jitter)."""
    lines = [_header(install) + CRON_NOTES,
             "SHELL=/bin/sh", "PATH=/usr/bin:/bin",
             f"{CONFIG_ENV}={install.config}", "",
             "# m h dom mon dow user command"]
    for job in jobs(config, install):
        lines.append(f"# {job.what}")
        if job.first_week:
            lines.append("# (first Sunday: cron ORs day-of-month and day-of-week, so "
                         "'0 4 1-7 * 0' would also run\n# every other Sunday; the date test "
                         "does the AND)")
        if job.kind == "drill":
            lines.append(f"# {TAKE_NOTE}")
        lines.append(cron_line(job, config, install))
    return "\n".join(lines) + "\n"


# --- archiving -------------------------------------------------------------------------

def _pg_string(argv: list[str]) -> str:
    """A postgresql.conf string holding a shell command; %p/%f stay placeholders."""
    return _pg_quote(_shell(argv))


def _shell(argv: list[str]) -> str:
    """`argv` as a shell command line for PostgreSQL; %p/%f stay placeholders."""
    return " ".join(a if a in ("%p", "%f") else shlex.quote(a.replace("%", "%%")) for a in argv)


def _pg_quote(command: str) -> str:
    return "'" + command.replace("\\", "\\\\").replace("'", "''") + "'"


def archiving_conf(config: Config, install: Install) -> str:
    """postgresql.conf settings archiving WAL into the repository, and restore_command."""
    wal = str(config.wal_dir)
    archive = ["archive-wal", "%p", "%f", "--dest", wal]
    restore = [str(install.bin), "restore-wal", "%f", "%p", "--source", wal]
    return "\n".join([
        _header(install).rstrip("\n"),
        "# Continuous archiving into the repository's WAL directory: put these lines in "
        "postgresql.conf\n# or its conf.d/ (Debian: /etc/postgresql/<version>/main/conf.d/); "
        "archive_mode needs a\n# restart, archive_command a reload. The server's OS user "
        f"must be able to write\n# {wal}.",
        "#wal_level = replica   # the default; keep logical if the server has it",
        "archive_mode = on",
        "# a segment at least every minute: the runbook's WAL RPO (< 1 min); each forced "
        "switch\n# archives a whole 16 MB segment, WAL retention bounds the space",
        "archive_timeout = 60",
        f"archive_command = {_pg_string([str(install.bin), *archive])}",
        "# The same program needing only the standard library: no psycopg/numpy import, so "
        "it starts\n# about 5x faster (0.1 s, once per segment). Any Python 3.11+ does, with "
        "PYTHONPATH set to\n# the directory holding the pgvdrill package if it is not "
        "installed for that interpreter.",
        f"#archive_command = "
        f"{_pg_string([str(install.python), '-m', 'pgvdrill.wal.walcmd', *archive])}",
        "# Recovery (point-in-time restore) from this archive; the case stops recovery on "
        "any failure\n# but \"not in the archive\" (also when the program cannot start) "
        "instead of promoting early:",
        f"#restore_command = {_pg_quote(as_restore_command(_shell(restore)))}",
        ""])


# --- the command -----------------------------------------------------------------------

def files(config: Config, install: Install, formats: list[str]) -> dict[str, str]:
    """File name -> text for `formats`."""
    for path in (install.bin, install.python, install.config, install.lock_dir,
                 config.repository, config.drill.reports_dir, *_local_copy(config)):
        if re.search(r'["\\\n\r]', str(path)):
            raise ConfigError(f"path {str(path)!r} holds a double quote, backslash or line "
                              "break, which units and crontabs cannot carry safely",
                              "use a path without them")
    out: dict[str, str] = {}
    if "systemd" in formats:
        out.update(systemd_units(config, install))
    if "cron" in formats:
        out[CRON_FILE] = cron_file(config, install)
    if "archiving" in formats:
        out[ARCHIVING_FILE] = archiving_conf(config, install)
    return out


def write_files(texts: dict[str, str], directory: Path) -> list[str]:
    """Write `texts` into `directory` (0644): each new file written, an identical one left;
    ConfigError naming every existing different file, before anything is written."""
    differ = [n for n, t in texts.items() if (directory / n).exists()
              and (not (directory / n).is_file() or (directory / n).read_text() != t)]
    if differ:
        raise ConfigError(f"{directory} already holds different {', '.join(differ)}: not "
                          "overwritten, nothing written",
                          "compare them (pgvdrill schedule prints the new text without "
                          "--output-dir), move them aside, or choose another directory")
    directory.mkdir(parents=True, exist_ok=True)
    done = []
    for name, text in texts.items():
        path = directory / name
        if path.exists():
            done.append(f"unchanged {path}")
            continue
        path.write_text(text)
        path.chmod(0o644)
        done.append(f"wrote {path}")
    return done


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


EPILOG = """what it writes (--output-dir DIR) or prints:
  systemd    pgvdrill-{backup-logical,backup-physical,retention,drill}.{service,timer}:
             oneshot services as --user, hardened (ProtectSystem=strict, writable only
             the repository or the reports directory), timers with Persistent=true
  cron       pgvdrill.cron for /etc/cron.d: the same schedule, flock against overlaps
  archiving  pgvdrill-archiving.conf: archive_command into <repository>/wal (and the
             standard-library-only variant) for postgresql.conf
  Schedule (the runbook's): logical backup daily 02:00, physical backup Sunday 01:00,
  each followed by pgvdrill sync if [sync.rsync] or [sync.s3] is configured; retention
  daily 03:00; drill --config --take on the first Sunday of the month 04:00 (after that
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


def register(sub: SubParsers, add_backend_options: AddBackendOptions) -> dict[str, Handler]:
    parser = sub.add_parser(
        "schedule", help="systemd units, cron lines and archive_command for the runbook's "
                         "schedule",
        description="Generate the runbook's schedule for the configuration: systemd "
                    "service and timer units, an /etc/cron.d file and the postgresql.conf "
                    "archiving settings. Prints them, or writes them into --output-dir.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    return {"schedule": cmd_schedule}


def cmd_schedule(args: argparse.Namespace) -> int:
    config = config_from(args)
    texts = files(config, install_from(args, config),
                  list(FORMATS) if args.format == "all" else [args.format])
    if args.output_dir is not None:
        for line in write_files(texts, args.output_dir):
            print(line, flush=True)
        return 0
    for name, text in texts.items():
        print(f"# ==> {name} <==\n{text}", flush=True)
    return 0


REGISTRARS.append(register)
