"""The data directory a physical or point-in-time restore makes, and its recovery settings.

Safety rules (nothing in the directory is ever deleted or replaced):
- DIR must be missing or empty;
- `--force` allows a DIR that holds other files (a mount point's lost+found, say), as long
  as it holds no PG_VERSION (a cluster: move it away yourself) and none of the names the
  backup restores (checked before anything is moved in: the backup is unpacked into a
  staging directory inside DIR, so the final moves are renames on the same file system).
The restored files take the owner of DIR (of its parent when DIR is new), which is the OS
user the server must run as; as root with a root-owned DIR they stay root's, and the next
steps say to chown them.

The copy is made safe to start beside the source (`make_safe`), its configuration kept
otherwise (it may become production): settings appended to postgresql.auto.conf (read
last, so they win): archive_mode = off, no primary_conninfo/primary_slot_name, no
logical replication worker (the source's subscriptions would take its slots on their
publishers), and for
restore pitr the recovery settings (the PostgreSQL 12+ way, with recovery.signal) after
the backup's own recovery settings there were commented out; the recovery targets, a
standby's archive_cleanup_command/recovery_end_command and a delayed standby's
recovery_min_apply_delay of postgresql.conf cleared.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pgvdrill import osuser
from pgvdrill.cluster.base import ConfigValue, ToolRunner, quote
from pgvdrill.cluster.conffile import Setting, read_conf
from pgvdrill.cluster.restored import SAFE_START, refuse_symlinks
from pgvdrill.errors import RestoreError
from pgvdrill.physical.artifact import BaseBackup
from pgvdrill.physical.restore import unpack
from pgvdrill.physical.verifybackup import backup_format

AUTO_CONF = "postgresql.auto.conf"


def existing_names(pgdata: Path, force: bool) -> list[str]:
    """What `pgdata` holds already; RestoreError unless that is nothing, or `force` and no
    cluster."""
    if pgdata.exists() and not pgdata.is_dir():
        raise RestoreError(f"restore target {pgdata} is not a directory",
                           "choose a new or empty directory")
    names = sorted(os.listdir(pgdata)) if pgdata.is_dir() else []
    if not names:
        return []
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    if "PG_VERSION" in names:
        raise RestoreError(
            f"restore target {pgdata} holds a PostgreSQL data directory (PG_VERSION; "
            f"{shown}): pgvdrill never restores over a cluster, not even with --force",
            f"stop its server if it runs, move it away (mv {pgdata} {pgdata}.old) and "
            "restore into the then empty or new directory")
    if not force:
        raise RestoreError(
            f"restore target {pgdata} is not empty ({shown})",
            "choose an empty or new directory; --force restores into it anyway when none "
            "of its files is one the backup restores (nothing is deleted or replaced)")
    return names


def restore_datadir(tools: ToolRunner, backup: BaseBackup, pgdata: Path,
                    existing: list[str]) -> list[str]:
    """Unpack `backup` into `pgdata` beside the `existing` names; the names restored. A
    plain backup holding symlinks (a tablespace or pg_wal elsewhere: the source's own
    directories) is refused before anything is copied: the copy would write through them."""
    if backup_format(backup.path) == "plain":
        refuse_symlinks(backup.path)
    if not existing:
        unpack(tools, backup, pgdata)
        return sorted(os.listdir(pgdata))
    staging = Path(tempfile.mkdtemp(prefix=".pgvdrill-restore-", dir=pgdata))
    try:
        unpack(tools, backup, staging)
        names = sorted(os.listdir(staging))
        clash = sorted(set(names) & set(existing))
        if clash:
            raise RestoreError(f"restore target {pgdata} already holds {', '.join(clash)}, "
                               "which the backup restores",
                               "pgvdrill replaces nothing: move those away, or restore into "
                               "an empty directory")
        for name in names:
            os.rename(staging / name, pgdata / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # what is left there was unpacked here
    return names


def server_user_for(pgdata: Path) -> str | None:
    """The OS user the restored server must run as: DIR's owner (its parent's when DIR is
    new) when we are root and that is not root; None: ourselves."""
    if os.geteuid() != 0:
        return None
    uid = (pgdata if pgdata.exists() else pgdata.parent).stat().st_uid
    if uid == 0:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def settle(pgdata: Path, existing: list[str], server_user: str | None, *, created: bool
           ) -> list[str]:
    """Give what the restore put into DIR (not the `existing` names) to `server_user`, and
    DIR itself too, mode 0700, when the restore `created` it; a directory pgvdrill did not
    create keeps its owner and mode. What the operator must still do, one line each."""
    if server_user is not None:
        entry = pwd.getpwnam(server_user)
        if created:
            os.chown(pgdata, entry.pw_uid, entry.pw_gid)
        for name in sorted(set(os.listdir(pgdata)) - set(existing)):
            osuser.chown_tree(pgdata / name, server_user)
    mode = stat.S_IMODE(pgdata.stat().st_mode)
    if created:
        pgdata.chmod(0o700)
    elif mode & 0o027:
        return [f"{pgdata} has mode {mode:04o}, which PostgreSQL refuses (0700 or 0750); "
                f"pgvdrill did not create it and left it as it is: chmod 0700 {pgdata}"]
    return []


# what an earlier recovery or a standby left that must not steer this copy
RECOVERY_SETTINGS = ("restore_command", "recovery_end_command", "archive_cleanup_command",
                     "recovery_target", "recovery_target_time", "recovery_target_xid",
                     "recovery_target_lsn", "recovery_target_name",
                     "recovery_target_inclusive", "recovery_target_action",
                     "recovery_target_timeline", "recovery_min_apply_delay",
                     "primary_conninfo", "primary_slot_name", "promote_trigger_file")
TARGETS = ("recovery_target", "recovery_target_time", "recovery_target_xid",
           "recovery_target_lsn", "recovery_target_name")
# a standby's commands in postgresql.conf that archive recovery would run: a cleanup of
# production's archive at every restartpoint, production's failover script at the end
COMMANDS = ("archive_cleanup_command", "recovery_end_command")
SIGNALS = ("standby.signal", "recovery.signal")
MOVED_SUFFIX = ".moved-by-pgvdrill"
SOURCE_PATHS = ("data_directory", "hba_file", "ident_file", "external_pid_file")
_NAME = re.compile(r"^\s*([A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)?)\s*(?:=|\s)")


@dataclass
class SafeStart:
    """What `make_safe` changed in a restored data directory, and what it found."""

    changed: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)  # the lines appended to AUTO_CONF
    archive_mode: str = "off"  # the source's
    port: str = "5432"  # the source's (PostgreSQL's default when it set none)
    warnings: list[str] = field(default_factory=list)

    def archiving_back_on(self) -> str:
        """How to turn the source's archiving back on once this copy is production."""
        if self.archive_mode.lower() in ("on", "always"):
            return (f"psql -c \"ALTER SYSTEM SET archive_mode = '{self.archive_mode.lower()}'\""
                    " (as a superuser of this copy), then pg_ctl restart")
        return ("the source did not archive (archive_mode off): nothing to turn back on "
                "(psql -c \"ALTER SYSTEM RESET archive_mode\" removes pgvdrill's line)")


def make_safe(pgdata: Path, backup_id: str, recovery: dict[str, ConfigValue] | None
              ) -> SafeStart:
    """Make the restored `pgdata` safe to start beside the source, keeping the source's
    configuration otherwise: archive_mode off, no primary_conninfo/primary_slot_name,
    standby.signal (and the backup's recovery.signal) renamed, the recovery settings the
    backup carries in AUTO_CONF commented out; then `recovery` (restore pitr's settings,
    the only recovery target) with recovery.signal. AUTO_CONF is read last, so it wins."""
    conf = read_conf(pgdata / "postgresql.conf", pgdata)
    auto = read_conf(pgdata / AUTO_CONF, pgdata)
    settings = {**conf.settings, **auto.settings}
    done = SafeStart(archive_mode=settings["archive_mode"].value if "archive_mode" in
                     settings else "off",
                     port=settings["port"].value if "port" in settings else "5432")
    for name in SIGNALS:
        if (pgdata / name).exists():
            os.rename(pgdata / name, pgdata / f"{name}{MOVED_SUFFIX}")
            done.changed.append(f"{name} renamed to {name}{MOVED_SUFFIX} (the source's: "
                                "this copy must not follow a primary)")
    done.changed += _comment_out(pgdata / AUTO_CONF)
    lines = [f"# pgvdrill restore {'pitr' if recovery else 'physical'} {backup_id} at "
             f"{datetime.now(UTC).isoformat()}: safe to start beside the source",
             *(f"{name} = {quote(value)}" for name, value in SAFE_START.items())]
    if recovery is not None:
        lines += [f"{name} = ''" for name in (*TARGETS, *COMMANDS)  # clear the conf's
                  if name not in recovery]
        lines += ["recovery_min_apply_delay = 0"]  # a delayed standby's: each recent
        # commit would wait out the delay (archive recovery honours it)
        lines += [f"{key} = {quote(value)}" for key, value in recovery.items()]
    with open(pgdata / AUTO_CONF, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    done.written = lines
    if recovery is not None:
        (pgdata / "recovery.signal").touch()
    done.warnings += _layout_warnings(pgdata, conf.files, settings)
    done.warnings += [f"{problem} by pgvdrill; the copy reads it when it starts, where it "
                      f"exists ({AUTO_CONF} still wins)" for problem in conf.problems
                      if "outside the data directory" in problem]
    return done


def _comment_out(auto: Path) -> list[str]:
    """Comment out AUTO_CONF's recovery settings (an earlier PITR's target, a standby's
    primary_conninfo); what was done, one line each."""
    if not auto.is_file() or auto.is_symlink():
        return []
    changed, out = [], []
    for number, line in enumerate(auto.read_text(encoding="utf-8", errors="replace")
                                  .splitlines(), 1):
        match = _NAME.match(line)
        if match and match[1].lower() in RECOVERY_SETTINGS:
            out.append(f"# neutralised by pgvdrill restore: {line}")
            changed.append(f"{AUTO_CONF}:{number}: {match[1]} commented out (left by an "
                           "earlier recovery or a standby)")
        else:
            out.append(line)
    if changed:
        auto.write_text("\n".join(out) + "\n", encoding="utf-8")
    return changed


def _layout_warnings(pgdata: Path, files: list[str], settings: dict[str, Setting]
                     ) -> list[str]:
    """What stops the copy from starting as restored, or points it at the source's files."""
    found = []
    if "postgresql.conf" not in files:
        found.append(
            f"the backup holds no postgresql.conf (the source keeps its configuration "
            f"outside the data directory, as Debian does in /etc/postgresql/): PostgreSQL "
            f"does not start without one. Copy the source's postgresql.conf (and pg_hba.conf, "
            f"pg_ident.conf) into {pgdata}, remove data_directory, hba_file, ident_file and "
            f"external_pid_file from the copy (they name the source's files) and set its "
            f"port; {AUTO_CONF} (archive_mode = off, the recovery settings) still wins")
    elif not (pgdata / "pg_hba.conf").is_file() and "hba_file" not in settings:
        found.append(f"the backup holds no pg_hba.conf: copy the source's into {pgdata}")
    for name in SOURCE_PATHS:
        if name in settings:
            found.append(f"{name} = {settings[name].value!r} ({settings[name].where}) names "
                         f"the source's file: remove it from that file before starting")
    logs = settings.get("log_directory")
    if logs is not None and Path(logs.value).is_absolute():
        found.append(f"log_directory = {logs.value!r} ({logs.where}) is the source's log "
                     f"directory: started beside the source, the copy writes (and may "
                     f"truncate) its log files there; until it replaces the source, add "
                     f"log_directory = 'log' to {pgdata / AUTO_CONF}")
    return found
