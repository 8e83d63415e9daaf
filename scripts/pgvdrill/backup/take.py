"""Taking a backup of the configured source into the repository.

The tool runs with its progress on stderr (pg_dump --verbose, pg_basebackup --progress),
into a new backup directory (a logical backup also keeps the source's roles beside the
dump: globals.sql, pg_dumpall --globals-only --no-role-passwords, for restore logical
--with-globals); the result is checked (the dump with `inspect`, the base
backup with pg_verifybackup and its WAL parsed), its files are made 0600/0700 and hashed,
and the catalog entry is written last. A backup that fails or is interrupted leaves its
directory without an entry, private (the tool writes with umask 077, and it is made
0600/0700 on the way out): incomplete, reported by `pgvdrill verify`, never counted, never
deleted.
Towards the source this is read-only (pg_dump reads in one snapshot; pg_basebackup asks
for a checkpoint and streams files and WAL through a temporary replication slot).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from pgvdrill.backup.source import (
    server_facts,
    source_server,
    tool_versions,
    tools_for,
)
from pgvdrill.capabilities import require_tool_major
from pgvdrill.config import Config, Logical, Physical
from pgvdrill.errors import BackupError, ConfigError, ToolError
from pgvdrill.logical.archive import inspect
from pgvdrill.logical.globals import GLOBALS_FILE, dump_globals
from pgvdrill.physical.backup import cluster_size
from pgvdrill.physical.manifest import manifest_ranges
from pgvdrill.physical.verifybackup import check_backup
from pgvdrill.proc import runner
from pgvdrill.repository import Entry, Repository, checksum_files
from pgvdrill.repository.catalog import write_entry
from pgvdrill.repository.layout import restrict
from pgvdrill.server import ExternalServer

Say = Callable[[str], None]
LOGICAL_TOOLS = ("pg_dump", "pg_restore", "pg_dumpall")
PHYSICAL_TOOLS = ("pg_basebackup", "pg_verifybackup", "pg_waldump")
LARGE_OBJECT_DENIED = re.compile(r"permission denied for large object (\d+)")
_LSN_SQL = ("SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
            "ELSE pg_current_wal_lsn() END::text")


def dump_argv(logical: Logical, target: Path) -> list[str]:
    """pg_dump's options for [logical] (the database comes from PGDATABASE); --verbose
    shows progress, --no-password makes a missing password an error, never a prompt."""
    if logical.jobs > 1 and logical.format != "directory":
        raise ConfigError(f"[logical] jobs = {logical.jobs} needs format = \"directory\" "
                          f"(pg_dump dumps in parallel only into a directory), not "
                          f"{logical.format!r}", "set jobs = 1 or format = \"directory\"")
    args = ["--format", logical.format, "--file", str(target), "--compress", logical.compress]
    if logical.jobs > 1:
        args += ["--jobs", str(logical.jobs)]
    return [*args, "--verbose", "--no-password"]


def basebackup_argv(physical: Physical, dest: Path, label: str) -> list[str]:
    """pg_basebackup's options for [physical], with --progress and --verbose."""
    client_side = physical.compress not in ("none", "0") and \
        not physical.compress.startswith("server-")
    if physical.format == "plain" and client_side:
        raise ConfigError(f"[physical] compress = {physical.compress!r} compresses on the "
                          "client, which pg_basebackup cannot do for format = \"plain\"",
                          "use format = \"tar\", a server-side method (\"server-gzip\") or "
                          "compress = \"none\"")
    args = ["--pgdata", str(dest), "--format", physical.format,
            "--wal-method", physical.wal_method, "--checkpoint", physical.checkpoint,
            "--label", label]
    if physical.compress not in ("none", "0"):
        args += ["--compress", physical.compress]
    if physical.max_rate:
        args += ["--max-rate", physical.max_rate]
    return [*args, "--progress", "--verbose", "--no-password"]


@dataclass(frozen=True)
class Run:
    """What a backup tool did: when, how long, how, and the WAL it covered."""

    started: datetime
    finished: datetime
    seconds: float
    argv: list[str]
    start_lsn: str | None
    end_lsn: str | None
    timeline: int | None
    source_bytes: int | None
    extra: dict[str, Any]


def _lsn(server: ExternalServer) -> str:
    return str(server.query(_LSN_SQL)[0][0])


def _size(measure: Callable[[], int]) -> int | None:
    """A size the source may not let this user see (pg_database_size needs CONNECT)."""
    try:
        return measure()
    except (psycopg.Error, ConfigError):  # ConfigError: the source cannot be reached now
        return None


def _timed(server: ExternalServer, tool: str, args: list[str], hint: str
           ) -> tuple[datetime, datetime, float, list[str]]:
    started, begun = datetime.now(UTC), time.monotonic()
    result = runner.run([server.tools.tool(tool), *args], env=server.env(), hint=hint,
                        tee_stderr=True, umask=0o077)  # what it writes is private at once
    return started, datetime.now(UTC), time.monotonic() - begun, result.argv


def artifact_name(dbname: str, fmt: str) -> str:
    """The dump's name in its backup directory: `<dbname>.dump` (custom) or `.dir`."""
    return f"{dbname.replace('/', '_')}.{'dump' if fmt == 'custom' else 'dir'}"


def run_logical(server: ExternalServer, args: list[str], artifact: Path, left: str) -> Run:
    """pg_dump with `args` (writing `artifact`), then `inspect` the archive: its table of
    contents and every data block read back; then the globals beside it (after the dump:
    a role that owns dumped objects cannot have been dropped since). `left`: what a failure
leaves behind."""
    size = _size(lambda: int(str(server.query(
        "SELECT pg_database_size(current_database())")[0][0])))
    before = _lsn(server)
    hint = f"pg_dump failed; {left}"
    try:
        started, finished, seconds, argv = _timed(server, "pg_dump", args, hint)
    except ToolError as exc:
        denied = LARGE_OBJECT_DENIED.search(exc.stderr)
        if denied is None:
            raise
        role = str(server.query("SELECT quote_ident(current_user)")[0][0])
        raise ToolError(exc.argv, exc.returncode, exc.stderr,
                        f"{hint}. pg_read_all_data does not cover large objects: as a "
                        "superuser on the source, GRANT SELECT ON LARGE OBJECT "
                        f"{denied.group(1)} TO {role}; (each large object; or dump as "
                        "their owner)") from None
    after = _lsn(server)
    archive = inspect(server.tools, artifact)
    dump_globals(server, artifact.parent,
                 hint=f"pg_dumpall --globals-only failed (the source's roles are kept beside "
                      f"every dump); {left}")
    return Run(started, finished, seconds, argv, before, after, None, size,
               {"artifact": artifact.name, "format": archive.format,
                "toc_items": len(archive.toc), "globals": GLOBALS_FILE})


def run_physical(server: ExternalServer, args: list[str], directory: Path, hint: str) -> Run:
    """pg_basebackup with `args` (writing `directory`), then pg_verifybackup, its WAL
    parsed."""
    size = _size(lambda: cluster_size(server))
    started, finished, seconds, argv = _timed(server, "pg_basebackup", args, hint)
    ranges = manifest_ranges(directory / "backup_manifest")
    check = check_backup(server.tools, directory)
    return Run(started, finished, seconds, argv, ranges[-1].start, ranges[0].end,
               ranges[0].timeline, size,
               {"format": check.format, "verify_seconds": round(check.seconds, 3)})


def take_backup(config: Config, kind: str, say: Say, *, snapshot: str | None = None
                ) -> Entry:
    """Back up the configured source (`kind` logical or physical) into the repository;
    the catalog entry written for it. `snapshot`: a logical backup reads the snapshot
    another session exported (pg_dump --snapshot), e.g. to compare with it exactly."""
    repo = Repository(config.require_repository()).ensure()
    facts = server_facts(source_server(config))
    server = source_server(config, tools_for(config, facts, kind))
    if kind == "physical":  # its backup is checked, and restored, with tools of its major
        for tool in PHYSICAL_TOOLS:
            require_tool_major(server.tools, tool, int(facts["server_version_num"]) // 10000,
                               f"the source {facts['describe']}")
    backup_id = repo.new_id(kind)
    directory = repo.backup_dir(kind, backup_id)
    artifact = directory / artifact_name(server.dbname, config.logical.format)
    args = dump_argv(config.logical, artifact) if kind == "logical" else \
        basebackup_argv(config.physical, directory, f"pgvdrill {backup_id}")
    if snapshot is not None and kind == "logical":
        args.append(f"--snapshot={snapshot}")
    settings = asdict(config.logical if kind == "logical" else config.physical)
    directory.mkdir(mode=0o700)
    say(f"{kind} backup {backup_id} of {facts['describe']} (PostgreSQL "
        f"{facts['server_version']}) into {directory}")
    left = (f"the incomplete backup stays in {directory} without a catalog entry (pgvdrill "
            "verify reports it; remove it once you no longer need it to investigate)")
    try:
        if kind == "logical":
            run = run_logical(server, args, artifact, left)
        else:
            run = run_physical(server, args, directory, f"pg_basebackup failed; {left}")
    except BackupError as exc:  # the check failed (a tool's failure names `left` itself)
        restrict(directory)
        raise BackupError(exc.message, f"{exc.hint}; {left}" if exc.hint else left) from exc
    except BaseException:  # a tool failed, pgvdrill was interrupted: its group is gone
        with contextlib.suppress(OSError):
            restrict(directory)
        raise
    restrict(directory)
    files = checksum_files(directory)
    if not files:
        raise BackupError(f"backup {directory} holds no files", left)
    entry = Entry(
        id=backup_id, kind=kind, started=run.started.isoformat(),
        finished=run.finished.isoformat(), seconds=round(run.seconds, 3), source=facts,
        settings={**settings, "argv": run.argv},
        tools=tool_versions(server.tools, LOGICAL_TOOLS if kind == "logical"
                            else PHYSICAL_TOOLS),
        files=files, start_lsn=run.start_lsn, end_lsn=run.end_lsn, timeline=run.timeline,
        extra={**run.extra, "source_bytes": run.source_bytes,
               "tools_bindir": str(server.tools.bindir)})
    path = write_entry(repo, entry)
    say(f"ok: {backup_id}: {len(files)} file(s), {entry.size_bytes / 2**20:.1f} MiB in "
        f"{run.seconds:.1f}s, checked; catalog entry {path}")
    return entry
