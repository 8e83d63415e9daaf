"""Attacks on the version matrix (issue 15) that need no server: what an installation's
files claim against what it can really do, and verdicts that must not pass vacuously.

A demanding DBA's rule: a capability pgvdrill relies on is one it checked (a control file
is not a library, a directory another user can write is not an installation), and a
verification that verified nothing is not "ok"."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fixtures.installed import PG16
from fixtures.installed import PG183 as PG18
from pgvdrill import installation
from pgvdrill.capabilities import installation_capabilities
from pgvdrill.errors import ConfigError
from pgvdrill.verify.outcome import Check, Verification

needs_16 = pytest.mark.skipif(not PG16.is_dir(), reason=f"{PG16} is not installed "
                              "(scripts/install-installations.sh)")
needs_18 = pytest.mark.skipif(not PG18.is_dir(), reason=f"{PG18} is not installed "
                              "(scripts/install-installations.sh)")


def _copy(bindir: Path, tmp_path: Path) -> Path:
    """A copy of the installation whose bin directory is `bindir` (layout kept: its tools
    find libpq relative to themselves); the copy's bin directory."""
    root = bindir.parent.parent.parent  # .../pgNN/ holding pgserver/pginstall/bin
    copy = tmp_path / root.name
    shutil.copytree(root, copy, symlinks=True)
    return copy / bindir.relative_to(root)


def _share(bindir: Path) -> Path:
    return bindir.parent / "share" / "postgresql" / "extension"


def _pkglib(bindir: Path) -> Path:
    return bindir.parent / "lib" / "postgresql"


@needs_16
def test_a_server_library_directory_other_users_can_write_is_refused(tmp_path: Path) -> None:
    """The server loads vector.so (and amcheck, pg_walinspect...) from pkglibdir, as the
    server's OS user: whoever can write lib/postgresql chooses the code the drill runs.
    Expected: from_bindir refuses it like a writable bin directory (ConfigError naming it).
    (trust.library_dirs looks at pginstall/lib itself only, not lib/postgresql.)"""
    bindir = _copy(PG16, tmp_path)
    pkglib = _pkglib(bindir)
    pkglib.chmod(0o777)

    with pytest.raises(ConfigError, match="lib/postgresql"):
        installation.from_bindir(bindir)


@needs_16
def test_a_vector_library_other_users_can_write_is_refused(tmp_path: Path) -> None:
    bindir = _copy(PG16, tmp_path)
    library = _pkglib(bindir) / "vector.so"
    library.chmod(0o666)

    with pytest.raises(ConfigError, match=r"vector\.so"):
        installation.from_bindir(bindir)


@needs_16
def test_extension_scripts_other_users_can_write_are_refused(tmp_path: Path) -> None:
    """CREATE EXTENSION vector runs share/extension/vector--X.sql as a superuser: a
    directory other users can write is a way to run SQL as the drill's superuser."""
    bindir = _copy(PG16, tmp_path)
    _share(bindir).chmod(0o777)

    with pytest.raises(ConfigError, match="extension"):
        installation.from_bindir(bindir)


@needs_16
def test_a_vector_control_naming_a_version_without_its_script_is_no_capability(
        tmp_path: Path) -> None:
    """vector.control says default_version 0.9.9, no vector--0.9.9.sql exists: CREATE
    EXTENSION vector fails. Expected: the vector capability is unavailable, its reason
    naming the missing script (not "available" because a .control file exists)."""
    bindir = _copy(PG16, tmp_path)
    control = _share(bindir) / "vector.control"
    control.write_text(control.read_text().replace("'0.6.2'", "'0.9.9'"))
    inst = installation.from_bindir(bindir)

    vector = installation_capabilities(inst)["vector"]

    assert inst.version == "16.2"
    assert not vector.available, vector
    assert "0.9.9" in vector.reason and "vector--0.9.9.sql" in vector.reason, vector.reason


@needs_16
def test_a_vector_control_without_its_library_is_no_capability(tmp_path: Path) -> None:
    """vector.control and scripts present, vector.so gone (a half-removed package):
    CREATE EXTENSION fails on the library. Expected: vector unavailable, naming vector.so."""
    bindir = _copy(PG16, tmp_path)
    (_pkglib(bindir) / "vector.so").unlink()

    vector = installation_capabilities(installation.from_bindir(bindir))["vector"]

    assert not vector.available, vector
    assert "vector.so" in vector.reason, vector.reason


@needs_16
def test_a_bin_directory_named_for_one_version_is_the_version_it_runs(tmp_path: Path) -> None:
    """--pg-bin /srv/pg18/bin, a symlink to a 16.2 installation: everything pgvdrill says
    about it is 16.2, and it is known by its real directory."""
    link = tmp_path / "pg18"
    link.symlink_to(PG16, target_is_directory=True)

    inst = installation.from_bindir(link)

    assert inst.version == "16.2" and inst.major == 16
    assert inst.bindir == PG16.resolve()
    assert inst.pgvector_version() == "0.6.2"


@needs_16
def test_16_lacks_what_16_lacks_each_with_its_reason() -> None:
    """PostgreSQL 16.2 (pgserver 0.1.4): no amcheck, no pg_walinspect, no tar reading in
    pg_verifybackup, no incremental backups; every missing one says why."""
    inst = installation.from_bindir(PG16)
    found = installation_capabilities(inst)

    assert inst.version == "16.2"
    missing = {name for name, cap in found.items() if not cap.available}
    assert missing == {"amcheck", "pg_walinspect", "pg_verifybackup_tar",
                       "incremental_backup"}, found
    for name in missing:
        assert found[name].reason and str(inst.version) in found[name].reason + str(
            inst.bindir), found[name]


@needs_18
def test_18_3_reads_tar_and_takes_incremental_backups_but_has_no_amcheck() -> None:
    inst = installation.from_bindir(PG18)
    found = installation_capabilities(inst)

    assert inst.version == "18.3"
    assert found["pg_verifybackup_tar"].available and found["incremental_backup"].available
    assert not found["amcheck"].available and not found["pg_walinspect"].available


def test_a_verification_whose_every_check_could_not_run_is_not_ok() -> None:
    """amcheck and pg_walinspect both missing, nothing else checked: nothing was verified.
    Expected: neither the summary nor report.json's verdict says it passed."""
    checks = [Check("amcheck", True, [], 0.0, unknown="no amcheck extension"),
              Check("wal_inspect", True, [], 0.0, unknown="no pg_walinspect extension")]
    verification = Verification(checks)

    assert not verification.summary().startswith("ok"), verification.summary()
    assert verification.as_dict().get("ok") is not True, verification.as_dict()


def test_a_verification_with_no_checks_is_not_ok() -> None:
    """verify() that ran no check at all (every check skipped on a capability) is no pass."""
    verification = Verification([])

    assert not verification.summary().startswith("ok"), verification.summary()
    assert verification.as_dict().get("ok") is not True, verification.as_dict()


def test_report_json_of_a_verification_lists_what_could_not_run() -> None:
    """A reader of report.json sees the top-level verdict first: unknown checks must be
    listed there, with their reasons, not only inside each check."""
    verification = Verification([
        Check("rows", True, [], 0.1),
        Check("amcheck", True, [], 0.0, unknown="PostgreSQL 16.2 does not offer amcheck")])

    found = verification.as_dict()

    assert "amcheck: PostgreSQL 16.2 does not offer amcheck" in str(found.get("unknown")), found


def test_the_installation_copies_are_not_shared_with_the_real_ones(tmp_path: Path) -> None:
    """Guard for the tests above: a copy's changes never reach /opt (they chmod and unlink)."""
    if not PG16.is_dir():
        pytest.skip(f"{PG16} is not installed")
    bindir = _copy(PG16, tmp_path)
    assert os.path.realpath(bindir) != os.path.realpath(PG16)
    assert not os.path.samefile(_pkglib(bindir) / "vector.so", _pkglib(PG16) / "vector.so")
