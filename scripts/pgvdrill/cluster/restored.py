"""A restored data directory made safe to start as a scratch copy.

A base backup carries the source's whole configuration: its port and listen addresses,
archive_mode and archive_command (into production's archive), primary_conninfo,
logging_collector, include files, shared_preload_libraries, pg_hba.conf and passwords,
leftover recovery targets in postgresql.auto.conf, standby.signal. A copy started with
them binds production's port, archives into production's archive, connects to it, and
hides its own errors. So before a scratch copy starts, pgvdrill replaces its
configuration (the originals are kept, unread, in the cluster directory's
source-config/) with its own:

- postgresql.conf: only settings that make the copy behave like the source and are safe
  (session defaults such as TimeZone, min/max_wal_size (a server with WAL segments other
  than 16 MB needs its own), the hot-standby limits recovery checks, the
  source's shared_preload_libraries that the scratch installation has), archive_mode =
  off, no primary_conninfo, no logical replication worker (the source's subscriptions
  would stream from production's publisher and take its slot), then pgvdrill.conf (own
  port on 127.0.0.1, server log);
- an empty postgresql.auto.conf (no leftover recovery target or restore_command);
- pg_hba.conf: `local ... trust` only, on a socket directory of the cluster's own (mode
  0700, reachable by root and the server's OS user alone; pg_upgrade's way), because the
  copy's passwords are the source's, which pgvdrill does not know. No TCP login.
A backup holding symlinks (pg_wal or tablespaces elsewhere, i.e. into the source's own
directories) is refused: a copy would write through them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pgvdrill.cluster.base import ConfigValue, quote
from pgvdrill.cluster.conffile import Setting, read_conf
from pgvdrill.errors import RestoreError

SOURCE_CONFIG = "source-config"
SOCKET = "socket"
MOVED = ("postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf",
         "standby.signal", "recovery.signal", "recovery.conf", "postmaster.pid",
         "postmaster.opts", "current_logfiles")
# how the source's sessions see data (output formats, parsing, text search)
SESSION_DEFAULTS = ("timezone", "datestyle", "intervalstyle", "lc_monetary", "lc_numeric",
                    "lc_time", "default_text_search_config", "extra_float_digits",
                    "bytea_output")
# what the server refuses to start without when its WAL segments are not 16 MB (initdb
# --wal-segsize writes them: min_wal_size must be at least twice the segment size)
WAL_SIZES = ("min_wal_size", "max_wal_size")
# hot standby refuses to replay WAL of a primary with larger values (pg_controldata names)
STANDBY_LIMITS = {"max_connections": "max_connections",
                  "max_worker_processes": "max_worker_processes",
                  "max_wal_senders": "max_wal_senders",
                  "max_prepared_xacts": "max_prepared_transactions",
                  "max_locks_per_xact": "max_locks_per_transaction"}
PRELOAD = "shared_preload_libraries"
# what keeps any copy of a backup from reaching its source: no archiving into its archive,
# no primary to follow, no subscription streaming from a publisher (it would take the
# source's slots); scratch copies and `restore physical|pitr` alike
SAFE_START: dict[str, ConfigValue] = {"archive_mode": "off", "primary_conninfo": "",
                                      "primary_slot_name": "",
                                      "max_logical_replication_workers": 0}
HBA = """# pgvdrill: a scratch copy of a restored backup. Clients reach it only through its
# socket directory {socket} (mode 0700: root and the server's OS user); no TCP login.
local all all trust
local replication all trust
"""


@dataclass
class Neutralised:
    """What was changed in a restored data directory before its first start."""

    carried: dict[str, ConfigValue] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)  # the source's other settings, by name
    moved: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"carried": dict(self.carried), "dropped": self.dropped,
                "moved": self.moved, "warnings": self.warnings}

    def summary(self) -> str:
        return (f"source configuration replaced: {len(self.carried)} setting(s) carried, "
                f"{len(self.dropped)} dropped ({', '.join(self.dropped[:8])}"
                f"{', ...' if len(self.dropped) > 8 else ''})")


def refuse_symlinks(datadir: Path) -> None:
    """RestoreError naming the symlinks in `datadir` (pg_wal or tablespaces elsewhere)."""
    found = [str(Path(root, name).relative_to(datadir))
             for root, dirs, files in os.walk(datadir)
             for name in dirs + files if Path(root, name).is_symlink()]
    tablespace_map = datadir / "tablespace_map"  # tar backups carry one, empty without
    if tablespace_map.is_file() and tablespace_map.read_bytes().strip():  # tablespaces
        found.append("tablespace_map")
    if found:
        raise RestoreError(
            f"the restored backup in {datadir} holds symlinks or a tablespace map "
            f"({', '.join(sorted(found)[:5])}): a copy started from it would write through "
            "them into the source's own directories",
            "take the base backup with pg_basebackup (-Ft, or -Fp with --tablespace-mapping "
            "and --waldir inside the target); pgvdrill drills backups without tablespaces")


def neutralise(datadir: Path, keep: Path, socket: Path, *,
               has_library: Callable[[str], bool], control: dict[str, int]) -> Neutralised:
    """Replace the configuration of the restored `datadir` with a scratch copy's (see the
    module docstring); the originals go to `keep`. `control`: pg_controldata's limits."""
    refuse_symlinks(datadir)
    source = read_conf(datadir / "postgresql.conf", datadir)
    auto = read_conf(datadir / "postgresql.auto.conf", datadir)
    settings = {**source.settings, **auto.settings}
    done = Neutralised()
    done.warnings += [p for p in source.problems + auto.problems if not p.endswith("missing")]
    if "postgresql.conf" not in source.files:
        done.warnings.append("the backup holds no postgresql.conf (kept outside the data "
                             "directory, as Debian does): the copy runs on pgvdrill's "
                             "settings only")
    for name in SESSION_DEFAULTS + WAL_SIZES:
        if name in settings:
            done.carried[name] = settings[name].value
    done.carried.update(_limits(settings, control))
    preload = _preload(settings, has_library, done)
    if preload:
        done.carried[PRELOAD] = preload
    done.dropped = sorted(set(settings) - set(done.carried))
    done.moved = _move_aside(datadir, keep)
    _write(datadir, done.carried, socket)
    return done


def _limits(settings: dict[str, Setting], control: dict[str, int]) -> dict[str, ConfigValue]:
    """The hot-standby limits: at least the source's (its control file and its config)."""
    limits: dict[str, ConfigValue] = {}
    for control_name, guc in STANDBY_LIMITS.items():
        values = [control[control_name]] if control_name in control else []
        configured = settings.get(guc)
        if configured is not None and configured.value.isdigit():
            values.append(int(configured.value))
        if values:
            limits[guc] = max(values)
    return limits


def _preload(settings: dict[str, Setting], has_library: Callable[[str], bool],
             done: Neutralised) -> str:
    """The source's shared_preload_libraries that the scratch installation has."""
    configured = settings.get(PRELOAD)
    if configured is None:
        return ""
    names = [n.strip().strip('"') for n in configured.value.split(",")]
    kept = []
    for name in filter(None, names):
        plain = name.removeprefix("$libdir/")
        if re.fullmatch(r"[A-Za-z0-9_.-]+", plain) and has_library(plain):
            kept.append(plain)
        else:
            done.warnings.append(
                f"shared_preload_libraries: {name!r} is not installed in the scratch "
                "installation: left out (what needs it, e.g. its extension's views, fails "
                "in the copy; install it there to drill it)")
    return ", ".join(kept)


def _move_aside(datadir: Path, keep: Path) -> list[str]:
    keep.mkdir(mode=0o700, exist_ok=True)
    moved = []
    for name in MOVED:
        if (datadir / name).exists():
            shutil.move(str(datadir / name), keep / name)
            moved.append(name)
    return moved


def _write(datadir: Path, carried: dict[str, ConfigValue], socket: Path) -> None:
    lines = ["# written by pgvdrill for a scratch copy of a restored backup; the source's",
             f"# configuration is kept, unread, in ../{SOURCE_CONFIG}/",
             *(f"{name} = {quote(value)}" for name, value in carried.items()),
             *(f"{name} = {quote(value)}" for name, value in SAFE_START.items()),
             "include_if_exists = 'pgvdrill.conf'"]
    files = {"postgresql.conf": "\n".join(lines) + "\n",
             "postgresql.auto.conf": "# pgvdrill: the source's ALTER SYSTEM settings are in "
                                     f"../{SOURCE_CONFIG}/\n",
             "pg_hba.conf": HBA.format(socket=socket), "pg_ident.conf": ""}
    for name, text in files.items():
        (datadir / name).write_text(text)
        (datadir / name).chmod(0o600)


def control_limits(controldata: str) -> dict[str, int]:
    """The hot-standby limits pg_controldata prints ("max_connections setting: 100")."""
    found = {}
    for name in STANDBY_LIMITS:
        match = re.search(rf"^{name} setting:\s+(\d+)\s*$", controldata, re.M)
        if match:
            found[name] = int(match.group(1))
    return found
