"""`pgvdrill schedule` as an operator uses it: the files it writes are run as they would
be, the cron lines through /bin/sh against a running source (backups, off-site sync,
retention, the DR drill), the archive_command by the server itself."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from fixtures.cli import Cli
from fixtures.ops import conninfo
from fixtures.production import Production, assert_untouched, read_report
from fixtures.writes import Writer
from pgvdrill import osuser
from pgvdrill.cluster import Cluster
from pgvdrill.cluster.wal_commands import python_for
from pgvdrill.wal.archiving import make_archive_dir, switch_and_wait

ROOT = Path(__file__).parents[1]
JOBS = ["pgvdrill-backup-logical", "pgvdrill-backup-physical", "pgvdrill-retention",
        "pgvdrill-drill"]
CRONJOB = ROOT / "scripts" / "deploy" / "kubernetes" / "pgvdrill-monthly-drill.yaml"
UNITS = sorted(f"{job}.{kind}" for job in JOBS for kind in ("service", "timer"))


def cron_jobs(text: str) -> dict[str, str]:
    """The command of each job line of an /etc/cron.d file, by the lock it takes."""
    commands = [line.split(None, 6)[6] for line in text.splitlines()
                if line.strip() and not line.startswith("#") and not re.match(r"[A-Z_]+=", line)]
    return {re.search(r"/(pgvdrill-[a-z-]+)\.lock", c)[1]: c for c in commands}  # type: ignore[index]


def run_like_cron(text: str, command: str, stand_ins: Path, cache: Path
                  ) -> subprocess.CompletedProcess[str]:
    """/bin/sh -c COMMAND with the file's variables and cron's \\% unescaped; `stand_ins`
    first on PATH; the session's template cache as the default cache."""
    variables = dict(re.findall(r"^([A-Z_]+)=(.*)$", text, re.MULTILINE))
    env = {**variables, "PATH": f"{stand_ins}:{variables['PATH']}", "HOME": os.environ["HOME"],
           "XDG_CACHE_HOME": str(cache)}
    return subprocess.run([variables["SHELL"], "-c", command.replace("\\%", "%")], env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def drill_argv(out: Path) -> list[str]:
    """The drill's arguments as the generated systemd unit, cron line and the Kubernetes
    CronJob give them (the same, but for paths: the unit's are the ones returned)."""
    [exec_start] = [line.removeprefix("ExecStart=") for line in
                    (out / "pgvdrill-drill.service").read_text().splitlines()
                    if line.startswith("ExecStart=")]
    unit = shlex.split(exec_start.replace("%%", "%").replace("$$", "$"))[1:]
    cron = shlex.split(cron_jobs((out / "pgvdrill.cron").read_text())["pgvdrill-drill"]
                       .split(" && ", 1)[1].replace("\\%", "%"))
    assert cron[:3] == ["/usr/bin/flock", "-n", cron[2]]
    cron = cron[4:]  # after flock -n LOCK PGVDRILL
    [job] = [d for d in yaml.safe_load_all(CRONJOB.read_text()) if d["kind"] == "CronJob"]
    [container] = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    kubernetes = container["args"]

    def options(argv: list[str]) -> list[str]:
        return [a for a in argv if a.startswith("-") or a == "drill"]

    assert options(unit) == options(kubernetes) and options(cron) == options(unit)[:-1]
    assert "--take" in unit
    return unit


def test_the_scheduled_drill_passes_while_the_source_takes_writes(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        tmp_path: Path, cli_cache: Path) -> None:
    """The drill command the schedule ships, run by an operator against a source whose
    application commits rows (vectors, an identity-fed table) all along: both backups are
    taken and verified exactly, exit 0."""
    config = ops_config(drill={"reports_dir": str(tmp_path / "reports")})
    out = tmp_path / "schedule"
    written = pgvdrill_cli("schedule", "--config", config, "--output-dir", out)
    assert written.returncode == 0, written.stderr
    argv = drill_argv(out)
    argv[argv.index("--cache-dir") + 1] = str(cli_cache)  # the session's templates

    with Writer(conninfo(prod_source)) as writer:
        ran = pgvdrill_cli(*argv)

    assert ran.returncode == 0, f"{argv}\n{ran.stdout}\n{ran.stderr}"
    assert writer.commits > 10
    [report] = (tmp_path / "reports").glob("*/report.json")
    drills = json.loads(report.read_text())["drills"]
    assert sorted((d["kind"], d["ok"]) for d in drills) == [("logical", True),
                                                             ("physical", True)]
    assert "comparison point" in ran.stdout


def test_the_scheduled_drill_passes_against_a_production_stand_in(
        production: Production, pgvdrill_cli: Cli, tmp_path: Path, cli_cache: Path) -> None:
    """The same shipped command against a server pgvdrill did not build (its own OS user,
    configuration, least-privilege role, roles owning its tables), written to all along:
    exit 0, and production only read."""
    config = production.write_config(tmp_path, "pgpass")
    with config.open("a") as toml:
        toml.write(f'\n[drill]\nreports_dir = "{tmp_path / "reports"}"\n')
    out = tmp_path / "schedule"
    written = pgvdrill_cli("schedule", "--config", config, "--output-dir", out)
    assert written.returncode == 0, written.stderr
    argv = drill_argv(out)
    argv[argv.index("--cache-dir") + 1] = str(cli_cache)
    before = production.fingerprint()

    writer = production.writer()
    try:
        ran = pgvdrill_cli(*argv)
    finally:
        assert writer.stop() > 0

    assert ran.returncode == 0, f"{argv}\n{ran.stdout}\n{ran.stderr}"
    drills = read_report(tmp_path)["drills"]
    assert sorted((d["kind"], d["ok"]) for d in drills) == [("logical", True),
                                                             ("physical", True)]
    assert_untouched(before, production.fingerprint())


def test_the_written_cron_schedule_runs_the_runbook(
        prod_source: Cluster, ops_config: Callable[..., Path], pgvdrill_cli: Cli,
        tmp_path: Path, cli_cache: Path) -> None:
    config = ops_config(drill={"reports_dir": str(tmp_path / "reports")},
                        **{"sync.rsync": {"dest": str(tmp_path / "offsite")}})
    out, locks = tmp_path / "schedule", tmp_path / "locks"
    locks.mkdir()

    written = pgvdrill_cli("schedule", "--config", config, "--output-dir", out,
                           "--lock-dir", locks)

    assert written.returncode == 0, written.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([*UNITS, "pgvdrill.cron", "pgvdrill-archiving.conf"])
    assert sorted(written.stdout.splitlines()) == [f"wrote {out / n}" for n in names]
    service = (out / "pgvdrill-backup-logical.service").read_text()
    assert "Wants=network-online.target postgresql.service" in service  # 127.0.0.1

    # the jobs in the order of a first Sunday night: physical 01:00, logical 02:00,
    # cleanup 03:00, drill 04:00; `date` says it is the 1st for the drill's first-week test
    stand_ins = tmp_path / "stand-ins"
    stand_ins.mkdir()
    (stand_ins / "date").write_text("#!/bin/sh\necho 01\n")
    (stand_ins / "date").chmod(0o755)
    (tmp_path / "xdg").mkdir()
    (tmp_path / "xdg" / "pgvdrill").symlink_to(cli_cache)
    text = (out / "pgvdrill.cron").read_text()
    commands = cron_jobs(text)
    repo = tmp_path / "repo"
    for job in ["pgvdrill-backup-physical", "pgvdrill-backup-logical", "pgvdrill-retention",
                "pgvdrill-drill"]:
        if job == "pgvdrill-drill":
            entries = sorted(p.name for p in (repo / "catalog").glob("*.json"))
        ran = run_like_cron(text, commands[job], stand_ins, tmp_path / "xdg")
        assert ran.returncode == 0, f"{job}: {commands[job]}\n{ran.stdout}\n{ran.stderr}"

    assert [e.split("-")[0] for e in entries] == ["logical", "physical"]
    offsite = tmp_path / "offsite"
    assert sorted(p.name for p in (offsite / "catalog").glob("*.json")) == entries
    taken = sorted(p.name for p in (repo / "catalog").glob("*.json"))  # the drill's --take
    assert [e.split("-")[0] for e in taken] == ["logical"] * 2 + ["physical"] * 2
    [report] = (tmp_path / "reports").glob("*/report.json")
    drills = json.loads(report.read_text())["drills"]
    assert sorted((d["kind"], d["ok"]) for d in drills) == [("logical", True),
                                                             ("physical", True)]

    # scripts/deploy/many-databases: one drill per configuration, two xdist workers
    databases = tmp_path / "databases"
    databases.mkdir()
    for name in ("db-a", "db-b"):
        (databases / f"{name}.toml").write_text(config.read_text().replace(
            str(tmp_path / "reports"), str(tmp_path / "reports" / name)))
    parallel = subprocess.run(
        [sys.executable, "-m", "pytest", "scripts/deploy/many-databases", "-n", "2", "-q",
         "-p", "no:cacheprovider", "--pgvdrill-configs", str(databases)],
        cwd=ROOT, env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")},
        capture_output=True, text=True, timeout=600, check=False)
    assert parallel.returncode == 0, parallel.stdout + parallel.stderr
    assert "2 passed" in parallel.stdout
    for name in ("db-a", "db-b"):
        assert len(list((tmp_path / "reports" / name).glob("*/report.json"))) == 1

    again = pgvdrill_cli("schedule", "--config", config, "--output-dir", out,
                         "--lock-dir", locks)
    assert again.returncode == 0 and again.stdout.count("unchanged ") == len(names)
    edited = out / "pgvdrill-drill.timer"
    edited.write_text(edited.read_text().replace("04:00:00", "05:00:00"))
    refused = pgvdrill_cli("schedule", "--config", config, "--output-dir", out)
    assert refused.returncode == 2
    assert "already holds different pgvdrill-drill.timer" in refused.stderr
    assert "05:00:00" in edited.read_text()


@pytest.mark.local_server("the printed archive_command runs pgvdrill on the server's machine")
def test_the_servers_archive_command_stores_wal_in_the_repository(
        prod_source: Cluster, pgvdrill_cli: Cli, wal_workdir: Path, tmp_path: Path) -> None:
    user = osuser.server_user()
    repo = Path(tempfile.mkdtemp(prefix="repo-", dir=wal_workdir))
    repo.chmod(0o711)  # the server enters it to reach wal/
    make_archive_dir(repo / "wal", user)
    config = tmp_path / "pgvdrill.toml"
    config.write_text(f"[source]\nconninfo = {json.dumps(conninfo(prod_source))}\n"
                      f"[repository]\npath = {json.dumps(str(repo))}\n"
                      f"[drill]\nreports_dir = {json.dumps(str(tmp_path / 'reports'))}\n")
    python, package_root = python_for(user)

    result = pgvdrill_cli("schedule", "--config", config, "--format", "archiving",
                          "--python", python)

    assert result.returncode == 0, result.stderr
    # the standard-library variant, as the server's OS user can run it here (pgvdrill is
    # installed under /root): uncommented, the other one commented out
    settings = re.sub(r"^archive_command", "#archive_command", result.stdout,
                      flags=re.MULTILINE)
    settings = settings.replace("#archive_command = '" + python,
                                f"archive_command = 'PYTHONPATH={package_root} {python}")
    auto = prod_source.read_file("postgresql.auto.conf")
    prod_source.write_file("postgresql.auto.conf", auto + settings.encode())
    prod_source.stop()
    prod_source.start()

    [(mode, timeout, command)] = prod_source.query(
        "SELECT current_setting('archive_mode'), current_setting('archive_timeout'), "
        "current_setting('archive_command')")
    assert (mode, timeout) == ("on", "1min")
    assert command == (f"PYTHONPATH={package_root} {python} -m pgvdrill.wal.walcmd "
                       f"archive-wal %p %f --dest {repo}/wal")
    segment = switch_and_wait(prod_source, repo / "wal")
    assert (repo / "wal" / segment).stat().st_size == 16 * 2**20
