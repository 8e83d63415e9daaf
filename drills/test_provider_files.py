"""The DR drill of a team's own backup files through the `files` provider, as an operator
runs it (`pgvdrill dr-drill --config` with only [source] and [provider.cron]): the
runbook's BackupManager wrote /backup/postgres/full_backup_<ts>.dump (pg_dump -F c -Z 9)
and physical_backup_<ts>/ (pg_basebackup -Ft -z -X stream) from the production stand-in,
whose archive is the WAL; each is drilled against its live source, which is only read."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import Cli
from fixtures.ops import _toml
from fixtures.production import Production, assert_untouched, check_results, read_report
from fixtures.provider_command import documents_file
from pgvdrill.backends import default_workdir
from pgvdrill.proc import runner

# the module's stand-in and tool set-up are built once, on one worker (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("provider-files")


@dataclass(frozen=True)
class Cron:
    """/backup/postgres as BackupManager leaves it: the dump, a good tar base backup and a
    plain one (older) with documents' first data file removed."""

    root: Path
    production: Production
    dump: str
    base: str
    broken: str

    def config(self, directory: Path) -> Path:
        conninfo, _ = self.production.conninfo("pgpass")
        path = directory / "pgvdrill.toml"
        path.write_text(
            f"[source]\nconninfo = {_toml(conninfo)}\n\n[provider.cron]\ntype = \"files\"\n"
            f"dumps = {_toml(str(self.root / 'full_backup_*.dump'))}\n"
            f"base_backups = {_toml(str(self.root / 'physical_backup_*'))}\n"
            f"wal = {_toml(str(self.production.repository / 'wal'))}\n")
        return path


def _stamp(when: datetime) -> str:
    return when.astimezone().strftime("%Y%m%d_%H%M%S")  # BackupManager's local time


@pytest.fixture(scope="module")
def cron(production: Production) -> Iterator[Cron]:
    root = Path(tempfile.mkdtemp(prefix="backup-postgres-", dir=default_workdir()))
    conninfo, _ = production.conninfo("pgpass")
    tool = production.installation.tool
    now = datetime.now(UTC)
    dump = f"full_backup_{_stamp(now)}.dump"
    base = f"physical_backup_{_stamp(now)}"
    broken = f"physical_backup_{_stamp(now - timedelta(hours=1))}"
    try:
        runner.run([tool("pg_dump"), "-d", conninfo, "-F", "c", "-Z", "9", "-f", root / dump],
                   timeout=600)
        runner.run([tool("pg_basebackup"), "-d", conninfo, "-D", root / base, "-Ft", "-z",
                    "-X", "stream", "-c", "fast", "--no-sync"], timeout=600)
        runner.run([tool("pg_basebackup"), "-d", conninfo, "-D", root / broken, "-Fp",
                    "-X", "stream", "-c", "fast", "--no-sync"], timeout=600)
        (root / broken / documents_file(production)).unlink()
        production.quiesce()
        yield Cron(root, production, dump, base, broken)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(cli: Cli, cli_cache: Path, tmp_path: Path, config: Path, *args: str
         ) -> tuple[int, str, dict[str, Any]]:
    result = cli("dr-drill", "--config", config, "--cache-dir", cli_cache, "--reports-dir",
                 "reports", "--provider", "cron", *args)
    output = result.stdout + result.stderr
    assert list(tmp_path.glob("reports/*/report.json")), output
    return result.returncode, output, read_report(tmp_path)


def _problems(drill: dict[str, Any]) -> str:
    return "\n".join([drill.get("error") or "", *(drill.get("problems") or [])])


@pytest.mark.parametrize("which", ["dump", "base"])
def test_a_good_backup_passes_against_its_live_source(
        which: str, cron: Cron, production: Production, pgvdrill_cli: Cli, cli_cache: Path,
        tmp_path: Path) -> None:
    backup_id = getattr(cron, which)
    before = production.fingerprint()
    cron_before = sorted((p.relative_to(cron.root), p.stat().st_size, p.stat().st_mtime)
                         for p in cron.root.rglob("*"))

    code, output, report = _run(pgvdrill_cli, cli_cache, tmp_path, cron.config(tmp_path),
                                "--backup", backup_id)

    assert code == 0, output
    (drill,) = report["drills"]
    assert drill["drill"] == f"provider:cron:{backup_id}" and drill["ok"] is True, \
        _problems(drill)
    assert drill["backup"]["tool_verify"]["status"] == "pass"
    assert all(check_results(drill).values()), check_results(drill)
    (provider,) = report["provider"]
    assert (provider["name"], provider["type"]) == ("cron", "files")
    assert all(c["status"] != "fail" for c in provider["checks"]), provider["checks"]
    markdown = next(tmp_path.glob("reports/*/report.md")).read_text()
    assert "- Provider: cron (files): files (read with PostgreSQL" in markdown
    assert_untouched(before, production.fingerprint())
    assert cron_before == sorted((p.relative_to(cron.root), p.stat().st_size,
                                  p.stat().st_mtime) for p in cron.root.rglob("*"))


def test_a_truncated_dump_fails_naming_it(cron: Cron, pgvdrill_cli: Cli, cli_cache: Path,
                                          tmp_path: Path) -> None:
    copy = tmp_path / "backup-postgres"
    copy.mkdir()
    data = (cron.root / cron.dump).read_bytes()
    (copy / cron.dump).write_bytes(data[:len(data) // 2])
    config = cron.config(tmp_path)
    dumps = str(cron.root / "full_backup_*.dump")
    config.write_text(config.read_text().replace(dumps, str(copy / "full_backup_*.dump")))

    code, output, report = _run(pgvdrill_cli, cli_cache, tmp_path, config,
                                "--backup", cron.dump)

    assert code == 1, output
    (drill,) = report["drills"]
    assert drill["drill"] == f"provider:cron:{cron.dump}" and drill["ok"] is False
    assert cron.dump in _problems(drill), _problems(drill)
    assert "could not read from input file: end of file" in _problems(drill)


def test_a_base_backup_with_a_file_removed_fails_naming_it(
        cron: Cron, production: Production, pgvdrill_cli: Cli, cli_cache: Path,
        tmp_path: Path) -> None:
    code, output, report = _run(pgvdrill_cli, cli_cache, tmp_path, cron.config(tmp_path),
                                "--backup", cron.broken)

    assert code == 1, output
    (drill,) = report["drills"]
    assert drill["drill"] == f"provider:cron:{cron.broken}" and drill["ok"] is False
    assert documents_file(production) in _problems(drill), _problems(drill)


def test_a_pgvdrill_repository_copy_passes_and_is_only_read(
        production: Production, pgvdrill_cli: Cli, cli_cache: Path, tmp_path: Path) -> None:
    """An off-site copy of a pgvdrill repository (`pgvdrill backup physical`, then the
    archive copied beside it) drilled through the `pgvdrill` provider."""
    conninfo, _ = production.conninfo("pgpass")
    offsite = tmp_path / "offsite"
    taking = tmp_path / "take.toml"
    taking.write_text(f"[source]\nconninfo = {_toml(conninfo)}\n\n[repository]\n"
                      f"path = {_toml(str(offsite))}\n")
    taken = pgvdrill_cli("backup", "physical", "--config", taking)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    production.quiesce()
    for segment in (production.repository / "wal").iterdir():
        shutil.copy(segment, offsite / "wal" / segment.name)
    config = tmp_path / "pgvdrill.toml"
    config.write_text(f"[source]\nconninfo = {_toml(conninfo)}\n\n[provider.offsite]\n"
                      f"type = \"pgvdrill\"\nrepository = {_toml(str(offsite))}\n")
    before = production.fingerprint()
    repo_before = sorted((str(p.relative_to(offsite)), p.stat().st_size, p.stat().st_mtime)
                         for p in offsite.rglob("*"))

    result = pgvdrill_cli("dr-drill", "--config", config, "--cache-dir", cli_cache,
                          "--reports-dir", "reports")

    assert result.returncode == 0, result.stdout + result.stderr
    (drill,) = read_report(tmp_path)["drills"]
    assert drill["ok"] is True and drill["backup"]["provider"] == "offsite", _problems(drill)
    assert drill["backup"]["tool_verify"]["status"] == "pass"
    assert drill["restore"]["wal"]["segments"] >= 1
    assert_untouched(before, production.fingerprint())
    assert repo_before == sorted((str(p.relative_to(offsite)), p.stat().st_size,
                                  p.stat().st_mtime) for p in offsite.rglob("*"))
