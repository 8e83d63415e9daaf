"""`pgvdrill restore logical|physical|pitr`: a catalog backup restored, after its files were
checked against the catalog. Physical and point-in-time restores make a data directory and
print how to start it; pgvdrill never starts the server itself."""

from __future__ import annotations

import os
import shlex
import socket
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from pgvdrill.backup.source import (
    client_tools,
    named_installations,
    require_tools_for,
    source_major,
)
from pgvdrill.backup.stored import base_backup_of, has_wal, wal_reach
from pgvdrill.cluster.wal_commands import restore_command
from pgvdrill.config import Config
from pgvdrill.errors import BackupError, ConfigError
from pgvdrill.installation import Installation, find_installations, for_major
from pgvdrill.ops.restore_choose import (
    choose_timeline,
    pitr_command,
    refuse_before_backup,
)
from pgvdrill.ops.restore_datadir import (
    AUTO_CONF,
    SafeStart,
    existing_names,
    make_safe,
    restore_datadir,
    server_user_for,
    settle,
)
from pgvdrill.ops.restore_place import refuse_unsafe_place
from pgvdrill.proc import runner
from pgvdrill.repository import Entry, Repository, file_problems
from pgvdrill.wal.archiving import expected_spans
from pgvdrill.wal.continuity import Continuity
from pgvdrill.wal.names import format_lsn
from pgvdrill.wal.pitr import BackupPoint, Target
from pgvdrill.wal.reach import refuse_beyond_archive

Say = Callable[[str], None]


def require_intact(repo: Repository, entry: Entry) -> None:
    """BackupError listing how the backup's files differ from its catalog entry."""
    problems = file_problems(repo, entry)
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise BackupError(f"backup {entry.id} does not match its catalog entry:\n{listed}",
                          "do not restore from it: choose another backup (pgvdrill verify "
                          "--all), and find out what changed this one")


def restore_tools(config: Config, entry: Entry, more: Sequence[Path] = ()) -> Installation:
    """The programs that restore base backup `entry`: of its source's major version (no
    other reads its WAL or starts its data directory), [source] pg_bin or the first of
    that major among the embedded one, [drill] pg_bin, [drill] installations and `more`
    (--installation); a ConfigError naming what to configure when none is."""
    if config.source is not None and config.source.pg_bin is not None:
        tools = client_tools(config.source.pg_bin)
        require_tools_for(entry.source, tools, "physical")
        return tools
    found, problems = find_installations(named_installations(config, more), None)
    return for_major(found, source_major(entry), f"restoring backup {entry.id} of a "
                     f"PostgreSQL {entry.source.get('server_version')} source",
                     problems).installation


def restore_base(config: Config, repo: Repository, entry: Entry, pgdata: Path,
                 target: Target | None, *, force: bool, timeline: str | None = None,
                 say: Say, installations: Sequence[Path] = ()) -> None:
    """Unpack base backup `entry` into `pgdata`, made safe to start beside the source, with
    recovery settings for `target` along `timeline` (--target-timeline; None: the source's
    current one), saying what it does and what to do next; with the programs of the
    source's major version (`restore_tools`, `installations`: --installation)."""
    if not pgdata.exists() and not pgdata.parent.is_dir():
        raise ConfigError(f"{pgdata.parent} does not exist",
                          "create the parent directory of --pgdata first")
    tools = restore_tools(config, entry, installations)
    created = not pgdata.exists()
    refuse_unsafe_place(pgdata, repo.root)
    existing = existing_names(pgdata, force)
    server_user = server_user_for(pgdata)
    backup = base_backup_of(repo, entry)
    recovery = None
    if target is not None:
        point = BackupPoint.of((backup.path / "backup_manifest").read_bytes(), repo.wal)
        refuse_before_backup(entry, target, point)
        if has_wal(repo):
            followed, said = choose_timeline(config, repo.wal, entry, point, target, pgdata,
                                             timeline)
        else:
            followed, said = str(point.timeline), (f"timeline: the backup's own, "
                                                   f"{point.timeline} (no archived WAL)")
        say(said)
        target = replace(target, timeline=followed)
        reach = archive_continuity(repo, entry, point,
                                   None if followed == "latest" else int(followed))
        if not isinstance(reach, str):
            end = [] if target.kind == "end" else [
                pitr_command(config, entry.id, pgdata, ["--target-timeline", followed])]
            refuse_beyond_archive(tools, repo.wal, reach, target, *end)
        seen = () if isinstance(reach, str) else reach.segments
        refuse_unreadable(repo.wal, seen, server_user)
        recovery = {"restore_command": wal_restore_command(repo.wal.resolve(), server_user,
                                                           expected_spans(seen)),
                    **target.settings()}
    require_intact(repo, entry)
    say(f"restoring {entry.id} ({entry.size_bytes / 2**20:.1f} MiB) into {pgdata}")
    names = restore_datadir(tools, backup, pgdata, existing)
    say(f"restored {len(names)} item(s) into {pgdata}")
    safe = make_safe(pgdata, entry.id, recovery)
    say("made safe to start beside the source (its configuration kept otherwise):")
    for line in safe.changed:
        say(f"  {line}")
    say(f"  appended to {pgdata / AUTO_CONF} (read last: these win)"
        + (", and created recovery.signal" if target is not None else "") + ":")
    for line in safe.written[1:]:
        say(f"    {line}")
    if target is not None:
        say(archive_reach(reach, point, target))
    for warning in safe.warnings:
        say(f"warning: {warning}")
    for line in settle(pgdata, existing, server_user, created=created):
        say(f"warning: {line}")
    _next_steps(pgdata, entry, target, server_user, safe, say)
    say(f"  with PostgreSQL {tools.major}'s programs (the backup's source is PostgreSQL "
        f"{entry.source.get('server_version')}; no other major version can start it), "
        f"e.g. those in {tools.bindir}")


def wal_restore_command(wal: Path, server_user: str | None, expect: list[str]) -> str:
    """restore_command reading `wal`, checked to work for the server's OS user; `expect`:
    the segments it must find (walcmd --expect), so that one removed before the copy
    starts stops its recovery instead of ending it there."""
    if not wal.is_dir():
        raise BackupError(f"the WAL archive {wal} is missing: point-in-time recovery reads "
                          "it", "mount or move it back, then run the restore again (pgvdrill "
                          "restore physical restores a base backup to its end without it)")
    command = restore_command(wal, server_user, expect=expect)
    probe = runner.run(["test", "-r", wal, "-a", "-x", wal], user=server_user, check=False,
                       timeout=30)
    if probe.returncode != 0:
        raise ConfigError(f"the server's OS user {server_user} cannot read the WAL archive "
                          f"{wal}", "give it read access to the archive (and every "
                          "directory above it), or create --pgdata owned by another user")
    return command


def refuse_unreadable(wal: Path, names: tuple[str, ...], server_user: str | None) -> None:
    """ConfigError naming the archived files recovery needs (`names`) that the server's OS
    user cannot read: restore_command fails on them, and recovery stops there."""
    if not names:
        return
    found = runner.run(["find", wal, "-maxdepth", "1", "!", "-readable", "-printf", "%f\\n"],
                       user=server_user, check=False, timeout=300).stdout.split()
    unreadable = [name for name in names if name in set(found)]
    if unreadable:
        shown = ", ".join(unreadable[:5]) + (f" and {len(unreadable) - 5} more"
                                             if len(unreadable) > 5 else "")
        raise ConfigError(
            f"the server's OS user {server_user or '(current)'} cannot read {shown} in the "
            f"WAL archive {wal}: recovery would stop at the first of them (nothing was "
            "unpacked)", "give that user read access, e.g. "
            + shlex.join(["chown", server_user or str(os.geteuid()),
                          *(str(wal / name) for name in unreadable[:5])]))


def archive_continuity(repo: Repository, entry: Entry, point: BackupPoint,
                       timeline: int | None = None) -> Continuity | str:
    """What the archived WAL holds from the backup's start on along `timeline` (None: the
    latest), up to a segment of another database system, or a warning saying why
    recovery cannot go past the backup."""
    if not has_wal(repo):
        return (f"warning: no archived WAL in {repo.wal}: recovery cannot go beyond the "
                f"backup's end ({format_lsn(point.end_lsn)})")
    reach, problem = wal_reach(repo, entry, timeline)
    return reach if reach is not None else f"warning: {problem}"


def archive_reach(reach: Continuity | str, point: BackupPoint, target: Target) -> str:
    """How far the archived WAL carries recovery from the backup, as one line."""
    if isinstance(reach, str):
        return reach
    line = (f"archive: {len(reach.segments)} segment(s) from {format_lsn(point.start_lsn)}, "
            f"recovery can reach {format_lsn(reach.reachable)} on timeline {reach.timeline}")
    if reach.gap:
        line += f"; warning: {reach.gap}"
    if target.kind != "end":
        line += " (a target beyond that fails: PostgreSQL stops with 'recovery ended before "
        line += "configured recovery target was reached')"
    return line


def _next_steps(pgdata: Path, entry: Entry, target: Target | None,
                server_user: str | None, safe: SafeStart, say: Say = print) -> None:
    who = f" as {server_user}" if server_user else ""
    # the backup's own configuration said the port: a number, or a placeholder (pasted,
    # the commands below run nothing else)
    port = safe.port if safe.port.isdigit() else "<free port>"
    say("next:")
    if os.geteuid() == 0 and server_user is None:
        say(f"  chown -R <the server's OS user> {shlex.quote(str(pgdata))}: PostgreSQL "
            "refuses to run as root (and check that user can run the restore_command)")
    in_use = " (in use on this host now)" if _port_in_use(safe.port) else ""
    say(f"  port: the copy keeps the source's port {port}{in_use}; if the source or "
        "another server runs on this host with it, give the copy another one: start it "
        "with -o \"-p <free port>\" as below, or set port in "
        f"{pgdata / AUTO_CONF}")
    say(f"  start it{who}: " + shlex.join(["pg_ctl", "-D", str(pgdata), "-l",
                                           str(pgdata.parent / "restore.log"), "-o",
                                           f"-p {port}", "start"]))
    if target is None:
        say(f"  it replays the backup's own WAL to {entry.end_lsn} and opens")
    else:
        say(f"  it recovers to {target.describe()}; follow the log, then check the data")
    say(f"  archiving is off in this copy; once it replaces the source as production: "
        f"{safe.archiving_back_on()}")
    say("  logical replication is off in this copy (max_logical_replication_workers = 0: "
        "the source's subscriptions would stream from their publishers); once it replaces "
        "the source: psql -c \"ALTER SYSTEM RESET max_logical_replication_workers\", then "
        "pg_ctl restart")


def _port_in_use(port: str) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port`."""
    if not port.isdigit() or not 0 < int(port) < 65536:
        return False
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", int(port))) == 0
