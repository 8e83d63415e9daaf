"""pgvdrill schedule: the generated units, cron lines and archive_command (no server).

The committed copies under scripts/deploy/ must equal what the command writes for
pgvdrill.example.toml; the cron lines are parsed field by field and run through /bin/sh as
cron would (with a stand-in pgvdrill that records its arguments); systemd-analyze checks
the units and computes the timers' next runs, which must equal the cron lines'.
"""

from __future__ import annotations

import configparser
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fixtures.segments import segment_bytes
from pgvdrill.cli.main import main
from pgvdrill.config import load_config
from pgvdrill.errors import ConfigError
from pgvdrill.ops.schedule import ARCHIVING_FILE, CRON_FILE, Install, files, write_files

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "pgvdrill.example.toml"
DEPLOY = ROOT / "scripts" / "deploy"
# how scripts/deploy/{systemd,cron,postgresql} were generated (see scripts/deploy/README.md)
DEPLOY_ARGS = ["--config", str(EXAMPLE), "--installed-config", "/etc/pgvdrill/pgvdrill.toml",
               "--bin", "/opt/pgvdrill/bin/pgvdrill", "--python", "/opt/pgvdrill/bin/python3"]
DEPLOY_DIRS = {"systemd": "systemd", "cron": "cron", "archiving": "postgresql"}
EXAMPLE_INSTALL = Install(Path("/opt/pgvdrill/bin/pgvdrill"), Path("/opt/pgvdrill/bin/python3"),
                          Path("/etc/pgvdrill/pgvdrill.toml"), "postgres", Path("/run/lock"))
SCHEDULE = {  # the runbook's times; the drill: first Sunday of the month
    "pgvdrill-backup-logical": ("*-*-* 02:00:00", "0 2 * * *"),
    "pgvdrill-backup-physical": ("Sun *-*-* 01:00:00", "0 1 * * 0"),
    "pgvdrill-retention": ("*-*-* 03:00:00", "0 3 * * *"),
    "pgvdrill-drill": ("Sun *-*-01..07 04:00:00", "0 4 * * 0"),
}
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
PGVDRILL = Path(sys.executable).parent / "pgvdrill"  # what --bin defaults to


def config_file(tmp_path: Path, extra: str = "", *, host: str = "db1.example.internal",
                reports: str | None = "reports", source: bool = True) -> Path:
    path = tmp_path / "pgvdrill.toml"
    text = f"[repository]\npath = {json.dumps(str(tmp_path / 'repo'))}\n"
    if source:
        text += f'[source]\nconninfo = "host={host} dbname=vector_db user=backup"\n'
    if reports is not None:
        text += f"[drill]\nreports_dir = {json.dumps(str(tmp_path / reports))}\n"
    path.write_text(text + extra)
    return path


def generate(config: Path, install: Install = EXAMPLE_INSTALL,
             formats: tuple[str, ...] = ("systemd", "cron", "archiving")) -> dict[str, str]:
    return files(load_config(config), install, list(formats))


def unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       comment_prefixes=("#",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


# --- the committed copies ---------------------------------------------------------------

@pytest.mark.parametrize("fmt", DEPLOY_DIRS)
def test_committed_deploy_files_are_what_the_command_writes(tmp_path: Path, fmt: str,
                                                            capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    assert main(["schedule", *DEPLOY_ARGS, "--format", fmt, "--output-dir",
                 str(tmp_path)]) == 0
    capsys.readouterr()
    committed = DEPLOY / DEPLOY_DIRS[fmt]
    generated = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert sorted(generated) == sorted(p.name for p in committed.iterdir()), \
        f"{committed} lists other files than pgvdrill schedule writes"
    for name, text in generated.items():
        assert (committed / name).read_text() == text, \
            f"{committed / name} differs from pgvdrill schedule's output: regenerate it " \
            f"(scripts/deploy/README.md)"


# --- systemd ------------------------------------------------------------------------------

def test_each_timer_starts_its_service_at_the_runbooks_time(tmp_path: Path) -> None:
    units = generate(config_file(tmp_path), formats=("systemd",))
    assert sorted(units) == sorted(f"{job}.{kind}" for job in SCHEDULE
                                   for kind in ("service", "timer"))
    for job, (calendar, _) in SCHEDULE.items():
        timer = unit(units[f"{job}.timer"])
        assert timer["Timer"]["OnCalendar"] == calendar
        assert timer["Timer"]["Unit"] == f"{job}.service" and f"{job}.service" in units
        assert timer["Timer"]["Persistent"] == "true"
        assert timer["Install"]["WantedBy"] == "timers.target"
        service = unit(units[f"{job}.service"])["Service"]
        assert service["Type"] == "oneshot" and service["User"] == "postgres"
        assert service["Environment"] == "PGVDRILL_CONFIG=/etc/pgvdrill/pgvdrill.toml"
        for setting, value in [("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"),
                               ("ProtectSystem", "strict"), ("UMask", "0077")]:
            assert service[setting] == value, f"{job}: {setting}"
        assert "password" not in units[f"{job}.service"].split("# No secrets")[0].lower()


def test_services_run_the_runbooks_commands_in_their_sandboxes(tmp_path: Path) -> None:
    units = generate(config_file(tmp_path, '[sync.s3]\nbucket = "b"\n'), formats=("systemd",))
    bin_ = "/opt/pgvdrill/bin/pgvdrill"
    expected = {"pgvdrill-backup-logical": "backup logical",
                "pgvdrill-backup-physical": "backup physical",
                "pgvdrill-retention": "retention",
                "pgvdrill-drill": "dr-drill --config /etc/pgvdrill/pgvdrill.toml --take "
                                  "--workdir /var/tmp --cache-dir /var/cache/pgvdrill-drill"}
    for job, command in expected.items():
        parsed = unit(units[f"{job}.service"])
        service = parsed["Service"]
        assert service["ExecStart"] == f"{bin_} {command}"
        backup = job.startswith("pgvdrill-backup")
        assert service.get("ExecStartPost") == (f"{bin_} sync" if backup else None)
        assert ("Nice" in service) == backup and ("IOSchedulingClass" in service) == backup
        writes = f"{tmp_path / 'reports'} {tmp_path / 'repo'}" if job == "pgvdrill-drill" \
            else str(tmp_path / "repo")  # the drill takes its own backups
        assert service["ReadWritePaths"] == writes
        assert ("postgresql.service" in parsed["Unit"]["After"]) == backup
        assert "postgresql.service" not in parsed["Unit"]["Wants"]  # db1 is another host


def test_a_local_source_pulls_in_postgresql_and_without_targets_no_sync(tmp_path: Path
                                                                         ) -> None:
    units = generate(config_file(tmp_path, host="/var/run/postgresql"), formats=("systemd",))
    for kind in ("logical", "physical"):
        parsed = unit(units[f"pgvdrill-backup-{kind}.service"])
        assert parsed["Unit"]["Wants"].split() == ["network-online.target",
                                                   "postgresql.service"]
        assert "ExecStartPost" not in parsed["Service"]
    assert "sync" not in generate(config_file(tmp_path), formats=("cron",))[CRON_FILE]


def test_a_local_rsync_destination_is_writable_for_the_backups(tmp_path: Path) -> None:
    units = generate(config_file(tmp_path, '[sync.rsync]\ndest = "offsite"\n'),
                     formats=("systemd",))
    service = unit(units["pgvdrill-backup-logical.service"])["Service"]
    assert service["ReadWritePaths"].split() == [str(tmp_path / "repo"),
                                                 str(tmp_path / "offsite")]


def _verify(directory: Path) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run([SYSTEMD_ANALYZE, "verify", *sorted(map(str, directory.iterdir()))],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_accepts_the_units_with_awkward_paths(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    awkward = tmp_path / "it's 100% $HOME"
    awkward.mkdir()
    config = config_file(awkward, '[sync.rsync]\ndest = "host:/srv"\n')
    out = tmp_path / "units"
    # ExecStart must name an existing program: the pgvdrill this Python runs (the default)
    assert main(["schedule", "--config", str(config), "--format", "systemd",
                 "--output-dir", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    result = _verify(out)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    drill = unit((out / "pgvdrill-drill.service").read_text())["Service"]
    specifiers = str(config).replace("%", "%%")
    assert drill["Environment"] == f'"PGVDRILL_CONFIG={specifiers}"'
    assert drill["ExecStart"].startswith(
        f'{PGVDRILL} dr-drill --config "{specifiers.replace("$", "$$")}" --take --workdir')
    retention = unit((out / "pgvdrill-retention.service").read_text())["Service"]
    assert retention["ReadWritePaths"] == f'"{str(awkward / "repo").replace("%", "%%")}"'

    broken = out / "pgvdrill-retention.service"  # the check can fail
    broken.write_text(broken.read_text().replace("Type=oneshot", "Type=oneshoot"))
    assert "oneshoot" in _verify(out).stderr


def _calendar_runs(calendar: str, base: datetime, count: int) -> list[datetime]:
    assert SYSTEMD_ANALYZE is not None
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "calendar", f"--iterations={count}",
         f"--base-time={base:%Y-%m-%d %H:%M:%S} UTC", calendar],
        capture_output=True, text=True, timeout=60, check=True, env={**os.environ, "TZ": "UTC"})
    stamps = re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\S+ \S+) UTC", result.stdout)
    return [datetime.fromisoformat(s) for s in stamps]


# --- cron -----------------------------------------------------------------------------------

CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def cron_field(text: str, low: int, high: int) -> set[int]:
    """The values one cron time field matches: *, N, N-M, lists and /steps."""
    values: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?", part)
        assert match, f"not a cron field: {text!r}"
        start, end = (low, high) if match[1] == "*" else \
            (int(match[2]), int(match[3] or (high if match[4] else match[2])))
        step = int(match[4] or 1)
        assert low <= start <= end <= high and step >= 1, f"out of range: {text!r}"
        values |= set(range(start, end + 1, step))
    return values


def cron_jobs(text: str) -> list[tuple[list[set[int]], list[str], str, str]]:
    """(matched values per field, the raw fields, user, command) of each /etc/cron.d line."""
    jobs = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        *fields, user, command = line.split(None, 6)
        assert len(fields) == 5, f"not five time fields: {line!r}"
        jobs.append(([cron_field(f, *r) for f, r in zip(fields, CRON_RANGES, strict=True)],
                     fields, user, command))
    return jobs


def cron_runs(fields: list[set[int]], raw: list[str], base: datetime, count: int,
              first_week: bool) -> list[datetime]:
    """cron's next runs after `base`: day-of-month and day-of-week are ORed when both are
    restricted; `first_week` is the line's own date test."""
    minute, hour, dom, month, dow = fields
    days = {d % 7 for d in dow}
    runs: list[datetime] = []
    day = base.replace(hour=0, minute=0, second=0)
    while len(runs) < count:
        dom_ok, dow_ok = day.day in dom, (day.isoweekday() % 7) in days
        both = raw[2] != "*" and raw[4] != "*"
        if (dom_ok or dow_ok if both else dom_ok and dow_ok) and day.month in month \
                and (day.day <= 7 or not first_week):
            runs += [day.replace(hour=h, minute=m) for h in sorted(hour) for m in sorted(minute)
                     if day.replace(hour=h, minute=m) > base]
        day += timedelta(days=1)
    return runs[:count]


def test_cron_lines_have_the_runbooks_fields_and_absolute_commands(tmp_path: Path) -> None:
    text = generate(config_file(tmp_path), formats=("cron",))[CRON_FILE]
    jobs = cron_jobs(text)
    assert [" ".join(raw) for _, raw, _, _ in jobs] == [c for _, c in SCHEDULE.values()]
    for (_, _, user, command), job in zip(jobs, SCHEDULE, strict=True):
        assert user == "postgres"
        assert f"/usr/bin/flock -n /run/lock/{job}.lock /opt/pgvdrill/bin/pgvdrill " in command
        assert not re.search(r"(?<!\\)%", command), "an unescaped % ends a cron command"
    assert "PGVDRILL_CONFIG=/etc/pgvdrill/pgvdrill.toml\n" in text
    assert jobs[-1][3].startswith('[ "$(date +\\%d)" -le 7 ] && ')


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("base", [datetime(2025, 1, 1), datetime(2026, 2, 28, 23, 59)])
def test_cron_and_the_timers_run_at_the_same_times(tmp_path: Path, base: datetime) -> None:
    texts = generate(config_file(tmp_path))
    jobs = cron_jobs(texts[CRON_FILE])
    for (fields, raw, _, command), job in zip(jobs, SCHEDULE, strict=True):
        calendar = unit(texts[f"{job}.timer"])["Timer"]["OnCalendar"]
        first_week = command.startswith("[ ")
        assert cron_runs(fields, raw, base, 8, first_week) == _calendar_runs(calendar, base, 8)


FAKE_PGVDRILL = """#!/bin/sh
echo "$PGVDRILL_CONFIG|$*" >> "$(dirname "$0")/calls"
[ "$1" != "$FAIL" ]
"""


def run_cron_command(text: str, command: str, tmp_path: Path, **env: str
                     ) -> subprocess.CompletedProcess[str]:
    """Run one line's command as cron does: the command ends at the first unescaped %
    (the rest is its stdin, % as newlines), \\% is %, /bin/sh, the file's variables (PATH
    after a directory of stand-ins)."""
    variables = dict(re.findall(r"^([A-Z_]+)=(.*)$", text, re.MULTILINE))
    variables["PATH"] = f"{tmp_path / 'stand-ins'}:{variables['PATH']}"
    command, *stdin = re.split(r"(?<!\\)%", command)
    return subprocess.run([variables["SHELL"], "-c", command.replace("\\%", "%")],
                          input="\n".join(stdin), env={**variables, **env},
                          capture_output=True, text=True, timeout=60, check=False)


def test_cron_commands_run_under_sh_with_awkward_paths(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin 100%'s"
    bin_dir.mkdir()
    fake = bin_dir / "pgvdrill"
    fake.write_text(FAKE_PGVDRILL)
    fake.chmod(0o755)
    (tmp_path / "stand-ins").mkdir()
    date = tmp_path / "stand-ins" / "date"
    date.write_text('#!/bin/sh\necho "$DAY"\n')
    date.chmod(0o755)
    install = Install(fake, Path(sys.executable), tmp_path / "conf %d" / "p.toml", "postgres",
                      tmp_path / "lock dir")
    install.lock_dir.mkdir()
    text = generate(config_file(tmp_path, '[sync.rsync]\ndest = "h:/x"\n'), install,
                    ("cron",))[CRON_FILE]
    commands = [c for _, _, _, c in cron_jobs(text)]
    calls = bin_dir / "calls"
    config = str(install.config)

    for command in commands[:3]:
        assert run_cron_command(text, command, tmp_path).returncode == 0
    assert calls.read_text().splitlines() == [
        f"{config}|backup logical", f"{config}|sync", f"{config}|backup physical",
        f"{config}|sync", f"{config}|retention"]

    calls.unlink()
    assert run_cron_command(text, commands[0], tmp_path, FAIL="backup").returncode == 1
    assert calls.read_text().splitlines() == [f"{config}|backup logical"]  # no sync

    calls.unlink()
    for day, ran in [("01", True), ("07", True), ("08", False), ("31", False)]:
        run_cron_command(text, commands[3], tmp_path, DAY=day)
        assert calls.exists() == ran, f"day {day}"
        calls.unlink(missing_ok=True)
    run_cron_command(text, commands[3], tmp_path, DAY="01")
    assert calls.read_text() == f"{config}|dr-drill --config {config} --take --workdir /var/tmp\n"

    with open(install.lock_dir / "pgvdrill-retention.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert run_cron_command(text, commands[2], tmp_path).returncode == 1  # no overlap


# --- archiving ----------------------------------------------------------------------------

def conf_value(text: str, key: str, *, commented: bool = False) -> str:
    """A postgresql.conf string setting's value ('' doubled, backslash escapes)."""
    match = re.search(rf"^{'#' if commented else ''}{key} = '((?:[^'\\]|''|\\.)*)'", text,
                      re.MULTILINE)
    assert match, f"no {key} in {text}"
    return re.sub(r"''|\\(.)", lambda m: m[1] or "'", match[1])


def run_archive_command(command: str, path: Path, name: str) -> None:
    """Run a configured command as PostgreSQL does: %p, %f, %% substituted, /bin/sh."""
    command = re.sub(r"%(.)", lambda m: {"p": str(path), "f": name, "%": "%"}[m[1]], command)
    result = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True,
                            timeout=60, check=False, cwd=path.parent)
    assert result.returncode == 0, f"{command}: {result.stderr}"


def test_archive_and_restore_commands_work_on_awkward_paths(tmp_path: Path) -> None:
    repo = tmp_path / "it's 100% repo"
    config = tmp_path / "pgvdrill.toml"
    config.write_text('[source]\nconninfo = "host=db"\n'
                      f'[repository]\npath = "{repo}"\n[drill]\nreports_dir = "/r"\n')
    install = Install(PGVDRILL, Path(sys.executable), config, "postgres", Path("/run/lock"))
    text = generate(config, install, ("archiving",))[ARCHIVING_FILE]
    assert re.search(r"^archive_mode = on$", text, re.MULTILINE)
    assert re.search(r"^archive_timeout = 60$", text, re.MULTILINE)
    assert conf_value(text, "archive_command").startswith(f"{PGVDRILL} archive-wal %p %f ")
    (repo / "wal").mkdir(parents=True)
    pg_wal = tmp_path / "pg_wal"
    pg_wal.mkdir()
    segments = [pg_wal / f"00000001000000000000000{i}" for i in (1, 2)]
    for segment in segments:
        segment.write_bytes(segment_bytes())

    run_archive_command(conf_value(text, "archive_command"), segments[0], segments[0].name)
    stdlib = conf_value(text, "archive_command", commented=True)
    assert " -m pgvdrill.wal.walcmd archive-wal %p %f " in stdlib
    run_archive_command(stdlib, segments[1], segments[1].name)
    for segment in segments:
        assert (repo / "wal" / segment.name).read_bytes() == segment.read_bytes()

    restored = tmp_path / "restored"
    run_archive_command(conf_value(text, "restore_command", commented=True), restored,
                        segments[0].name)
    assert restored.read_bytes() == segments[0].read_bytes()


# --- writing -------------------------------------------------------------------------------

def test_existing_different_files_are_never_overwritten(tmp_path: Path) -> None:
    texts = {"a.timer": "new a\n", "b.service": "new b\n"}
    out = tmp_path / "out"
    assert write_files(texts, out) == [f"wrote {out / 'a.timer'}", f"wrote {out / 'b.service'}"]
    assert oct((out / "a.timer").stat().st_mode & 0o777) == "0o644"
    assert write_files(texts, out) == [f"unchanged {out / n}" for n in texts]

    (out / "b.service").write_text("edited by hand\n")
    (out / "a.timer").unlink()
    with pytest.raises(ConfigError, match=r"already holds different b\.service"):
        write_files(texts, out)
    assert (out / "b.service").read_text() == "edited by hand\n"
    assert not (out / "a.timer").exists(), "nothing is written when one file differs"


@pytest.mark.parametrize(("settings", "args", "expected"), [
    ({}, ["--bin", "bin/pgvdrill"], "not absolute: --bin bin/pgvdrill"),
    ({}, ["--lock-dir", "locks"], "not absolute: --lock-dir locks"),
    ({"reports": None}, [], "[drill] reports_dir is not set"),
    ({"source": False}, [], "no [source] section"),
    ({"reports": 'r"s'}, [], "holds a double quote, backslash or line break"),
])
def test_unusable_settings_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     settings: dict[str, Any], args: list[str], expected: str
                                     ) -> None:
    config = config_file(tmp_path, **settings)
    assert main(["schedule", "--config", str(config), *args]) == 2
    assert expected in capsys.readouterr().err


# --- the other deployment examples ------------------------------------------------------

WORKFLOW = DEPLOY / "github-actions" / "pgvdrill-drills.yml"
CRONJOB = DEPLOY / "kubernetes" / "pgvdrill-monthly-drill.yaml"


def read_yaml(path: Path) -> list[Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the deployment examples")
    return list(yaml.safe_load_all(path.read_text()))


def schedule_fields(text: str) -> list[set[int]]:
    fields = text.split()
    assert len(fields) == 5, f"not five cron fields: {text!r}"
    return [cron_field(f, *r) for f, r in zip(fields, CRON_RANGES, strict=True)]


def test_the_workflow_runs_the_drills_in_docker_and_uploads_the_reports() -> None:
    [flow] = read_yaml(WORKFLOW)
    triggers = flow[True]  # YAML 1.1 reads the key `on` as true
    assert {"push", "pull_request", "schedule", "workflow_dispatch"} <= set(triggers)
    for entry in triggers["schedule"]:
        schedule_fields(entry["cron"])
    assert flow["permissions"] == {"contents": "read"}
    job = flow["jobs"]["drills"]
    assert job["runs-on"] == "ubuntu-latest" and job["timeout-minutes"] > 0
    steps = job["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert uses[0].startswith("actions/checkout@")
    assert any(u.startswith("actions/setup-python@") for u in uses)
    runs = [s.get("run", "") for s in steps]
    install = next(i for i, r in enumerate(runs) if "pip install -e '.[test]'" in r)
    pull = next(i for i, r in enumerate(runs) if r.startswith("docker pull "))
    embedded, docker = (i for i, r in enumerate(runs) if r.startswith("pytest "))
    upload = next(i for i, u in enumerate(uses) if u.startswith("actions/upload-artifact@"))
    assert install < embedded < docker < upload and pull < docker
    assert runs[embedded].split() == ["pytest", "-n", "2", "--drill-reports", "reports"]
    command = runs[docker].split()
    assert command[:3] == ["pytest", "-n", "2"]
    image = runs[pull].split()[2]
    assert " ".join(command[3:]) == (f"--drill-backend docker --drill-image {image} "
                                     "--drill-reports reports drills/")
    assert image == "pgvector/pgvector:pg17"
    assert steps[upload]["if"] == "always()" and steps[upload]["with"]["path"] == "reports/"


def test_the_cronjob_drills_monthly_with_the_configmaps_config_and_a_0600_pgpass(
        tmp_path: Path) -> None:
    docs = {d["kind"]: d for d in read_yaml(CRONJOB)}
    assert sorted(docs) == ["ConfigMap", "CronJob"]
    cron = docs["CronJob"]["spec"]
    assert schedule_fields(cron["schedule"])[:3] == [{0}, {4}, {1}]  # the 1st, 04:00
    assert cron["schedule"].split()[3:] == ["*", "*"]
    assert cron["concurrencyPolicy"] == "Forbid"
    job = cron["jobTemplate"]["spec"]
    assert job["backoffLimit"] >= 0 and job["ttlSecondsAfterFinished"] > 0
    [verdicts] = [r for r in job["podFailurePolicy"]["rules"] if r["action"] == "FailJob"]
    assert verdicts["onExitCodes"]["values"] == [1, 2, 3, 4, 5, 6]
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"  # podFailurePolicy needs it
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    volumes = {v["name"]: v for v in pod["volumes"]}
    containers = {c["name"]: c for c in [*pod["initContainers"], *pod["containers"]]}
    for container in containers.values():
        assert {m["name"] for m in container["volumeMounts"]} <= set(volumes)
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["resources"]["requests"] and container["resources"]["limits"]
    [secret] = [v["secret"] for v in volumes.values() if "secret" in v]
    assert secret["defaultMode"] == 0o600

    drill = containers[verdicts["onExitCodes"]["containerName"]]
    mounts = {m["mountPath"]: m for m in drill["volumeMounts"]}
    args = drill["args"]
    assert args[:2] == ["dr-drill", "--config"] and "--take" in args
    config_path = Path(args[2])
    config_volume = volumes[mounts[str(config_path.parent)]["name"]]["configMap"]
    assert config_volume["name"] == docs["ConfigMap"]["metadata"]["name"]
    (tmp_path / "pgvdrill.toml").write_text(docs["ConfigMap"]["data"][config_path.name])
    config = load_config(tmp_path / "pgvdrill.toml")  # strict: the configuration is valid
    passfile = Path(config.require_source().conninfo["passfile"])
    copy = containers["pgpass"]["command"]
    assert copy[:3] == ["install", "-m", "0600"] and copy[-1] == str(passfile)
    assert mounts[str(passfile.parent)]["name"] in {m["name"] for m in
                                                    containers["pgpass"]["volumeMounts"]}
    repository = mounts[str(config.repository)]  # --take writes backups
    assert not repository.get("readOnly")
    assert not volumes[repository["name"]]["persistentVolumeClaim"].get("readOnly")
    assert str(config.drill.reports_dir) in mounts
    assert args[args.index("--workdir") + 1] in mounts
    assert args[args.index("--cache-dir") + 1] in mounts


@pytest.mark.parametrize("version", ["1.29.0", "1.37.0"])
def test_the_cronjob_passes_the_kubernetes_schemas(version: str) -> None:
    validate = pytest.importorskip("kubernetes_validate",
                                   reason="kubernetes-validate is not installed").validate
    for doc in read_yaml(CRONJOB):
        validate(doc, version, strict=True)


def test_the_readme_regenerates_the_committed_examples() -> None:
    readme = " ".join((DEPLOY / "README.md").read_text().replace("\\\n", " ").split())
    assert " ".join(["pgvdrill schedule --config pgvdrill.example.toml", *DEPLOY_ARGS[2:]]) \
        in readme
    for fmt, directory in DEPLOY_DIRS.items():
        assert f"{fmt}:{directory}" in readme
