"""The monthly disaster-recovery drill of a real source: restore its newest backups from the
repository into scratch servers and compare them with the source.

Read-only towards the source: it is only read in READ ONLY repeatable-read transactions
(its snapshot, pg_dumpall --globals-only) and streamed from without a slot. The comparison
is exact: the restored data must equal the source's. Backups taken by the drill itself
(`--take`) are compared with the source at each backup's own moment, so writes on the
source do not matter: the logical one at its snapshot (pg_dump --snapshot; its sequences,
which no snapshot holds, between reads before and after pg_dump), the physical one
recovered to the moment of a snapshot read after it (ops.dr_point). A backup picked from
the repository is compared with the source as it is now, which is exact only while the
source has not changed since (a replica with replay paused, a quiet period): a
difference then fails the drill, never passes it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from pgvdrill import config as config_module
from pgvdrill import osuser
from pgvdrill.backends import (
    BackendOptions,
    backend_for,
    default_workdir,
    installations_of,
    of_major,
    of_target,
)
from pgvdrill.backup.source import server_facts, source_major, source_server, tools_for
from pgvdrill.backup.stored import artifact_path, base_backup_of, globals_path
from pgvdrill.backup.take import take_backup
from pgvdrill.cluster import Backend
from pgvdrill.cluster.local import LocalBackend
from pgvdrill.config import Config
from pgvdrill.drill.archive_health import check_archive
from pgvdrill.drill.dr_point import WalStream, comparison_point, sequences_now
from pgvdrill.drill.dr_restore import FAILURES, bootstrap_superuser, restore_dump
from pgvdrill.drill.physical import ComparisonPoint, restore_backup_and_verify
from pgvdrill.drill.provider import Scene, drill_provider
from pgvdrill.drill.record import DrillFailure, DrillResult
from pgvdrill.errors import ConfigError, DrillError, clean_after
from pgvdrill.policy.fail_on import FailOn
from pgvdrill.policy.targets import load_targets
from pgvdrill.report import run_dir as report
from pgvdrill.repository import Entry, Repository, file_problems, lock
from pgvdrill.repository.catalog import newest, read_entries
from pgvdrill.server import ExternalServer, describe_conninfo
from pgvdrill.verify import Snapshot, snapshot
from pgvdrill.verify.schema import SequenceWindow
from pgvdrill.verify.session import USER_SCHEMA, not_extension_member
from pgvdrill.wal.names import parse_lsn
from pgvdrill.wal.pitr import Target

Say = Callable[[str], None]


def backup_age(entry: Entry, now: datetime | None = None) -> float:
    return ((now or datetime.now(UTC)) - entry.finished_at).total_seconds()


def _failed(kind: str, entry: Entry, why: str | BaseException,
            more: Sequence[str] = ()) -> dict[str, Any]:
    """The record of a drill of `entry` that failed with `why`; `more`: further problems
    found before it failed (the WAL archive's), kept in the report."""
    return DrillFailure(
        f"{kind}:{entry.id}", kind, why, stage=None,
        backup={"setting": entry.id, "seconds": entry.seconds, "size_bytes": entry.size_bytes,
                "finished": entry.finished, **source_versions(entry)},
        more_evidence={"backup_age": {"kind": kind, "seconds": backup_age(entry)}},
        listed=tuple(more)).as_dict()


def source_versions(entry: Entry) -> dict[str, Any]:
    """What the catalog entry says of the source's versions, as a report records them."""
    return {"source_postgresql": entry.source.get("server_version"),
            "source_pgvector": entry.source.get("pgvector")}


def _with_age(drill: DrillResult, entry: Entry, more: Sequence[str] = (),
              into: dict[str, object] | None = None) -> dict[str, Any]:
    """The record of `drill`, a drill of `entry`: named by the catalog id, with the
    backup's age and the versions of its source and of the server it was restored `into`
    (the backend's facts); `more`: further problems (the WAL archive's), which fail it."""
    recorded = drill.entry()
    aged = replace(
        recorded, drill=f"{drill.kind}:{entry.id}",
        evidence={**(recorded.evidence or {}),
                  "backup_age": {"kind": drill.kind, "seconds": backup_age(entry)}},
        backup={**(recorded.backup or {}), "catalog_id": entry.id, **source_versions(entry)},
        restore={**(recorded.restore or {}),
                 **({"into_postgresql": into.get("version"), "into_pgvector": into.get(
                     "pgvector"), "into_backend": into.get("backend")} if into else {})})
    if more:
        aged = replace(aged, ok=False, problems=[*(aged.problems or []), *more])
    return aged.as_dict()


def drill_logical(backend: Backend, repo: Repository, entry: Entry, source: ExternalServer,
                  source_snapshot: Snapshot, *, recall_threshold: float, say: Say
                  ) -> dict[str, Any]:
    """Restore the logical backup `entry` into a scratch server, after its roles (from the
    backup's own globals.sql, as a real disaster recovery would; a live pg_dumpall of the
    source for a backup taken without one), and verify it against `source_snapshot`."""
    problems = file_problems(repo, entry)
    if problems:
        return _failed("logical", entry, "; ".join(problems))
    try:
        drill = restore_dump(backend, artifact_path(repo, entry), entry.id, entry.seconds,
                             source, source_snapshot, recall_threshold=recall_threshold,
                             say=say, finished=entry.finished_at,
                             source_bytes=entry.extra.get("source_bytes"),
                             kept=globals_path(repo, entry))
    except FAILURES as exc:
        return _failed("logical", entry, exc)
    say(f"  restore logical {entry.id}: {drill.summary()}")
    return _with_age(drill, entry, into=backend.facts())


def drill_physical(backend: Backend, repo: Repository, entry: Entry, source: ExternalServer,
                   source_snapshot: Snapshot, *, recall_threshold: float, say: Say,
                   point: ComparisonPoint | None = None) -> dict[str, Any]:
    """Restore the base backup `entry` into a scratch data directory, start it recovering
    through the archived WAL to its end (when there is any; with `point`, to that point
    instead), verify it against the source, and check that the archive can carry
    recovery past the backup."""
    problems = file_problems(repo, entry)
    if problems:
        return _failed("physical", entry, "; ".join(problems))
    backup = replace(base_backup_of(repo, entry), source_bytes=entry.extra.get("source_bytes"),
                     finished=entry.finished_at)
    replay, broken = check_archive(repo, entry, source)
    try:
        with tempfile.TemporaryDirectory(prefix="dr-wal-", dir=default_workdir()) as wal:
            if replay is not None and isinstance(backend, LocalBackend):
                replay = replay.copied(Path(wal), osuser.server_user())
            drill = restore_backup_and_verify(
                backend, backup, source, source_snapshot, recall_threshold=recall_threshold,
                dbname=source.dbname, scratch=default_workdir(), replay=replay, point=point,
                superuser=bootstrap_superuser(source))
    except FAILURES as exc:
        for problem in broken:
            say(f"  WAL archive: {problem}")
        return _failed("physical", entry, exc, broken)
    say(f"  restore physical {entry.id}: {drill.summary()}")
    if drill.neutralised is not None:
        say(f"  restored copy: {drill.neutralised.summary()}")
        for warning in drill.neutralised.warnings:
            say(f"  restored copy: warning: {warning}")
    for problem in broken:
        say(f"  WAL archive: {problem}")
    return _with_age(drill, entry, broken, into=backend.facts())


def take_logical(config: Config, source: ExternalServer, say: Say) -> tuple[Snapshot, Entry]:
    """Take a logical backup into the repository from a snapshot this session exports and
    snapshot the source in that same snapshot: the two describe the same moment, so the
    comparison is exact however busy the source is. Sequences are the exception (no
    snapshot holds them; pg_dump reads each when it dumps it): they are read once more
    after pg_dump finished, and a restored one must lie between the two reads."""
    started = time.monotonic()
    with reading_source(source), source.connect() as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        exported = str(row[0]) if row else ""
        snap = snapshot(conn, tables=readable_tables(conn))
        say(f"source {source.describe()}: snapshot {exported} in "
            f"{time.monotonic() - started:.1f}s ({len(snap.schema.tables)} tables)")
        entry = take_backup(config, "logical", say, snapshot=exported)
    window = SequenceWindow(snap.schema.sequences, sequences_now(source))
    return replace(snap, sequence_window=window), entry


def take_physical(config: Config, source: ExternalServer, wal: Path, say: Say
                  ) -> tuple[Snapshot, ComparisonPoint, Entry]:
    """Take a base backup into the repository while streaming the source's WAL into `wal`,
    then the point at which a copy of it is compared with the source (ops.dr_point): the
    source keeps changing after the backup ends."""
    before = sequences_now(source)
    with WalStream(source, wal) as stream:
        entry = take_backup(config, "physical", say)
        if entry.end_lsn is None or entry.timeline is None:
            raise DrillError(f"backup {entry.id} records no end LSN or timeline")
        snap, point = comparison_point(source, stream, parse_lsn(entry.end_lsn),
                                       entry.timeline, before, say)
    return snap, point, entry


READABLE_IN_RECOVERY = f"""SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND {USER_SCHEMA}
      AND {not_extension_member('pg_class', 'c.oid')}"""


def readable_tables(conn: psycopg.Connection[Any]) -> list[str] | None:
    """The tables a standby source lets the snapshot read: none of its unlogged ones ("cannot
    access temporary or unlogged relations during recovery"; no backup holds their rows
    either); None (all) on a primary or without unlogged tables."""
    standby, unlogged = conn.execute(
        "SELECT pg_is_in_recovery(), EXISTS (SELECT FROM pg_catalog.pg_class "
        "WHERE relpersistence = 'u' AND relkind IN ('r', 'p'))").fetchone() or (False, False)
    if not (standby and unlogged):
        return None
    return ['"{}"."{}"'.format(s.replace('"', '""'), n.replace('"', '""'))
            for s, n in conn.execute(READABLE_IN_RECOVERY)]


@contextmanager
def reading_source(source: ExternalServer) -> Iterator[None]:
    """ConfigError saying what the configured role lacks when the source refuses a read
    (a table it may not read, row-level security it does not bypass)."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege as exc:
        role = str(source.query("SELECT quote_ident(current_user)")[0][0])
        raise ConfigError(
            f"the source {source.describe()} refuses to let {role} read everything the "
            f"drill compares: {exc.diag.message_primary or exc}",
            "as a superuser on the source (pg_dump needs it too): "
            + (f"ALTER ROLE {role} BYPASSRLS;" if "row-level security" in str(exc)
               else f"GRANT pg_read_all_data TO {role};")) from None


def source_snapshot(source: ExternalServer, say: Say) -> Snapshot:
    started = time.monotonic()
    with reading_source(source), source.connect() as conn:
        snap = snapshot(conn, tables=readable_tables(conn))
    say(f"source {source.describe()}: snapshot in {time.monotonic() - started:.1f}s "
        f"({len(snap.schema.tables)} tables, {len(snap.ann)} vector indexes)")
    return snap


ARCHIVE_END = Target("end")


@dataclass(frozen=True)
class DrOptions:
    """The DR drill's options, resolved: which `kinds` of backup, `take` them now or use
    the newest in the repository, the ANN `recall_threshold`, `fail_on` (which target
    verdicts fail the run), where reports go, the targets file and production size, and
    where scratch servers run."""

    kinds: tuple[str, ...]
    take: bool
    recall_threshold: float
    fail_on: FailOn
    reports_dir: Path
    targets: Path | None
    production_size: str | None
    backend: BackendOptions
    providers: tuple[str, ...] | None = None  # --provider: only these (None: every one)
    backup: str | None = None  # --backup: the provider's backup to drill
    target: Target = ARCHIVE_END  # where provider backups are recovered to


def run(config: Config, options: DrOptions, say: Say) -> int:
    """`pgvdrill dr-drill`: drill the newest backup of each of `options.kinds` (with
    `options.take`, backups taken now) in the repository, and each configured provider's
    (drill.provider; --provider: only those, and not the repository)."""
    source_conf = config.require_source()
    providers = chosen_providers(config, options)
    repo = None if options.providers is not None else (
        Repository(config.require_repository()) if config.repository or not providers
        else None)
    if options.take and repo is None:
        raise ConfigError("--take takes backups into the [repository]; the drill of "
                          "--provider backups drills what their tools took",
                          "leave out --take or --provider")
    if (options.target.kind != "end" or options.backup) and repo is not None:
        raise ConfigError("--backup and --target-* choose and recover a provider's backup",
                          "add --provider NAME")
    targets = load_targets(options.targets, options.production_size)
    run_dir = report.new_run_dir(options.reports_dir).resolve()
    started = datetime.now(UTC)
    drills: list[dict[str, Any]] = []
    facts: dict[str, Any] = {"server": {"source": describe_conninfo(source_conf.conninfo)}}
    try:
        _drill_all(options, config, repo, providers, run_dir, drills, facts, say)
    except (*FAILURES, KeyboardInterrupt) as exc:  # the report still says what was found
        drills.append(report.aborted(exc))
        clean_after(exc, lambda: report.finish("pgvdrill drill --config", run_dir, started,
                                               drills, targets, options.fail_on, say, **facts),
                    f"(writing) the report in {run_dir}")
        raise
    return report.finish("pgvdrill drill --config", run_dir, started, drills, targets,
                         options.fail_on, say, **facts)


def chosen_providers(config: Config, options: DrOptions) -> list[config_module.Provider]:
    """The [provider.NAME] sections the drill drills: --provider's, else every one."""
    if options.providers is None:
        return list(config.providers)
    return [config.provider(name) for name in options.providers]


def _drill_all(options: DrOptions, config: Config, repo: Repository | None,
               providers: Sequence[config_module.Provider], run_dir: Path,
               drills: list[dict[str, Any]], facts: dict[str, Any], say: Say) -> None:
    """Drill each of --kinds in `repo` (if any), then each of `providers`, appending each
    drill's record to `drills` as it ends and what the report says about the servers
    (and the providers) to `facts`. The source is reached with client
    tools of its own major version when a physical backup is taken now (its WAL is read);
    each backup is restored on the installation `_restoring` picks."""
    source_conf = config.require_source()
    with (lock.shared(repo) if repo else nullcontext()), ExitStack() as stack, \
            tempfile.TemporaryDirectory(prefix="pgvdrill-point-",
                                        dir=options.backend.workdir) as tmp:
        live = server_facts(source_server(config))
        found, _ = installations_of(options.backend)
        reads_wal = options.take and "physical" in options.kinds  # ops.dr_point's pg_waldump
        source = ExternalServer(source_conf.conninfo, tools_for(
            config, live, "physical" if reads_wal else "logical", found))
        backends: dict[BackendOptions, Backend] = {}
        into: dict[str, dict[str, object]] = {}
        taken: dict[str, Entry] = {}
        snaps: dict[str, Snapshot] = {}  # each backup taken now: the source at its moment
        point = None
        if options.take and "logical" in options.kinds:
            snaps["logical"], taken["logical"] = take_logical(config, source, say)
        if options.take and "physical" in options.kinds:
            Path(tmp).chmod(0o711)  # the restored copy's restore_command reads the WAL
            snaps["physical"], point, taken["physical"] = take_physical(
                config, source, Path(tmp) / "wal", say)
        compare_now = (repo is not None and not set(options.kinds) <= snaps.keys()) or \
            (bool(providers) and options.target.kind == "end")
        snap = source_snapshot(source, say) if compare_now else None
        entries = read_entries(repo) if repo is not None else []
        for kind in options.kinds if repo is not None else ():
            assert repo is not None
            entry = taken.get(kind) or newest(entries, kind)
            if entry is None:
                drills.append(_missing(kind, repo))
                say(f"  {kind}: no backup in {repo.root}")
                continue
            say(f"{kind} backup {entry.id}: finished {entry.finished}, "
                f"{entry.size_bytes / 2**20:.1f} MiB, {backup_age(entry) / 3600:.1f} h old")
            try:
                chosen = _restoring(options.backend, kind, entry)
                if chosen not in backends:
                    backends[chosen] = stack.enter_context(
                        backend_for(chosen, [run_dir, repo.root]))
            except ConfigError as exc:
                drills.append(_failed(kind, entry, exc))
                say(f"  {kind} {entry.id}: FAILED: {exc}")
                continue
            backend = backends[chosen]
            into[kind] = backend.facts()
            say(f"  from PostgreSQL {entry.source.get('server_version')} into PostgreSQL "
                f"{into[kind].get('version')} ({backend.name} backend)")
            compared = snaps.get(kind) or snap
            assert compared is not None
            drill = drill_logical(
                backend, repo, entry, source, compared, recall_threshold=options.recall_threshold,
                say=say) if kind == "logical" else drill_physical(
                backend, repo, entry, source, compared, recall_threshold=options.recall_threshold,
                say=say, point=point if kind in snaps else None)
            if "error" in drill:
                say(f"  {kind} {entry.id}: FAILED: {drill['error']}")
            drills.append(drill)
        if providers:
            scene = Scene(source, snap, options.backend, stack, [run_dir], options.target,
                          options.recall_threshold, say, {})
            facts["provider"] = []
            for conf in providers:
                told, drilled = drill_provider(conf, scene, options.kinds, options.backup)
                facts["provider"].append(told)
                drills.extend(drilled)
            for backend in scene.backends.values():
                into.setdefault(f"provider ({backend.name})", backend.facts())
        facts["server"] = {**next(iter(into.values()), {}), "source": source.describe(),
                           "source_postgresql": live["server_version"],
                           "source_pgvector": live["pgvector"], "restored_into": into}
        facts["dataset"] = {"key": source.describe(), "bytes": _size(source)}


def _restoring(options: BackendOptions, kind: str, entry: Entry) -> BackendOptions:
    """Where backup `entry` is restored: a physical one on an installation of its source's
    major version (no other can start its data directory or read its WAL), a logical one
    on the target version (--target-version, [drill] target_version; else the backend's
    own)."""
    if kind == "logical":
        return of_target(options, f"restoring logical backup {entry.id}")
    return of_major(options, source_major(entry),
                    f"restoring physical backup {entry.id} of a PostgreSQL "
                    f"{entry.source.get('server_version')} source")


def _missing(kind: str, repo: Repository) -> dict[str, Any]:
    return DrillFailure(f"{kind}:none", kind, f"no complete {kind} backup in {repo.root}",
                        stage=None, more_evidence={"backup_age": {"kind": kind, "seconds": None}},
                        listed=()).as_dict()


def _size(source: ExternalServer) -> int:
    return int(str(source.query("SELECT pg_database_size(current_database())")[0][0]))
