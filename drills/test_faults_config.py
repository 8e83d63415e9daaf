"""Configuration is code, and platform facts (issue 13, classes 2 and 7), as an operator
meets them: `pgvdrill` run as root in a directory another user could write, with a
configuration named by the environment, with numbers that once deleted fresh backups; and
the port-lock directory shared by root and an unprivileged user on one host."""

from __future__ import annotations

import os
import pwd
import socket
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import pgvdrill
from fixtures.cli import Cli
from fixtures.options import DrillOptions
from pgvdrill import installation
from pgvdrill.proc import runner

OTHER = "pgvprod"  # another OS user: plants files, runs its own drills
SCRIPTS = Path(pgvdrill.__file__).parents[1]  # the pgvdrill under test
DEBIAN_PYTHON = "/usr/bin/python3"  # the other user cannot enter root's pyenv
CONFIG = ('[source]\nconninfo = "host=db1 dbname=vector_db user=backup"\n\n'
          '[repository]\npath = "{repo}"\n\n[drill]\nreports_dir = "/var/lib/pgvdrill/reports"\n')


def cli_env(**extra: str) -> dict[str, str | None]:
    return {"PGVDRILL_CONFIG": None, **extra}


def pgvdrill_run(*args: str | Path, cwd: Path, **env: str) -> runner.Result:
    return runner.run([sys.executable, "-m", "pgvdrill.cli", *map(str, args)], cwd=cwd,
                      env=cli_env(**env), check=False, timeout=120)


@pytest.fixture
def shared_dir(tmp_path: Path) -> Path:
    """A world-writable sticky directory like /tmp, holding another user's pgvdrill.toml."""
    tmp_path.chmod(0o755)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    planted = shared / "pgvdrill.toml"
    planted.write_text(CONFIG.format(repo=shared / "their-repo"))
    os.chown(planted, pwd.getpwnam(OTHER).pw_uid, -1)
    return shared


def test_fault_planted_config_in_a_world_writable_cwd_is_not_read(shared_dir: Path) -> None:
    assert not Path("/etc/pgvdrill/pgvdrill.toml").exists()  # the next default place

    result = pgvdrill_run("schedule", cwd=shared_dir)

    assert result.returncode == 2, result.stdout
    assert f"warning: ignoring {shared_dir / 'pgvdrill.toml'}: {shared_dir} (owner root " \
           "(uid 0), mode 1777) is writable by other users" in result.stderr
    assert "no configuration file" in result.stderr and "their-repo" not in result.stdout
    with_config = pgvdrill_run("schedule", "--config", shared_dir / "pgvdrill.toml",
                               cwd=shared_dir)  # named explicitly: refused, not ignored
    assert with_config.returncode == 2 and "refusing configuration" in with_config.stderr


def test_config_in_a_safe_cwd_is_read(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    (tmp_path / "pgvdrill.toml").write_text(CONFIG.format(repo=tmp_path / "repo"))

    result = pgvdrill_run("schedule", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert f"from {tmp_path / 'pgvdrill.toml'}" in result.stdout and "warning" not in result.stderr


def test_fault_config_named_by_the_environment_is_checked_too(shared_dir: Path,
                                                               tmp_path: Path) -> None:
    planted = shared_dir / "pgvdrill.toml"

    result = pgvdrill_run("schedule", cwd=tmp_path, PGVDRILL_CONFIG=str(planted))

    assert result.returncode == 2, result.stdout
    assert f"refusing configuration {planted}: {planted} (owner {OTHER} (uid" in result.stderr
    assert "hint: make it and every directory above it owned by root" in result.stderr


@pytest.mark.parametrize("days", ["nan", "-inf", "inf", "1e308"])
def test_fault_retention_with_a_non_finite_number_of_days_deletes_nothing(
        tmp_path: Path, pgvdrill_cli: Cli, days: str) -> None:
    """`nan` days once made every backup "older than the policy": retention refuses the
    configuration before it reads the repository."""
    tmp_path.chmod(0o755)
    config = tmp_path / "pgvdrill.toml"
    config.write_text(CONFIG.format(repo=tmp_path / "repo")
                      + f"\n[retention]\nlogical_days = {days}\n")

    result = pgvdrill_cli("retention", "--config", config)

    assert result.returncode == 2, result.stderr
    assert f"[retention] logical_days = {float(days)!r}" in result.stderr
    assert "not a number >= 0 and <= 36500" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "repo").exists()


# --- the shared port-lock directory ---------------------------------------------------

@pytest.fixture
def host_tmp() -> Iterator[Path]:
    """A fresh /tmp stand-in (1777) every user can reach; TMPDIR points pgvdrill at it."""
    path = Path(tempfile.mkdtemp(prefix="pgvdrill-hosttmp-", dir="/var/tmp"))
    path.chmod(0o1777)
    yield path
    runner.run(["rm", "-rf", "--", path])


# ports.py by its path: the other user's Python has the standard library only (root's
# environment with psycopg is not theirs to enter); ports.py needs no more
LEASE = ("import importlib.util, sys\n"
         "spec = importlib.util.spec_from_file_location('ports', sys.argv[1])\n"
         "ports = importlib.util.module_from_spec(spec); spec.loader.exec_module(ports)\n"
         "held = ports.lease(int(sys.argv[2]) if len(sys.argv) > 2 else None)\n"
         "print('leased', held.port)\n")


def lease_as(user: str | None, host_tmp: Path, *args: str) -> runner.Result:
    """Lease a port in a fresh process as `user` (None: root), umask 022 as in a login."""
    python = DEBIAN_PYTHON if user else sys.executable
    return runner.run(["sh", "-c", 'umask 022 && exec "$@"', "sh", python, "-c", LEASE,
                       SCRIPTS / "pgvdrill" / "cluster" / "ports.py", *args], user=user,
                      check=False, timeout=60,
                      env={"TMPDIR": str(host_tmp), "PYTHONPATH": str(SCRIPTS)})


def test_fault_port_locks_work_for_a_user_after_root(host_tmp: Path) -> None:
    """Root leases first (the directory is made under umask 022), then another user's
    drill leases ports in the same directory."""
    first = lease_as(None, host_tmp)
    assert first.returncode == 0, first.stderr
    lock_dir = host_tmp / "pgvdrill-ports"
    assert stat.S_IMODE(lock_dir.stat().st_mode) == 0o1777

    second = lease_as(OTHER, host_tmp)

    assert second.returncode == 0, second.stderr
    assert "leased" in second.stdout and "warning" not in second.stderr
    port = second.stdout.split()[-1]
    assert (lock_dir / f"{port}.lock").stat().st_uid == pwd.getpwnam(OTHER).pw_uid
    again = lease_as(None, host_tmp, port)  # root takes the user's (released) lock file
    assert again.returncode == 0, again.stderr


def test_fault_port_lock_directory_left_1755_is_repaired_or_avoided(host_tmp: Path) -> None:
    lock_dir = host_tmp / "pgvdrill-ports"
    lock_dir.mkdir()
    lock_dir.chmod(0o1755)  # what an earlier version left when root made it

    user = lease_as(OTHER, host_tmp)
    assert user.returncode == 0, user.stderr
    assert f"not using the shared port-lock directory {lock_dir}" in user.stderr
    assert f"chmod 1777 {lock_dir}" in user.stderr
    assert (host_tmp / f"pgvdrill-ports-{pwd.getpwnam(OTHER).pw_uid}").is_dir()

    root = lease_as(None, host_tmp)
    assert root.returncode == 0, root.stderr
    assert stat.S_IMODE(lock_dir.stat().st_mode) == 0o1777  # root owns it: repaired


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A root-only file another user must not get root to truncate or open up."""
    tmp_path.chmod(0o755)
    path = tmp_path / "root-only"
    path.write_text("secret\n")
    path.chmod(0o600)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_other(*argv: str | Path) -> None:
    runner.run(list(argv), user=OTHER)


def test_fault_planted_lock_file_link_is_not_followed_by_root(host_tmp: Path,
                                                              victim: Path) -> None:
    """Another user makes the lock directory first and plants <port>.lock -> a root file."""
    lock_dir = host_tmp / "pgvdrill-ports"
    as_other("mkdir", "-m", "1777", lock_dir)
    port = str(free_port())
    as_other("ln", "-s", victim, lock_dir / f"{port}.lock")

    result = lease_as(None, host_tmp, port)

    assert result.returncode == 0, result.stderr  # in root's private directory
    assert f"not using the shared port-lock directory {lock_dir}" in result.stderr
    assert victim.read_text() == "secret\n" and stat.S_IMODE(victim.stat().st_mode) == 0o600
    private = host_tmp / "pgvdrill-ports-0"
    assert (private / f"{port}.lock").is_file() and not (private / f"{port}.lock").is_symlink()


def test_fault_lock_directory_symlink_is_not_followed_by_root(host_tmp: Path,
                                                              tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o777)
    elsewhere.chmod(0o777)
    as_other("ln", "-s", elsewhere, host_tmp / "pgvdrill-ports")

    result = lease_as(None, host_tmp)

    assert result.returncode == 0, result.stderr
    assert list(elsewhere.iterdir()) == []  # nothing written through the link
    assert "not a directory pgvdrill can open" in result.stderr


def test_fault_shared_install_copy_is_enterable_under_umask_077(
        host_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root copies the embedded binaries where the server user can run them; the units run
    pgvdrill with UMask=0077, which made that directory 0700."""
    host_tmp.chmod(0o755)
    monkeypatch.setattr(installation, "SHARED_INSTALL_ROOT", host_tmp / "pgvdrill")
    if installation.world_traversable(installation.embedded(None).bindir):
        pytest.skip("this Python's embedded binaries are reachable by all: no copy is made")
    old = os.umask(0o077)
    try:
        bindir = installation.embedded("pgvdrill").bindir
    finally:
        os.umask(old)
    assert bindir.is_relative_to(host_tmp / "pgvdrill")

    result = runner.run([bindir / "postgres", "--version"], user="pgvdrill", check=False)
    assert result.returncode == 0 and "PostgreSQL" in result.stdout, result.stderr


def test_fault_procedure_script_another_user_owns_is_not_run_by_root(
        pgvdrill_cli: Cli, cli_cache: Path, options: DrillOptions, tmp_path: Path) -> None:
    """`backup = "sh team.sh ..."`: the script needs no x bit, and its owner chose what
    root ran. Refused before anything starts: the script never runs, no report is made."""
    tmp_path.chmod(0o755)
    script = tmp_path / "team.sh"
    script.write_text(f'touch {tmp_path}/ran-as-"$(id -u)"\nexec pg_dump "$@"\n')
    os.chown(script, pwd.getpwnam(OTHER).pw_uid, -1)
    config = tmp_path / "pgvdrill.toml"
    config.write_text(f'[repository]\npath = "{tmp_path / "repo"}"\n\n[[procedure]]\n'
                      f'name = "team"\nbackup = "sh {script} --format=custom '
                      '--file={backup} {dsn}"\nrestore = "pg_restore --dbname={target_dsn} '
                      '{backup}"\n')
    backend = ["--cache-dir", str(cli_cache), "--rows", str(options.rows), "--dim",
               str(options.dim)]  # pgvdrill_cli adds the session's backend

    result = pgvdrill_cli("procedures", "--config", config, "--reports-dir", "reports",
                          *backend)

    assert result.returncode == 2, result.stdout + result.stderr
    assert f"[[procedure]] 'team' backup runs {script}: {script} (owner {OTHER}" \
           in result.stderr
    assert not list(tmp_path.glob("ran-as-*")) and not (tmp_path / "reports").exists()
