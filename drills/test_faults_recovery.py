"""Issue 13, class 4: recovery never ends early in silence.

restore-wal exits 99 only for "not in the archive"; any other failure (its own usage
errors too) exits 126, which PostgreSQL's startup process takes as fatal, so a segment the
server cannot read stops recovery instead of promoting a copy without the WAL after it.
The restore_command pgvdrill writes maps 99 to 1 and every other failure, one of a program
that cannot start too, to 126. Every recovery pgvdrill
runs checks where replay ended against where it had to get, and `restore pitr` names the
archived segments the server's OS user cannot read before anything is unpacked.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.cli import Cli
from fixtures.data_directory import empty_data_directory
from fixtures.ops import ArchivedRepo
from fixtures.repository_copy import copy_repository
from fixtures.segments import segment_bytes
from pgvdrill import osuser
from pgvdrill.cluster import Backend
from pgvdrill.cluster.ports import lease
from pgvdrill.cluster.wal_commands import python_for, restore_command
from pgvdrill.drill.physical import ArchiveReplay, replay_problems
from pgvdrill.drill.pitr import Archived, Restore, archive_markers
from pgvdrill.errors import RestoreError
from pgvdrill.installation import Installation
from pgvdrill.proc import runner
from pgvdrill.restore_status import ABORT_RECOVERY, NOT_IN_ARCHIVE
from pgvdrill.wal.continuity import check_continuity
from pgvdrill.wal.names import LONG_HEADER, SEGMENT_RE, Segment, format_lsn
from pgvdrill.wal.pitr import BackupPoint, Target, archive_end, recover

SEGMENT = "000000010000000000000003"


def walcmd(*args: str | Path, user: str | None = None) -> subprocess.CompletedProcess[str]:
    """restore-wal as PostgreSQL runs it: `python -m pgvdrill.wal.walcmd`, as `user`."""
    python, path = python_for(user)
    return runner.run([python, "-m", "pgvdrill.wal.walcmd", *map(str, args)], user=user,
                      env={"PYTHONPATH": path}, check=False, timeout=60)


def lock_away(path: Path) -> None:
    """Root's alone (0600): what a copy made by root, or a restored file, leaves."""
    os.chown(path, 0, 0)
    path.chmod(0o600)


@pytest.fixture
def archive(reachable: Path) -> Path:
    """An archive directory the server's OS user owns, holding one segment."""
    path = reachable / "archive"
    path.mkdir()
    (path / SEGMENT).write_bytes(segment_bytes())
    osuser.chown_tree(path, osuser.server_user())
    return path


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a file another user's")
def test_fault_restore_wal_unreadable_segment_aborts_recovery(archive: Path) -> None:
    user = osuser.server_user()
    into = archive.parent / "pg_wal"
    into.mkdir()
    osuser.chown_tree(into, user)
    lock_away(archive / SEGMENT)

    result = walcmd("restore-wal", SEGMENT, into / "RECOVERYXLOG", "--source", archive,
                    user=user)

    assert result.returncode == ABORT_RECOVERY > 125, result.stderr  # was 4: "not available"
    assert SEGMENT in result.stderr and "Permission denied" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("case", ["missing-archive", "unwritable-destination", "hostile-name"])
def test_fault_restore_wal_other_failures_abort_recovery(archive: Path, case: str) -> None:
    """Anything but "the archive has no such file" stops recovery: a wrong --source (was 1:
    recovery ended at the backup), a destination that cannot be written (a full or broken
    pg_wal; was 4), a name that is no WAL file name (was 2)."""
    name, destination, source = SEGMENT, archive.parent / "RECOVERYXLOG", archive
    if case == "missing-archive":
        source = archive.parent / "no-such-archive"
    elif case == "unwritable-destination":
        destination = archive.parent / "no-such-dir" / "RECOVERYXLOG"
    else:
        name = "../" + SEGMENT

    result = walcmd("restore-wal", name, destination, "--source", source)

    assert result.returncode == ABORT_RECOVERY, (result.returncode, result.stderr)
    assert "cannot restore" in result.stderr and "Traceback" not in result.stderr


def test_restore_wal_absent_file_is_still_not_found(archive: Path) -> None:
    result = walcmd("restore-wal", "000000010000000000000004", archive.parent / "X",
                    "--source", archive)

    assert (result.returncode, result.stderr) == (NOT_IN_ARCHIVE, "")


@pytest.mark.parametrize(("wanted", "code"), [
    ("000000010000000000000004", ABORT_RECOVERY),  # within what restore pitr saw: gone
    ("000000010000000000000006", NOT_IN_ARCHIVE),  # past the archive's end: the end
    ("000000020000000000000004", NOT_IN_ARCHIVE),  # another timeline: PostgreSQL tries on
])
def test_fault_restore_wal_segment_it_was_told_to_expect_is_gone(archive: Path, wanted: str,
                                                                 code: int) -> None:
    result = walcmd("restore-wal", wanted, archive.parent / "X", "--source", archive,
                    "--expect", f"{SEGMENT}:000000010000000000000005")

    assert result.returncode == code, result.stderr
    assert ("which held 000000010000000000000003 to 000000010000000000000005"
            in result.stderr) == (code == ABORT_RECOVERY)


def test_fault_restore_wal_via_the_cli_aborts_too(pgvdrill_cli: Cli, archive: Path) -> None:
    """`pgvdrill restore-wal` (what the deployed restore_command runs) maps alike."""
    result = pgvdrill_cli("restore-wal", SEGMENT, archive.parent / "no-such-dir" / "X",
                          "--source", archive)

    assert result.returncode == ABORT_RECOVERY, result.stderr


@pytest.mark.parametrize("mistake", ["unknown-option", "no-source", "bad-expect",
                                     "extra-argument", "no-arguments"])
@pytest.mark.parametrize("entry", ["walcmd", "cli"])
def test_fault_restore_wal_usage_errors_abort_recovery(
        pgvdrill_cli: Cli, archive: Path, mistake: str, entry: str) -> None:
    """A mistake in restore_command's arguments (a hand-written typo, an option another
    pgvdrill version lacks) was argparse's exit 2: "not in the archive", recovery ended at
    the backup and promoted. Now 126, with the reason, and nothing written."""
    into = archive.parent / "RECOVERYXLOG"
    args: list[str | Path] = {
        "unknown-option": [SEGMENT, into, "--archive", archive],
        "no-source": [SEGMENT, into],
        "bad-expect": [SEGMENT, into, "--source", archive, "--expect", SEGMENT],
        "extra-argument": [SEGMENT, into, "--source", archive, "%r"],
        "no-arguments": []}[mistake]

    result = walcmd("restore-wal", *args) if entry == "walcmd" \
        else pgvdrill_cli("restore-wal", *args)

    assert result.returncode == ABORT_RECOVERY, (result.returncode, result.stderr)
    assert "recovery stops here (exit 126)" in result.stderr
    assert not into.exists()


def test_restore_wal_help_still_exits_0(pgvdrill_cli: Cli) -> None:
    assert pgvdrill_cli("restore-wal", "--help").returncode == 0


def as_postgresql_runs(command: str, name: str, path: Path) -> int:
    """`command` (restore_command) run as PostgreSQL runs it: %f and %p replaced, /bin/sh."""
    line = command.replace("%f", name).replace("%p", str(path))
    return subprocess.run(["/bin/sh", "-c", line], capture_output=True, timeout=60,
                          check=False).returncode


def test_fault_restore_command_whose_program_cannot_start_aborts_recovery(
        archive: Path, tmp_path: Path) -> None:
    """The restore_command pgvdrill writes, with the module it names gone (an upgrade
    moved it, the server's OS user cannot read it): Python exits 1 ("No module named"),
    which PostgreSQL took for the end of the archive. Its case makes that 126; restore-wal's
    own "not in the archive" is still 1 and a file found 0."""
    command = restore_command(archive, None)
    absent = "000000010000000000000009"
    assert as_postgresql_runs(command, SEGMENT, tmp_path / "got") == 0
    assert (tmp_path / "got").read_bytes() == (archive / SEGMENT).read_bytes()
    assert as_postgresql_runs(command, absent, tmp_path / "none") == 1
    broken = command.replace("-m pgvdrill.wal.walcmd", "-m pgvdrill.wal.removed_walcmd")
    assert broken != command
    python, _ = python_for(None)
    alone = subprocess.run([python, "-m", "pgvdrill.wal.removed_walcmd"], check=False,
                           capture_output=True, text=True, timeout=60)
    assert (alone.returncode, "No module named" in alone.stderr) == (1, True)  # was "absent"

    assert as_postgresql_runs(broken, SEGMENT, tmp_path / "x") == ABORT_RECOVERY
    assert as_postgresql_runs(broken, absent, tmp_path / "x") == ABORT_RECOVERY
    assert as_postgresql_runs(command.replace(shlex.quote(python), "/no/such/python"),
                              SEGMENT, tmp_path / "x") == ABORT_RECOVERY


# -- real recoveries ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def archived(backend: Backend, source_template: str, wal_workdir: Path) -> Archived:
    return archive_markers(backend, source_template, wal_workdir)


def zero_records(segment: Path) -> None:
    """Zero everything of `segment` after its long page header: the right size and header
    (restore-wal serves it), no WAL record (PostgreSQL ends replay at its start)."""
    with segment.open("r+b") as handle:
        handle.seek(LONG_HEADER.size)
        handle.write(bytes(segment.stat().st_size - LONG_HEADER.size))


def damaged_copy(archived: Archived, into: Path) -> tuple[Path, BackupPoint, str]:
    """A copy of the archive the server's OS user owns, the point of its base backup, and
    the name of its last segment (after the backup's end: the markers written after it)."""
    copy = Path(shutil.copytree(archived.archive, into))
    osuser.chown_tree(copy, osuser.server_user())
    point = BackupPoint.of((archived.backup.path / "backup_manifest").read_bytes(), copy)
    last = check_continuity(copy, point.start_lsn, point.timeline).segments[-1]
    assert Segment.from_name(last).start > point.end_lsn  # the damage is past the backup
    return copy, point, last


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a file another user's")
def test_fault_unreadable_segment_stops_a_drill_recovery_without_promoting(
        archived: Archived, restore_backup: Restore, wal_workdir: Path) -> None:
    """The issue's case in the drill's PITR: a segment the server's OS user cannot read.
    Before, restore-wal exited 4, PostgreSQL took it as the end of the archive and
    promoted without it; now the recovery fails naming the segment."""
    copy, point, last = damaged_copy(archived, wal_workdir / "unreadable-archive")
    lock_away(copy / last)
    cluster, _ = restore_backup(archived.backup, "unreadable")

    with pytest.raises(RestoreError, match=f"stopped at WAL file {last}") as failed:
        recover(cluster, Target("end"), cluster.restore_command(copy), point)

    assert "without promoting" in failed.value.message
    assert not cluster.is_running()
    assert not list(Path(cluster.datadir, "pg_wal").glob("00000002.history"))  # no new TLI


def test_fault_replay_that_ends_early_fails_naming_both_lsns(
        archived: Archived, restore_backup: Restore, wal_workdir: Path) -> None:
    """A zeroed segment (right size, no WAL) is where PostgreSQL finds no valid record:
    recovery to the end of the archive ends before it and promotes, which recover()
    accepted in silence; it now checks where replay ended against the archive's last
    segment."""
    copy, point, last = damaged_copy(archived, wal_workdir / "zeroed-archive")
    zero_records(copy / last)
    must = archive_end(copy, point)
    cluster, _ = restore_backup(archived.backup, "zeroed")

    with pytest.raises(RestoreError, match="ended early") as failed:
        recover(cluster, Target("end"), cluster.restore_command(copy), point, must_reach=must)

    assert f"not past {format_lsn(Segment.from_name(last).start)}" in failed.value.message
    assert last in failed.value.message and "replay ended at " in failed.value.message


def test_fault_dr_drill_replay_that_stops_before_the_last_segment_is_a_problem(
        archived: Archived, restore_backup: Restore, wal_workdir: Path) -> None:
    """The DR drill's replay check compared with >= the start of the last segment, which
    a replay that read none of it reaches (the previous segment's switch record ends
    there): a zeroed last segment passed."""
    copy, _, last = damaged_copy(archived, wal_workdir / "zeroed-dr-archive")
    zero_records(copy / last)
    cluster, _ = restore_backup(archived.backup, "zeroed-dr")

    problems = replay_problems(cluster, archived.backup,
                               ArchiveReplay(copy, Segment.from_name(last).start))

    assert len(problems) == 1 and "before its last segment" in problems[0], problems


# -- restore pitr, started by the operator ---------------------------------------------------

def repo_copy(archived_repo: ArchivedRepo, reachable: Path) -> tuple[Path, Path, str]:
    """(repository copy the server's OS user owns, its config, its last WAL segment)."""
    repo = copy_repository(archived_repo.repo, reachable / "repo")
    osuser.chown_tree(repo, osuser.server_user())
    config = reachable / "pgvdrill.toml"
    config.write_text(f'[repository]\npath = "{repo}"\n')
    last = max(p.name for p in (repo / "wal").iterdir() if SEGMENT_RE.fullmatch(p.name))
    return repo, config, last


@pytest.fixture
def pgdata(reachable: Path) -> Callable[[str], Path]:
    return functools.partial(empty_data_directory, reachable)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a file another user's")
@pytest.mark.local_server("pgvdrill restore pitr writes a restore_command that runs "
                           "pgvdrill on the server's machine")
def test_fault_restore_pitr_names_an_unreadable_segment_before_unpacking(
        archived_repo: ArchivedRepo, pgvdrill_cli: Cli, reachable: Path,
        pgdata: Callable[[str], Path]) -> None:
    """Before, restore pitr said "recovery can reach" past a segment the server could
    not read, and recovery promoted without it."""
    repo, config, last = repo_copy(archived_repo, reachable)
    lock_away(repo / "wal" / last)
    datadir = pgdata("pitr")

    result = pgvdrill_cli("restore", "pitr", archived_repo.physical.id, "--pgdata", datadir,
                          "--config", config)

    assert result.returncode == 2, result.stdout + result.stderr
    assert f"cannot read {last}" in result.stderr and "chown" in result.stderr
    assert "recovery can reach" not in result.stdout
    assert list(datadir.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a file another user's")
@pytest.mark.local_server("pgvdrill restore pitr writes a restore_command that runs "
                           "pgvdrill on the server's machine")
def start_copy(backend: Backend, datadir: Path, log: Path) -> tuple[int, str]:
    """pg_ctl start as the operator runs it (as the server's OS user, on a free port),
    stopped again whatever happened: (pg_ctl's exit code, the server log)."""
    tools = backend.tools()
    assert isinstance(tools, Installation)
    log.touch()
    osuser.chown_tree(log, osuser.server_user())
    port = lease()
    try:
        started = runner.run([tools.tool("pg_ctl"), "-D", datadir, "-l", log, "-o",
                              f"-p {port.port}", "-w", "-t", "120", "start"],
                             user=osuser.server_user(), cwd=datadir, check=False, timeout=180)
    finally:
        port.release()
        runner.run([tools.tool("pg_ctl"), "-D", datadir, "-m", "immediate", "stop"],
                   user=osuser.server_user(), check=False, timeout=120)
    return started.returncode, log.read_text()


@pytest.mark.local_server("pgvdrill restore pitr writes a restore_command that runs "
                           "pgvdrill on the server's machine")
def test_fault_restore_pitr_copy_stops_when_a_segment_it_saw_is_gone(
        archived_repo: ArchivedRepo, pgvdrill_cli: Cli, reachable: Path,
        pgdata: Callable[[str], Path], backend: Backend) -> None:
    """restore pitr said "recovery can reach" its last segment; the segment is removed
    before the operator starts the copy (retention, a mistake). Before, PostgreSQL got
    "not found", ended recovery a segment early and promoted; now restore-wal knows the
    segments the restore saw and stops recovery."""
    repo, config, last = repo_copy(archived_repo, reachable)
    datadir = pgdata("pitr")
    result = pgvdrill_cli("restore", "pitr", archived_repo.physical.id, "--pgdata", datadir,
                          "--config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    (repo / "wal" / last).unlink()

    code, said = start_copy(backend, datadir, reachable / "pitr.log")

    assert code != 0, said[-3000:]
    assert f"{last} is missing from" in said and "recovery would end early here" in said
    assert "database system is ready to accept connections" not in said
    assert not list((datadir / "pg_wal").glob("00000002.history"))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a file another user's")
@pytest.mark.local_server("pgvdrill restore pitr writes a restore_command that runs "
                           "pgvdrill on the server's machine")
def test_fault_restore_pitr_copy_never_promotes_past_an_unreadable_segment(
        archived_repo: ArchivedRepo, pgvdrill_cli: Cli, reachable: Path,
        pgdata: Callable[[str], Path], backend: Backend) -> None:
    """The segment becomes unreadable after the restore was made (the operator starts the
    copy later): the copy's server stops with a FATAL naming it instead of promoting a new
    timeline without it (the issue: nine segments and a table lost in silence)."""
    repo, config, last = repo_copy(archived_repo, reachable)
    datadir = pgdata("pitr")
    result = pgvdrill_cli("restore", "pitr", archived_repo.physical.id, "--pgdata", datadir,
                          "--config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    lock_away(repo / "wal" / last)

    code, said = start_copy(backend, datadir, reachable / "pitr.log")

    assert code != 0, said[-3000:]
    assert f'could not restore file "{last}" from archive' in said
    assert "cannot restore" in said and "Permission denied" in said  # restore-wal's reason
    assert "database system is ready to accept connections" not in said
    assert not list((datadir / "pg_wal").glob("00000002.history"))

