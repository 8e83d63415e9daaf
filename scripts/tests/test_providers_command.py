"""`pgvdrill providers` on real backups: a files provider (a BackupManager directory) and a
pgvdrill provider (a real repository) judged without a restore: their backups, the newest
ones' age against the targets, --check running their checks and verifications; the exit
code and the JSON document's keys."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fixtures.ops import ArchivedRepo
from fixtures.provider_files import backup_manager_dir
from pgvdrill.cli.main import main
from pgvdrill.policy.fail_on import TARGETS_MISSED


@pytest.fixture
def config(archived_repo: ArchivedRepo, tmp_path: Path) -> Path:
    root = backup_manager_dir(archived_repo, tmp_path / "backup", now=True)
    path = tmp_path / "pgvdrill.toml"
    path.write_text(f'[provider.cron]\ntype = "files"\ndumps = "{root}/full_backup_*.dump"\n'
                    f'base_backups = "{root}/physical_backup_*"\nwal = "{root}/wal"\n\n'
                    f'[provider.offsite]\ntype = "pgvdrill"\nrepository = "{archived_repo.repo}"\n')
    path.chmod(0o600)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_healthy_providers_pass_with_their_checks(config: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "providers", "--config", config, "--check", "--json")

    doc = json.loads(out)
    assert code == 0 and doc["ok"] is True and doc["exit_code"] == 0
    assert doc["schema"] == "pgvdrill.providers/1" and doc["checked"] is True
    cron, offsite = doc["providers"]
    assert (cron["name"], cron["type"], offsite["type"]) == ("cron", "files", "pgvdrill")
    assert [b["kind"] for b in cron["backups"]] == ["logical", "physical"]
    assert set(cron["backups"][0]) >= {"id", "kind", "finished", "size_bytes", "age_seconds"}
    assert cron["newest"]["logical"]["status"] == "pass"
    assert {c["name"] for c in cron["checks"]} >= {"pg_restore", "pg_verifybackup"}
    assert all(c["status"] == "pass" for p in (cron, offsite) for c in p["checks"])
    assert offsite["version"].startswith("pgvdrill ")


def test_a_backup_older_than_its_target_fails_the_age(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text("[backup_age]\nlogical = 0.001\n")
    targets.chmod(0o600)

    code, out, _ = run(capsys, "providers", "--config", config, "--targets", targets)

    assert code == TARGETS_MISSED
    assert "problem: cron: the newest logical backup full_backup_" in out
    assert "over the target" in out and "(tool checks not run: pass --check)" in out


def test_a_truncated_dump_fails_the_check_naming_it(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump = next((tmp_path / "backup").glob("full_backup_*.dump"))
    with dump.open("r+b") as handle:
        handle.truncate(dump.stat().st_size // 2)

    assert run(capsys, "providers", "--config", config, "cron")[0] == 0  # listed, unread
    code, out, _ = run(capsys, "providers", "--config", config, "cron", "--check")

    assert code == 4
    assert "problem: cron: pg_restore failed: " in out and dump.name in out


def test_a_provider_that_cannot_list_is_named_and_the_others_judged(
        config: Path, archived_repo: ArchivedRepo, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(archived_repo.repo, copy)
    (copy / "catalog" / "logical-20990101T000000Z.json").write_text("{not json")
    config.write_text(config.read_text().replace(str(archived_repo.repo), str(copy)))

    code, out, _ = run(capsys, "providers", "--config", config, "--json")

    doc = json.loads(out)
    assert code == 4 and doc["ok"] is False
    assert doc["providers"][0]["ok"] is True
    assert "unreadable" in doc["providers"][1]["problems"][0]


def test_no_provider_configured_is_a_configuration_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "pgvdrill.toml"
    config.write_text('[repository]\npath = "/backup/pgvdrill"\n')
    config.chmod(0o600)

    code, _, err = run(capsys, "providers", "--config", config)

    assert code == 2 and "no [provider.NAME] section" in err
