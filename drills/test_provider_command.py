"""The DR drill of a team's own backups through the `command` provider, as an operator
runs it (`pgvdrill dr-drill --config` with only [source] and [provider.team]): pg_basebackup
copies and production's archive read by cp templates; production is only read."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import Cli
from fixtures.production import Production, assert_untouched, check_results, read_report
from fixtures.provider_command import TeamBackups, documents_file

# the module's stand-in and tool set-up are built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("provider-command")


def _run(cli: Cli, cli_cache: Path, tmp_path: Path, config: Path, *args: str
         ) -> tuple[int, str, dict[str, Any]]:
    result = cli("dr-drill", "--config", config, "--cache-dir", cli_cache, "--reports-dir",
                 "reports", *args)
    output = result.stdout + result.stderr
    assert list(tmp_path.glob("reports/*/report.json")), output
    return result.returncode, output, read_report(tmp_path)


def _problems(drill: dict[str, Any]) -> str:
    return "\n".join([drill.get("error") or "", *(drill.get("problems") or [])])


def test_a_good_backup_passes_and_production_is_only_read(
        team_backups: TeamBackups, production: Production, pgvdrill_cli: Cli,
        cli_cache: Path, tmp_path: Path) -> None:
    production.quiesce()
    config = team_backups.config(tmp_path)
    before = production.fingerprint()

    code, output, report = _run(pgvdrill_cli, cli_cache, tmp_path, config)

    assert code == 0, output
    (drill,) = report["drills"]
    assert drill["drill"] == "provider:team:good" and drill["ok"] is True, _problems(drill)
    assert drill["backup"]["provider"] == "team"
    assert drill["backup"]["tool_verify"]["status"] == "pass"
    assert all(check_results(drill).values()), check_results(drill)
    assert drill["restore"]["wal"]["segments"] >= 1
    assert {v["name"]: v["status"] for v in drill["verdicts"]}["backup_age.physical"] == "pass"
    (provider,) = report["provider"]
    assert (provider["name"], provider["type"]) == ("team", "command")
    assert [c["status"] for c in provider["checks"]] == ["pass"]
    assert_untouched(before, production.fingerprint())


def test_a_base_backup_without_a_file_fails_naming_it(
        team_backups: TeamBackups, production: Production, pgvdrill_cli: Cli,
        cli_cache: Path, tmp_path: Path) -> None:
    production.quiesce()
    config = team_backups.config(tmp_path)

    code, output, report = _run(pgvdrill_cli, cli_cache, tmp_path, config,
                                "--provider", "team", "--backup", "broken")

    assert code == 1, output
    (drill,) = report["drills"]
    assert drill["drill"] == "provider:team:broken" and drill["ok"] is False
    assert documents_file(production) in _problems(drill)


def test_a_wal_segment_missing_from_the_archive_fails_naming_it(
        team_backups: TeamBackups, production: Production, pgvdrill_cli: Cli,
        cli_cache: Path, tmp_path: Path) -> None:
    """Three segments of writes after the backup; the middle one gone from the team's copy
    of the archive: recovery would stop there, short of what the source archived."""
    production.admin("CREATE TABLE IF NOT EXISTS public.after_backup (x int)")
    segments = []
    for _ in range(3):
        production.admin("INSERT INTO public.after_backup VALUES (1)")
        segments.append(production.quiesce())
    archive = tmp_path / "archive"
    shutil.copytree(production.repository / "wal", archive)
    (archive / segments[1]).unlink()
    config = team_backups.config(tmp_path, archive=archive)

    code, output, report = _run(pgvdrill_cli, cli_cache, tmp_path, config)

    assert code == 1, output
    (drill,) = report["drills"]
    assert drill["ok"] is False
    assert f"WAL segment {segments[1]} is missing" in _problems(drill), _problems(drill)


def test_a_pitr_target_time_stops_at_the_target(
        team_backups: TeamBackups, production: Production, pgvdrill_cli: Cli,
        cli_cache: Path, tmp_path: Path) -> None:
    production.admin("CREATE TABLE IF NOT EXISTS public.pitr_marks (x int)")
    production.admin("INSERT INTO public.pitr_marks VALUES (1)")
    (target,) = production.admin("SELECT clock_timestamp()::text")[0]
    production.admin("INSERT INTO public.pitr_marks VALUES (2)")
    production.quiesce()
    config = team_backups.config(tmp_path)
    before = production.fingerprint()

    code, output, report = _run(pgvdrill_cli, cli_cache, tmp_path, config,
                                "--provider", "team", "--target-time", str(target))

    assert code == 0, output
    (drill,) = report["drills"]
    assert drill["ok"] is True, _problems(drill)
    checks = {c["name"]: c for c in drill["verification"]["checks"]}
    assert "recovery stopping before commit" in checks["recovery_target"]["details"]["log"]
    assert "not compared" in checks["content"]["unknown"]
    assert drill["restore"]["recovery"]["target"]["kind"] == "time"
    assert_untouched(before, production.fingerprint())


def test_a_target_beyond_the_archive_fails(
        team_backups: TeamBackups, production: Production, pgvdrill_cli: Cli,
        cli_cache: Path, tmp_path: Path) -> None:
    """The deprecated `pgvdrill drill --config` runs the same drill."""
    production.quiesce()
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    result = pgvdrill_cli("drill", "--config", team_backups.config(tmp_path), "--cache-dir",
                          cli_cache, "--reports-dir", "reports", "--provider", "team",
                          "--target-time", later)

    assert result.returncode == 1, result.stdout + result.stderr
    (drill,) = read_report(tmp_path)["drills"]
    assert drill["ok"] is False
    assert "the archive's WAL ends before the target" in _problems(drill), _problems(drill)


def _dumps(team_backups: TeamBackups, tmp_path: Path, **keys: str) -> Path:
    """The config with a second provider, `dumps`: kind = logical, the restore hands over
    one dump, no list (the newest is `latest`)."""
    config = team_backups.config(tmp_path)
    section = {"type": "command", "kind": "logical",
               "restore": f"cp {team_backups.dump()} {{datadir}}/", **keys}
    with config.open("a") as toml:
        toml.write("\n[provider.dumps]\n" + "".join(f"{k} = {json.dumps(v)}\n"
                                                     for k, v in section.items()))
    return config


def test_a_logical_backup_is_restored_and_compared(
        team_backups: TeamBackups, production: Production, pgvdrill_cli: Cli,
        cli_cache: Path, tmp_path: Path) -> None:
    production.quiesce()
    config = _dumps(team_backups, tmp_path)

    code, output, report = _run(pgvdrill_cli, cli_cache, tmp_path, config,
                                "--provider", "dumps")

    assert code == 0, output
    (drill,) = report["drills"]
    assert (drill["drill"], drill["kind"], drill["ok"]) == \
        ("provider:dumps:latest", "logical", True), _problems(drill)
    assert all(check_results(drill).values()), check_results(drill)
    assert drill["backup"]["tool_verify"]["status"] == "unknown"
    assert {v["name"]: v["status"] for v in drill["verdicts"]}["backup_age.logical"] == \
        "unknown"


def test_the_tools_own_failed_check_fails_a_drill_that_verified(
        team_backups: TeamBackups, production: Production, pgvdrill_cli: Cli,
        cli_cache: Path, tmp_path: Path) -> None:
    production.quiesce()
    config = _dumps(team_backups, tmp_path, check="echo 'last dump 3 days old' >&2; exit 2")

    code, output, report = _run(pgvdrill_cli, cli_cache, tmp_path, config,
                                "--provider", "dumps")

    assert code == 1, output
    (drill,) = report["drills"]
    assert drill["ok"] is False and all(check_results(drill).values())
    assert "check (the tool's own check) failed: exit 2; last dump 3 days old" in \
        _problems(drill), _problems(drill)
    assert [c["status"] for c in report["provider"][0]["checks"]] == ["fail"]
