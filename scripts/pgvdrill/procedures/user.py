"""A team's own procedures ([[procedure]] in the configuration), drilled on throw-away
clusters and verified exactly like the built-in modes.

logical: `backup` writes {backup} from {dsn}, a copy of the dataset's source; `restore`
fills {target_dsn}, an empty database (CREATE DATABASE ... TEMPLATE template0, what
createdb makes) on a scratch cluster; the result is compared with the source's snapshot.
Commands run as the invoking user.

physical: commands run as the server's OS user. With `archive_command`, the source
archives with it into {wal_dir} (with pgvdrill's archive-wal when only `restore_command`
is given). `backup` writes {backup}; `restore` fills the empty {pgdata} from it; pgvdrill
adopts that data directory and starts it. Without `restore_command` the result must equal
the source as it was when the backup started. With it, the drill is a point-in-time
recovery: after the backup, rows are committed, the source's snapshot taken, {target_time}
set a second later and more rows committed and archived; the restored server runs
`restore_command` with recovery_target_time = {target_time} (promote, recovery.signal) and
must hold exactly the rows before the target.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pgvdrill.cluster.local import LocalBackend, LocalCluster
from pgvdrill.cluster.wal_commands import archive_command as archive_wal_command
from pgvdrill.config import Procedure
from pgvdrill.drill.physical import SEQUENCE_SLACK
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.errors import ConfigError, cleanup
from pgvdrill.logical.restore import create_database
from pgvdrill.physical.manifest import label_range
from pgvdrill.procedures.archiving import archive_next, archive_with, place_target
from pgvdrill.procedures.steps import Outcome, Recorder, exit_text, judge
from pgvdrill.procedures.template import placeholders, render
from pgvdrill.procedures.verification import check_restored
from pgvdrill.procedures.workspace import Workspace, dsn, started
from pgvdrill.verify import Snapshot, snapshot
from pgvdrill.wal.names import parse_lsn
from pgvdrill.wal.pitr import BackupPoint, Target, recover

PACK = "config"


def allowed(proc: Procedure) -> dict[str, set[str]]:
    """Placeholders each of the procedure's templates may use."""
    if proc.kind == "logical":
        return {"backup": {"dsn", "backup"}, "restore": {"target_dsn", "backup"}}
    recovering = {"target_time"} if proc.restore_command else set()
    return {"backup": {"dsn", "backup", "wal_dir"},
            "restore": {"backup", "wal_dir", "pgdata"} | recovering,
            "archive_command": {"wal_dir"}, "restore_command": {"wal_dir", "target_time"}}


def check(proc: Procedure) -> None:
    """ConfigError naming what to fix if the procedure cannot be drilled as written."""
    where = f"[[procedure]] {proc.name!r}"
    if proc.kind == "logical" and (proc.archive_command or proc.restore_command):
        raise ConfigError(f"{where}: archive_command and restore_command need kind = "
                          '"physical"', "move them to a physical procedure")
    needed = {"backup": {"backup"}, "restore": {"backup", "pgdata"} if proc.kind == "physical"
              else {"backup"}}
    for key, names in allowed(proc).items():
        text = getattr(proc, key)
        if not text:
            if key in needed:
                raise ConfigError(f"{where}: {key} is empty", f"write the {key} command "
                                  "as a template (see pgvdrill.example.toml)")
            continue
        used = placeholders(text, f"{where} {key}")
        if used - names:
            raise ConfigError(f"{where} {key}: {', '.join(sorted(used - names))} cannot be "
                              f"used here", f"{key} may use: {', '.join(sorted(names))}")
        if needed.get(key, set()) - used:
            raise ConfigError(f"{where} {key}: does not use "
                              f"{', '.join(sorted(needed[key] - used))}",
                              "the drill gives each run its own paths: use the placeholders")
    for key, marks in (("archive_command", ("%p",)), ("restore_command", ("%f", "%p"))):
        text = getattr(proc, key)
        if text and not all(m in text for m in marks):
            raise ConfigError(f"{where} {key}: must use {' and '.join(marks)}",
                              "PostgreSQL replaces %p with the segment's path, %f with its "
                              "name")


@dataclass
class Run:
    """What a procedure's drill needs: the backend, the dataset's template, the recorder."""

    backend: LocalBackend
    template: str
    recorder: Recorder


def drill(run: Run, proc: Procedure) -> None:
    """Drill one procedure, recording a row per command it ran."""
    check(proc)
    (_logical if proc.kind == "logical" else _physical)(run, proc)


def _backup(run: Run, ws: Workspace, proc: Procedure, values: dict[str, str],
            source: LocalCluster) -> bool:
    """Run the backup template; whether it exited 0 and wrote something at {backup}."""
    command = render(proc.backup, values, f"{proc.name} backup")
    with run.recorder.step(proc.name, "backup", command) as out:
        result = ws.run(command, server=source.conninfo, dbname=SOURCE_DB,
                        as_server=proc.kind == "physical")
        size = _size(Path(values["backup"]))
        if result.returncode:
            out.error = exit_text(result)
        elif not size:
            out.error = "exit 0, but nothing was written at {backup}"
        out.evidence = f"exit 0, {size} bytes at {{backup}}; the restore below verifies it"
    return judge(out)[0] == "works"


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.is_file() else 0


def _logical(run: Run, proc: Procedure) -> None:
    backend = run.backend
    with started(backend, "proc-source", run.template) as source, \
            started(backend, "proc-target") as target, \
            Workspace(backend, proc.name, source.conninfo.passfile) as ws:
        with source.connect(SOURCE_DB) as conn:
            snap = snapshot(conn)
        values = {"dsn": dsn(source.conninfo, SOURCE_DB),
                  "target_dsn": dsn(target.conninfo, SOURCE_DB),
                  "backup": str(ws.root / "backup")}
        if not _backup(run, ws, proc, values, source):
            run.recorder.skip(proc.name, "restore", "the backup step failed")
            return
        create_database(target, SOURCE_DB)
        command = render(proc.restore, values, f"{proc.name} restore")
        with run.recorder.step(proc.name, "restore", command) as out:
            result = ws.run(command, server=target.conninfo, dbname=SOURCE_DB)
            if result.returncode:
                out.error = exit_text(result)
            with target.connect(SOURCE_DB) as conn, source.connect(SOURCE_DB) as src:
                check_restored(out, snap, conn, source_conn=src)


def _physical(run: Run, proc: Procedure) -> None:
    backend = run.backend
    with started(backend, "proc-source", run.template) as source, \
            Workspace(backend, proc.name, source.conninfo.passfile) as ws:
        wal_dir = ws.directory("wal")
        values = {"dsn": dsn(source.conninfo, SOURCE_DB), "backup": str(ws.root / "backup"),
                  "wal_dir": str(wal_dir), "pgdata": str(ws.root / "pgdata")}
        archiving = (render(proc.archive_command, values, f"{proc.name} archive_command")
                     if proc.archive_command else
                     archive_wal_command(wal_dir, backend.server_user)
                     if proc.restore_command else "")
        if archiving:
            archive_with(source, archiving)
        with source.connect(SOURCE_DB) as conn:
            snap = snapshot(conn)
        if not _backup(run, ws, proc, values, source):
            run.recorder.skip(proc.name, "restore", "the backup step failed")
            return
        if proc.archive_command:
            with run.recorder.step(proc.name, "archive_command", archiving) as out:
                segment, out.error = archive_next(source)
                if not out.error and "{wal_dir}" in proc.archive_command:
                    out.error = _not_in_archive(wal_dir, segment)
                out.evidence = (f"segment {segment} and those before it archived, no "
                                f"failure (pg_stat_archiver), and in {{wal_dir}}")
        target = place_target(source) if proc.restore_command else None
        if target is not None:
            values["target_time"] = target.time
            snap = target.source
        _restore(run, ws, proc, values, snap, source, target.archived if target else "")


def _not_in_archive(wal_dir: Path, segment: str) -> str:
    """Why the archive_command's {wal_dir} does not hold `segment` (under its name, or a
    name it starts, e.g. compressed), which PostgreSQL was told is archived; "" if it does."""
    if any(p.name.startswith(segment) for p in wal_dir.iterdir()):
        return ""
    held = sorted(p.name for p in wal_dir.iterdir())
    return (f"archive_command exited 0 for {segment} but {{wal_dir}} holds no copy of it "
            f"({', '.join(held[:3]) or 'it is empty'}): PostgreSQL took the segment as "
            "archived and will recycle it; make the command fail when its copy fails")


def _restore(run: Run, ws: Workspace, proc: Procedure, values: dict[str, str],
             snap: Snapshot, source: LocalCluster, archived: str) -> None:
    """Fill {pgdata} with the restore template, adopt and start it (recovering to the
    target with restore_command, if any) and verify it."""
    pgdata = ws.directory("pgdata")
    command = render(proc.restore, values, f"{proc.name} restore")
    with run.recorder.step(proc.name, "restore", command) as out:
        result = ws.run(command, as_server=True)
        if result.returncode:
            out.error = exit_text(result)
        elif not (pgdata / "PG_VERSION").is_file():
            out.error = "exit 0, but {pgdata} holds no PG_VERSION: no data directory"
        elif proc.restore_command:
            out.evidence = "exit 0, {pgdata} holds a data directory; recovery verifies it"
        else:
            _start_and_verify(run, pgdata, None, source, snap, out)
    restored = judge(out)[0] == "works"
    if not proc.restore_command:
        return
    command = render(proc.restore_command, values, f"{proc.name} restore_command")
    with run.recorder.step(proc.name, "restore_command", command) as out:
        if not restored:
            out.error = "not run: the restore step failed"
        elif archived:
            out.error = f"not run: the source did not archive the WAL after the target: " \
                        f"{archived}"
        else:
            point = _point(Path(values["backup"]), pgdata)
            _start_and_verify(run, pgdata, (Target("time", values["target_time"]), point),
                              source, snap, out)


def _start_and_verify(run: Run, pgdata: Path, recovery: tuple[Target, BackupPoint] | None,
                      source: LocalCluster, snap: Snapshot, out: Outcome) -> None:
    """Adopt `pgdata`, start it (recovering to the target with the step's command as
    restore_command), verify it against `snap`, destroy it."""
    cluster = run.backend.adopt("proc-restored", pgdata)
    with cleanup(cluster.destroy, f"server {cluster.name}"):
        if recovery is None:
            cluster.start()
        else:
            recover(cluster, recovery[0], out.command, recovery[1])
        with cluster.connect(SOURCE_DB) as conn, source.connect(SOURCE_DB) as src:
            check_restored(out, snap, conn, source_conn=src, sequence_slack=SEQUENCE_SLACK)
        if recovery is not None:
            out.evidence += f"; recovered to {recovery[0].value}, no row committed after it"


def _point(backup: Path, pgdata: Path) -> BackupPoint:
    """Where the restored backup starts: its manifest when it has one, else the
    backup_label in the restored data directory."""
    manifest = backup / "backup_manifest"
    if manifest.is_file():
        return BackupPoint.of(manifest.read_bytes())
    start = label_range((pgdata / "backup_label").read_text(), "0/0")
    return BackupPoint(parse_lsn(start.start), start.timeline, parse_lsn(start.start), None)
