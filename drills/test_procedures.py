"""Drilling procedures as an operator runs it: `pgvdrill procedures` in a subprocess, the
runbook pack's verdict per step as observed on the session's server, and a team's own
[[procedure]] templates, one that works and one that loses data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import Cli
from fixtures.options import DrillOptions

pytestmark = pytest.mark.local_server("procedures are shell commands run on this machine")

# (procedure, step): the verdict, and text its reason must hold. Observed on PostgreSQL 18.
RUNBOOK = {
    ("pg_dump", "full -F c -Z 9"): ("works", "every data block readable"),
    ("pg_dump", "one table -t documents"): ("fails", 'type "public.vector" does not exist'),
    ("pg_dump", "three tables -t -t -t"): ("fails", 'type "public.vector" does not exist'),
    ("pg_dump", "pattern -t 'documents*'"): ("fails", 'type "public.vector" does not exist'),
    ("pg_dump", "--data-only"): ("works", "exactly the objects of --data-only"),
    ("pg_dump", "--schema-only"): ("works", "exactly the objects of --schema-only"),
    ("pg_dump", "one schema -n public"): ("fails", 'schema "public" already exists'),
    ("pg_restore", "--clean --if-exists (overwrite)"): ("works", "equal to the source"),
    ("pg_restore", "without --clean (no overwrite)"): ("works", "equal to the source"),
    ("pg_restore", "--schema-only"): ("works", "5 empty tables"),
    ("pg_restore", "--data-only"): ("fails", "an IVFFlat index built before its data"),
    ("pg_restore", "-t documents"): ("fails", "index public.documents_embedding_hnsw_cos on "
                                              "public.documents is missing in the target"),
    ("pg_restore", "-j 4 (parallel)"): ("works", "equal to the source"),
    ("restore_test.sh", "on the full dump"): ("works", "each equal to the source's exact"),
    ("restore_test.sh", "on a damaged copy of it"): ("unsafe", "exits 0 on a damaged dump"),
    ("BackupManager", "full_backup()"): ("works", "the whole database"),
    ("BackupManager", "password through PGPASSWORD"): ("unsafe", "holds PGPASSWORD"),
    ("BackupManager", "verify_backup() of a damaged dump"): (
        "unsafe", "accepts a dump whose data cannot be read"),
    ("BackupManager", "cleanup_old_backups(days=7)"): ("unsafe", "deleted the only backup"),
    ("BackupManager", "cleanup_old_wal(days=3)"): (
        "unsafe", "segments the 5-day-old base backup needs"),
    ("archiving", "archive_command test ! -f && cp"): ("unsafe", "fails on every retry"),
    ("archiving", "archive_wal.sh %p %f (copy fails)"): (
        "unsafe", "in neither pg_wal nor the archive"),
    ("pg_basebackup", "pg_basebackup -Ft -z -P -v"): ("works", "WAL is in pg_wal.tar.gz"),
    ("pg_basebackup", "pg_basebackup -Ft -z -P -v -X stream"): ("works", "pg_verifybackup"),
    ("pg_basebackup", "low-level pg_start_backup('label')"): (
        "fails", "function pg_start_backup(unknown) does not exist"),
    ("pitr", "extract base.tar.gz into the emptied PGDATA"): ("works", "backup_label"),
    ("pitr", "restore_command, recovery_target_*, recovery.signal"): (
        "works", "the rows committed after it absent"),
    ("pitr", "extract again, for recovery.conf"): ("works", "backup_label"),
    ("pitr", "recovery.conf instead of recovery.signal"): (
        "fails", 'using recovery command file "recovery.conf" is not supported'),
    ("pitr", "cat > postgresql.conf"): ("unsafe", "include_if_exists"),
}


def _backend(options: DrillOptions, cache: Path) -> list[str]:
    """The session's template cache, dataset size and workdir, as command options
    (pgvdrill_cli adds the session's backend)."""
    args = ["--cache-dir", str(cache), "--rows", str(options.rows), "--dim", str(options.dim)]
    if options.workdir is not None:
        args += ["--workdir", str(options.workdir)]
    return args


def _report(tmp_path: Path) -> dict[str, Any]:
    (path,) = (tmp_path / "reports").glob("*/report.json")
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def _config(tmp_path: Path, *procedures: dict[str, str]) -> Path:
    """A configuration with no [source]: only a repository and the procedures."""
    lines = ["[repository]", f'path = "{tmp_path / "repo"}"', ""]
    for proc in procedures:
        lines += ["[[procedure]]", *(f"{k} = {json.dumps(v)}" for k, v in proc.items()), ""]
    path = tmp_path / "pgvdrill.toml"
    path.write_text("\n".join(lines))
    return path


def test_runbook_pack_verdict_per_step(pgvdrill_cli: Cli, cli_cache: Path,
                                       options: DrillOptions, tmp_path: Path) -> None:
    result = pgvdrill_cli("procedures", "--pack", "runbook", "--reports-dir", "reports",
                          *_backend(options, cli_cache))

    assert result.returncode == 0, result.stdout + result.stderr  # findings are no error
    steps = _report(tmp_path)["procedures"]
    observed = {(s["procedure"], s["step"]): s for s in steps}
    assert list(observed) == list(RUNBOOK)
    wrong = [f"{key}: {observed[key]['verdict']}: {observed[key]['why']}"
             for key, (verdict, why) in RUNBOOK.items()
             if observed[key]["verdict"] != verdict or why not in observed[key]["why"]]
    assert not wrong, "\n".join(wrong)
    assert all(s["pack"] == "runbook" and s["command"] and s["seconds"] >= 0 for s in steps)
    for step in steps:  # one line per step on stdout
        assert f"[runbook] {step['procedure']}: {step['step']}: {step['verdict']}: " \
               in result.stdout
    assert "-U postgres -d vector_db -F c -Z 9 -f" in observed[("pg_dump", "full -F c -Z 9")][
        "command"]
    markdown = next((tmp_path / "reports").glob("*/report.md")).read_text()
    assert "## Procedures" in markdown and "| runbook | pitr | cat > postgresql.conf | " \
                                          "**unsafe** |" in markdown
    assert 'id="procedure-steps"' in next((tmp_path / "reports").glob("*/report.html")
                                           ).read_text()


def test_runbook_findings_fail_the_run_when_asked(pgvdrill_cli: Cli, cli_cache: Path,
                                                  options: DrillOptions,
                                                  tmp_path: Path) -> None:
    result = pgvdrill_cli("procedures", "--pack", "runbook", "--only", "pg_basebackup",
                          "--fail-on-findings", "--reports-dir", "reports",
                          *_backend(options, cli_cache))

    assert result.returncode == 1, result.stdout + result.stderr
    steps = {s["step"]: s["verdict"] for s in _report(tmp_path)["procedures"]}
    assert steps == {"pg_basebackup -Ft -z -P -v": "works",
                     "pg_basebackup -Ft -z -P -v -X stream": "works",
                     "low-level pg_start_backup('label')": "fails"}
    assert "FAILED" in result.stdout and _report(tmp_path)["ok"] is False


WORKS = {"name": "nightly dump", "kind": "logical",
         "backup": "pg_dump --format=custom --file={backup} {dsn}",
         "restore": "pg_restore --dbname={target_dsn} --jobs=2 {backup}"}
LOSES_INDEXES = {"name": "restore without post-data", "kind": "logical",
                 "backup": "pg_dump --format=custom --file={backup} {dsn}",
                 "restore": "pg_restore --dbname={target_dsn} --section=pre-data "
                            "--section=data {backup}"}
PITR = {"name": "base backup and archive", "kind": "physical",
        "archive_command": "test ! -f {wal_dir}/%f && cp %p {wal_dir}/%f",
        "restore_command": "cp {wal_dir}/%f %p",
        "backup": "pg_basebackup -d {dsn} -D {backup} -Ft -X stream --checkpoint=fast",
        "restore": "tar -xf {backup}/base.tar -C {pgdata}"}


def test_own_procedures_work_or_fail_with_why(pgvdrill_cli: Cli, cli_cache: Path,
                                              options: DrillOptions, tmp_path: Path) -> None:
    config = _config(tmp_path, WORKS, LOSES_INDEXES, PITR)

    result = pgvdrill_cli("procedures", "--config", config, "--reports-dir", "reports",
                          *_backend(options, cli_cache))

    assert result.returncode == 1, result.stdout + result.stderr  # one procedure is broken
    steps = {(s["procedure"], s["step"]): s for s in _report(tmp_path)["procedures"]}
    verdicts = {key: s["verdict"] for key, s in steps.items()}
    assert verdicts == {
        ("nightly dump", "backup"): "works", ("nightly dump", "restore"): "works",
        ("restore without post-data", "backup"): "works",
        ("restore without post-data", "restore"): "fails",
        ("base backup and archive", "backup"): "works",
        ("base backup and archive", "archive_command"): "works",
        ("base backup and archive", "restore"): "works",
        ("base backup and archive", "restore_command"): "works"}
    broken = steps[("restore without post-data", "restore")]
    assert broken["why"].startswith("schema: index ") and broken["why"].endswith(" more)")
    assert "schema: index public.documents_embedding_hnsw_cos on public.documents is missing " \
           "in the target" in broken["problems"]
    assert "recovered to" in steps[("base backup and archive", "restore_command")]["why"]
    assert all(s["pack"] == "config" for s in steps.values())
    assert "--jobs=2" in steps[("nightly dump", "restore")]["command"]

    only = pgvdrill_cli("procedures", "--config", config, "--only", "nightly dump",
                        "--reports-dir", "only", *_backend(options, cli_cache))
    assert only.returncode == 0, only.stdout + only.stderr


@pytest.mark.parametrize(("restore", "says"), [
    ("pg_restore --dbname='{target_dsn}' {backup}", "stands inside 'quotes'"),
    ("pg_restore --dbname={target} {backup}", "unknown placeholder {target}"),
    ("pg_restore --dbname={target_dsn} /backups/latest.dump", "does not use backup"),
])
def test_bad_templates_are_refused_before_anything_runs(
        pgvdrill_cli: Cli, tmp_path: Path, restore: str, says: str) -> None:
    config = _config(tmp_path, {**WORKS, "restore": restore})

    result = pgvdrill_cli("procedures", "--config", config)

    assert result.returncode == 2, result.stdout + result.stderr
    assert says in result.stderr and "[[procedure]] 'nightly dump'" in result.stderr
    assert not (tmp_path / "reports").exists()
