"""Bad input: each case is a clear error, a non-zero exit from the CLI, nothing left running."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.cli import Cli
from fixtures.options import DrillOptions
from fixtures.processes import read_to_first_backup, reaped, start_drill
from pgvdrill.cluster import Backend
from pgvdrill.errors import ConfigError
from pgvdrill.logical.dump import DUMP_SETTINGS, DumpResult, DumpSetting


def pgvdrill(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI as an operator would, in a subprocess."""
    return subprocess.run([sys.executable, "-m", "pgvdrill.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600, check=False)


def servers_under(path: Path) -> list[int]:
    """Process ids whose command line mentions `path` (a server left behind)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(path) in cmdline:
                pids.append(int(entry.name))
    return pids


def verified(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`pgvdrill verify path`; the file is byte for byte the same afterwards (verify never
    repairs, moves or removes a backup)."""
    before = path.read_bytes()
    result = pgvdrill("verify", path, cwd=cwd)
    assert path.read_bytes() == before, f"pgvdrill verify changed {path}"
    return result


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int, *words: str
                         ) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr


@pytest.fixture
def workdir(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Path:
    path = Path("/var/tmp" if os.geteuid() == 0 else tmp_path_factory.getbasetemp())
    return Path(os.path.realpath(path)) / f"pgvdrill-badinput-{os.getpid()}"


@pytest.fixture
def damaged(dumps: Callable[[DumpSetting], DumpResult], tmp_path: Path
            ) -> Callable[[str, Callable[[bytes], bytes]], Path]:
    """A copy of a good dump, changed by a function of its bytes."""

    def make(setting: str, change: Callable[[bytes], bytes]) -> Path:
        good = dumps(DUMP_SETTINGS[setting]).archive.path
        copy = tmp_path / f"damaged-{good.name}"
        copy.write_bytes(change(good.read_bytes()))
        return copy

    return make


def test_missing_binaries(tmp_path: Path) -> None:
    result = pgvdrill("drill", "--backend", "system", "--pg-bin", tmp_path / "nowhere",
                      "--reports-dir", tmp_path / "r", cwd=tmp_path)
    assert_clean_failure(result, 2, "postgres not found in", "--pg-bin")


def test_system_backend_without_bin_dir(tmp_path: Path) -> None:
    result = pgvdrill("drill", "--backend", "system", "--reports-dir", tmp_path, cwd=tmp_path)
    assert_clean_failure(result, 2, "needs --pg-bin")


def test_missing_dump(tmp_path: Path) -> None:
    result = pgvdrill("verify", tmp_path / "absent.dump", cwd=tmp_path)
    assert_clean_failure(result, 4, "does not exist")


def test_empty_dump(tmp_path: Path) -> None:
    (tmp_path / "empty.dump").touch()
    result = pgvdrill("verify", tmp_path / "empty.dump", cwd=tmp_path)
    assert_clean_failure(result, 4, "is empty")


@pytest.mark.parametrize("setting", ["custom-z9", "custom-z1"])
def test_truncated_dump(damaged: Callable[..., Path], setting: str, tmp_path: Path) -> None:
    path = damaged(setting, lambda data: data[: len(data) * 2 // 3])
    result = verified(path, tmp_path)
    assert_clean_failure(result, 4, "cannot be read", "truncated or corrupted")


def test_corrupted_dump(damaged: Callable[..., Path], tmp_path: Path) -> None:
    def flip(data: bytes) -> bytes:
        middle = len(data) // 2
        return data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64]) + \
            data[middle + 64:]

    result = verified(damaged("custom-z9", flip), tmp_path)
    assert_clean_failure(result, 4, "cannot be read")


def test_corrupted_header(damaged: Callable[..., Path], tmp_path: Path) -> None:
    result = verified(damaged("custom-z1", lambda d: b"XXXXX" + d[5:]), tmp_path)
    assert_clean_failure(result, 4, "neither a pg_dump archive nor a complete plain SQL dump")


def test_good_dump_verifies(dumps: Callable[[DumpSetting], DumpResult], tmp_path: Path
                            ) -> None:
    result = verified(dumps(DUMP_SETTINGS["custom-z9"]).archive.path, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ok:" in result.stdout


def test_port_in_use(backend: Backend) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cluster = backend.create("busy", port=port)  # type: ignore[call-arg]
        try:
            with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is already in use"):
                cluster.start()
            assert not cluster.is_running()
        finally:
            cluster.destroy()


def test_unwritable_reports_dir(tmp_path: Path, pgvdrill_cli: Cli) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = pgvdrill_cli("drill", "--reports-dir", blocker / "reports")
    assert_clean_failure(result, 2, "cannot write reports to", "--reports-dir")


def test_unwritable_workdir_leaves_nothing_running(tmp_path: Path, pgvdrill_cli: Cli) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = pgvdrill_cli("drill", "--workdir", blocker / "work", "--reports-dir", tmp_path / "r")
    assert_clean_failure(result, 2, "cannot write to the work directory", "--workdir")
    assert servers_under(blocker) == []


def test_bad_dataset_file(tmp_path: Path, pgvdrill_cli: Cli) -> None:
    bad = tmp_path / "vectors.npy"
    bad.write_bytes(b"not numpy")
    result = pgvdrill_cli("drill", "--dataset-file", bad, "--reports-dir", tmp_path / "r")
    assert_clean_failure(result, 2, str(bad))


def test_interrupted_drill_leaves_nothing_running(workdir: Path, tmp_path: Path,
                                                  options: DrillOptions) -> None:
    """Ctrl-C in the middle of a drill stops every server it started (pgvdrill started
    with SIGINT at its default, whatever this test's launcher ignores)."""
    try:
        with reaped(start_drill(options, workdir, tmp_path)) as proc:
            read_to_first_backup(proc)
            assert servers_under(workdir), "no server was running mid-drill"
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=120)
            assert proc.returncode == 130, stderr
            assert "interrupted" in stderr and "Traceback" not in stderr
            assert servers_under(workdir) == []
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
