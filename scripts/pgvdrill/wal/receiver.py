"""pg_receivewal streaming a cluster's WAL into a directory through a replication slot,
optionally as its synchronous standby (each commit waits until the receiver has flushed)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pgvdrill.cluster.directory import DirectoryCluster
from pgvdrill.errors import BackupError
from pgvdrill.proc.background import Process
from pgvdrill.proc.runner import ToolCall
from pgvdrill.proc.wait import wait_until

APPLICATION_NAME = "pgvdrill_receivewal"


class Receiver:
    """pg_receivewal for `cluster` into `directory` via `slot` (created if missing).

    `synchronous`: pg_receivewal --synchronous, and the cluster's
    synchronous_standby_names set to the receiver's application name, so that no commit
    is acknowledged before the receiver has flushed it (RPO 0 for acknowledged commits).
    """

    def __init__(self, cluster: DirectoryCluster, directory: Path, *, slot: str = "pgvdrill",
                 synchronous: bool = False) -> None:
        self.cluster = cluster
        self.directory = directory
        self.slot = slot
        self.synchronous = synchronous
        self.process: Process | None = None

    def start(self, timeout: float = 30) -> Self:
        """Create the slot, start streaming, and wait until the cluster sees the receiver
        (as its synchronous standby when `synchronous`)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.cluster.run_tool(ToolCall("pg_receivewal", ["--create-slot", "--if-not-exists",
                                                         "--slot", self.slot]))
        args = ["-D", str(self.directory), "--slot", self.slot, "--no-loop", "--verbose"]
        if self.synchronous:
            args.append("--synchronous")
            self.cluster.configure(synchronous_standby_names=APPLICATION_NAME)
            self.cluster.reload()
        argv, env = self.cluster.process_command("pg_receivewal", args,
                                                 {"PGAPPNAME": APPLICATION_NAME})
        self.process = Process(argv, self.directory.parent /
                               f"{self.directory.name}.receivewal.log", env=env).start()
        self._wait_streaming(timeout)
        return self

    def _wait_streaming(self, timeout: float) -> None:
        assert self.process is not None
        process = self.process
        want = "sync" if self.synchronous else None
        seen: list[list[tuple[object, ...]]] = [[]]

        def streaming() -> bool:
            process.check_running()
            rows = seen[0] = self.cluster.query(
                "SELECT state, sync_state FROM pg_stat_replication "
                f"WHERE application_name = '{APPLICATION_NAME}'")
            return bool(rows and rows[0][0] == "streaming" and want in (None, rows[0][1]))

        wait_until(streaming, timeout=timeout, error=BackupError, message=lambda _: (
            f"pg_receivewal is not streaming{' synchronously' if want else ''} after "
            f"{timeout:.0f}s (pg_stat_replication: {seen[0]})\n{process.log_tail()}"),
            hint="check max_wal_senders, the replication slot and synchronous_standby_names")

    def stop(self) -> int | None:
        """Stop pg_receivewal (it flushes what it received); its exit code. After the
        primary died it has usually exited already, with an error: that is expected. A
        running primary stops waiting for it first (or its commits would hang)."""
        if self.synchronous and self.cluster.is_running():
            self.cluster.configure(synchronous_standby_names="")
            self.cluster.reload()
        return self.process.stop() if self.process is not None else None

    def log_tail(self) -> str:
        return self.process.log_tail() if self.process is not None else ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
