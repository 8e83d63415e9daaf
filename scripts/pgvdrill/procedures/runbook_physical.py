"""The runbook's physical procedures, run verbatim on a throw-away source that archives with
the runbook's own archive_command: continuous archiving (its archive_command and
archive_wal.sh, each in the failure that shows how it behaves), its two pg_basebackup
commands (checked with pg_verifybackup, restored and verified), the low-level
pg_start_backup, and its PITR steps (extract base.tar.gz into an emptied PGDATA,
restore_command 'cp /backup/wal/%f %p', recovery_target_time, recovery.signal, the older
recovery.conf, and `cat > postgresql.conf`).

Commands that touch a data directory or the archive run as the server's OS user.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from pgvdrill.cluster.base import ConfigValue, quote
from pgvdrill.cluster.local import LocalCluster
from pgvdrill.drill.physical import SEQUENCE_SLACK, restore_backup_and_verify
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.errors import cleanup
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS, BaseBackup
from pgvdrill.physical.manifest import manifest_ranges
from pgvdrill.physical.runbook import START_BACKUP_SQL, runbook_recovery_conf, runbook_start_backup
from pgvdrill.proc import runner
from pgvdrill.procedures.archiving import RecoveryTarget, archive_next, archive_with
from pgvdrill.procedures.pack import CONNECTION, PackRun
from pgvdrill.procedures.runbook_scripts import ARCHIVE_WAL_SH
from pgvdrill.procedures.steps import Outcome, exit_text, judge
from pgvdrill.procedures.template import render
from pgvdrill.procedures.verification import check_restored
from pgvdrill.procedures.workspace import Workspace
from pgvdrill.verify import Snapshot
from pgvdrill.wal.pitr import BackupPoint, Target, recover

ARCHIVING, BASEBACKUP, PITR = "archiving", "pg_basebackup", "pitr"
ARCHIVE_COMMAND = "test ! -f {wal_dir}/%f && cp %p {wal_dir}/%f"
RESTORE_COMMAND = "cp {wal_dir}/%f %p"
EXTRACT = "rm -rf {pgdata}/* && tar -xzf {backup}/base.tar.gz -C {pgdata}"
WAL_ADAPTED = "/backup/wal: the drill's archive directory"


def runbook_archiving(wal_dir: Path) -> str:
    return render(ARCHIVE_COMMAND, {"wal_dir": str(wal_dir)})


def archive_command_step(pack: PackRun, ws: Workspace, source: LocalCluster, wal_dir: Path
                         ) -> None:
    """The runbook's archive_command archiving one segment, then after a crash between the
    copy and PostgreSQL's acknowledgement (the copy left in the archive): retried in vain."""
    command = runbook_archiving(wal_dir)
    adapted = (f"{WAL_ADAPTED}; the crash: a partial copy of the next segment left in the "
               "archive, as cp leaves one when the machine stops mid-copy")
    with pack.recorder.step(ARCHIVING, "archive_command test ! -f && cp", command,
                            adapted) as out:
        segment, out.error = archive_next(source)
        if out.error:
            return
        pending = str(source.query("SELECT pg_walfile_name(pg_current_wal_lsn())")[0][0])
        left = wal_dir / pending
        left.write_bytes((source.datadir / "pg_wal" / pending).read_bytes()[:1 << 20])
        ws.give(left)
        stuck = archive_next(source, timeout=30)[1]
        if stuck:
            out.hazards.append(
                f"after a crash between cp and the acknowledgement the command fails on every "
                f"retry and WAL piles up in pg_wal: {stuck}; test ! -f refuses the partial "
                "copy, which nothing replaces (and cp does not fsync: a segment PostgreSQL "
                "was told is archived can still be lost in a power failure)")
        left.unlink()  # what an operator does once alerted; archiving resumes
        out.error = archive_next(source)[1]
        out.evidence = (f"segment {segment} archived, and {pending} archived once the "
                        "leftover copy was removed")


def archive_wal_sh_step(pack: PackRun, ws: Workspace, source: LocalCluster) -> None:
    """archive_wal.sh whose copy fails (an archive directory the server cannot write):
    does PostgreSQL keep the segment, or acknowledge and recycle it?"""
    closed = ws.directory("wal-unwritable", server_owned=False)
    script = ws.root / "archive_wal.sh"
    script.write_text(render(ARCHIVE_WAL_SH, {"wal_dir": str(closed)}))
    script.chmod(0o755)
    command = f"{shlex.quote(str(script))} %p %f"
    adapted = ("the script written from the runbook's description; /backup/wal: a directory "
               "the server's OS user cannot write, so that the copy fails")
    with pack.recorder.step(ARCHIVING, "archive_wal.sh %p %f (copy fails)", command,
                            adapted) as out:
        archive_with(source, command)
        mark = source.log_position()
        segment, refused = archive_next(source, failures=1, timeout=30)
        if refused:
            out.evidence = f"PostgreSQL kept the segment: {refused}"
            return
        said = [ln.strip() for ln in source.log_since(mark).splitlines() if "cp:" in ln]
        source.query("CHECKPOINT")
        gone = not (source.datadir / "pg_wal" / segment).exists()
        copied = (closed / segment).exists()
        if not copied:
            out.hazards.append(
                f"archive_wal.sh exits 0 although cp failed ({said[0] if said else 'no copy'})"
                f": PostgreSQL recorded {segment} as archived"
                + (" and the next checkpoint recycled it: the segment is in neither pg_wal "
                   "nor the archive" if gone else ", so a checkpoint will recycle it"))
        out.evidence = f"{segment} is in the archive"


def base_backup_step(pack: PackRun, ws: Workspace, source: LocalCluster, snap: Snapshot,
                     step: str, options: str, dest: Path) -> BaseBackup | None:
    """A runbook pg_basebackup run as written, checked with pg_verifybackup, restored
    into a fresh data directory, started and verified against the source."""
    command = render(f"pg_basebackup -U postgres -D {{backup}} {options}",
                     {"backup": str(dest)})
    adapted = ("-D /backup/postgres_<ts>: a directory in the drill's work directory; a "
               "CHECKPOINT just before, so that the spread checkpoint the command starts with "
               f"(it has no --checkpoint=fast) has little to write; {CONNECTION}")
    backup = None
    with pack.recorder.step(BASEBACKUP, step, command, adapted) as out:
        source.query("CHECKPOINT")
        result = ws.run(command, server=source.conninfo, dbname=SOURCE_DB, as_server=True)
        if result.returncode:
            out.error = exit_text(result)
            return None
        taken = BaseBackup(BASE_BACKUP_SETTINGS["tar-gz"], dest, result.seconds,
                           manifest_ranges(dest / "backup_manifest"))
        drill = restore_backup_and_verify(pack.backend, taken, source, snap)
        out.problems += drill.problems()
        files = ", ".join(taken.files())
        streamed = ("; its WAL is in pg_wal.tar.gz although the command has no -X "
                    "(pg_basebackup streams by default)"
                    if "-X" not in options and "pg_wal.tar.gz" in files else "")
        out.evidence = (f"{files}; pg_verifybackup passed; restored, started and verified: "
                        f"{drill.verification.summary()}{streamed}")
        backup = taken
    return backup


def start_backup_step(pack: PackRun, source: LocalCluster) -> None:
    with pack.recorder.step(BASEBACKUP, "low-level pg_start_backup('label')",
                            START_BACKUP_SQL, "run in a session of the source") as out:
        runbook_start_backup(source)
        out.evidence = (f"pg_start_backup and pg_stop_backup ran on PostgreSQL "
                        f"{source.major} (the file copy between them is not drilled)")


@dataclass(frozen=True)
class Pitr:
    """What the PITR steps work with: the archive, the -X stream backup and the target."""

    wal_dir: Path
    backup: Path
    target: RecoveryTarget

    def recovery_settings(self) -> dict[str, ConfigValue]:
        """The runbook's recovery settings, in its order."""
        return {"restore_command": render(RESTORE_COMMAND, {"wal_dir": str(self.wal_dir)}),
                "recovery_target_time": self.target.time,
                "recovery_target_action": "promote", "recovery_target_timeline": "latest"}

    def lines(self) -> str:
        """The recovery settings as configuration file lines."""
        return "".join(f"{k} = {quote(v)}\n" for k, v in self.recovery_settings().items())


def pitr_steps(pack: PackRun, ws: Workspace, source: LocalCluster, pitr: Pitr) -> None:
    """The runbook's PITR: extract, recover to the target with recovery.signal (verified
    exactly), then the same with recovery.conf, then `cat > postgresql.conf`."""
    pgdata = _extract(pack, ws, pitr, "extract base.tar.gz into the emptied PGDATA")
    settings = "\n".join([pitr.lines().strip(), "touch $PGDATA/recovery.signal; start"])
    adapted = (f"{WAL_ADAPTED}; recovery_target_time: a second after the last row to recover;"
               " the settings go to pgvdrill.conf, which postgresql.conf includes, not into "
               "postgresql.conf itself (see the cat > postgresql.conf step)")
    with pack.recorder.step(PITR, "restore_command, recovery_target_*, recovery.signal",
                            settings, adapted) as out:
        if pgdata is None:
            out.error = "not run: the extraction failed"
        elif pitr.target.archived:
            out.error = f"not run: the WAL after the target was not archived: " \
                        f"{pitr.target.archived}"
        else:
            _recover(pack, source, pitr, pgdata, out)
    pgdata = _extract(pack, ws, pitr, "extract again, for recovery.conf")
    with pack.recorder.step(PITR, "recovery.conf instead of recovery.signal",
                            f"cat > $PGDATA/recovery.conf << EOF\n{pitr.lines()}EOF; start",
                            WAL_ADAPTED) as out:
        cluster = None
        if pgdata is None:
            out.error = "not run: the extraction failed"
        else:
            cluster = pack.backend.adopt("pitr-recovery-conf", pgdata)
            runbook_recovery_conf(cluster, pitr.recovery_settings())
            with cluster.connect(SOURCE_DB) as conn:
                check_restored(out, pitr.target.source, conn, sequence_slack=SEQUENCE_SLACK)
    if cluster is not None:
        with cleanup(cluster.destroy, f"server {cluster.name}"):
            _overwrite_conf(pack, ws, cluster, pitr)


def _extract(pack: PackRun, ws: Workspace, pitr: Pitr, step: str) -> Path | None:
    pgdata = ws.directory(f"pgdata-{len(pack.recorder.results)}")
    command = render(EXTRACT, {"pgdata": str(pgdata), "backup": str(pitr.backup)})
    adapted = ("$PGDATA: a new data directory; base_<ts>.tar.gz: base.tar.gz of the "
               "pg_basebackup -X stream backup")
    with pack.recorder.step(PITR, step, command, adapted) as out:
        result = ws.run(command, as_server=True)
        if result.returncode:
            out.error = exit_text(result)
        elif not (pgdata / "backup_label").is_file():
            out.error = "exit 0, but PGDATA holds no backup_label: not a base backup"
        out.evidence = "PGDATA holds the base backup with its backup_label; its pg_wal " \
                       "is empty, WAL comes from the archive"
    return pgdata if judge(out)[0] == "works" else None


def _recover(pack: PackRun, source: LocalCluster, pitr: Pitr, pgdata: Path, out: Outcome
             ) -> None:
    cluster = pack.backend.adopt("pitr-recovered", pgdata)
    with cleanup(cluster.destroy, f"server {cluster.name}"):
        point = BackupPoint.of((pitr.backup / "backup_manifest").read_bytes(), pitr.wal_dir)
        settings = pitr.recovery_settings()
        recovery = recover(cluster, Target("time", pitr.target.time),
                           str(settings["restore_command"]), point)
        with cluster.connect(SOURCE_DB) as conn, source.connect(SOURCE_DB) as src:
            check_restored(out, pitr.target.source, conn, source_conn=src,
                           sequence_slack=SEQUENCE_SLACK)
        out.evidence += (f"; recovered to {pitr.target.time} ({recovery.state}, "
                         f"{recovery.segments} WAL segments), the rows committed after it "
                         "absent")


def _overwrite_conf(pack: PackRun, ws: Workspace, cluster: LocalCluster, pitr: Pitr) -> None:
    """The runbook's `cat > postgresql.conf` with its recovery lines, on a restored data
    directory: which of the file's settings survive, and what the server would run with."""
    conf = cluster.datadir / "postgresql.conf"
    command = f"cat > {shlex.quote(str(conf))} << 'EOF'\n{pitr.lines()}EOF"
    with pack.recorder.step(PITR, "cat > postgresql.conf", command, WAL_ADAPTED) as out:
        before = active_settings(conf.read_text())
        effective = _effective(pack, cluster)
        result = ws.run(command, as_server=True)
        if result.returncode:
            out.error = exit_text(result)
            return
        lost = sorted(set(before) - set(active_settings(conf.read_text())))
        now = _effective(pack, cluster)
        changed = [f"{k} = {now[k] or '(empty)'} (was {effective[k] or '(empty)'})"
                   for k in effective if now[k] != effective[k]]
        if lost:
            out.hazards.append(
                f"it replaces the whole postgresql.conf: {len(lost)} settings are gone "
                f"({', '.join(lost)}); the server would start with "
                + (", ".join(changed) or "its compiled-in defaults"))
        out.evidence = "every setting of postgresql.conf survived"


def active_settings(text: str) -> dict[str, str]:
    """The settings a postgresql.conf sets (comments and blank lines left out)."""
    found = (re.match(r"\s*([A-Za-z_.]+)\s*=?\s*(.*?)\s*$", line.split("#", 1)[0])
             for line in text.splitlines())
    return {m.group(1): m.group(2) for m in found if m}


def _effective(pack: PackRun, cluster: LocalCluster) -> dict[str, str]:
    """What a server on this data directory would run with (postgres -C, as its OS user)."""
    postgres = pack.backend.installation.tool("postgres")
    return {name: runner.run([postgres, "-D", cluster.datadir, "-C", name],
                             user=cluster.server_user, check=False).stdout.strip()
            for name in ("port", "listen_addresses", "unix_socket_directories")}
