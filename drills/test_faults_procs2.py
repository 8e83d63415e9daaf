"""Issue 13, class 3, on real servers: a killed postmaster left a zombie."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from pgvdrill.cluster.base import Backend, Cluster
from pgvdrill.cluster.local import LocalCluster
from pgvdrill.proc import group as procgroup


def state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return b"gone"


def test_fault_a_killed_postmaster_left_a_zombie_is_a_stopped_server(
        backend: Backend, make_cluster: Callable[..., Cluster]) -> None:
    """A postmaster whose parent is pgvdrill (pgvdrill as a container's PID 1 or a
    subreaper adopts the servers pg_ctl leaves) stays a zombie once killed, until reaped:
    it is a stopped server, reaped, and the cluster starts again (it looked running, so
    cleanup's pg_ctl stop waited for it, and a new postmaster refused the lock file)."""
    cluster = make_cluster("zombie")
    if not isinstance(cluster, LocalCluster):
        pytest.skip("a postmaster is a process of this machine with the local backends only")
    cluster.stop()
    with cluster.logfile.open("ab") as log:
        postmaster = subprocess.Popen(  # this test stands for the adopting parent
            [cluster.installation.tool("postgres"), "-D", cluster.datadir], stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
            **procgroup.identity(cluster.server_user))
    deadline = time.monotonic() + 120
    while True:
        try:
            cluster.query("SELECT 1")
            break
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, cluster.server_log(20)
            time.sleep(0.1)
    os.kill(postmaster.pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while state(postmaster.pid) != b"Z":
        assert time.monotonic() < deadline, f"postmaster {postmaster.pid} never exited"
        time.sleep(0.05)

    assert not cluster.is_running()
    assert state(postmaster.pid) == b"gone", "the zombie postmaster was not reaped"
    # reaped by pgvdrill: Popen learns it from ECHILD (else its __del__ warns, "still
    # running", in whichever test the garbage collector happens to run)
    assert postmaster.poll() is not None
    cluster.stop()  # cleanup of a stopped server: nothing to do, no error
    cluster.start()
    assert cluster.query("SELECT 1") == [(1,)]
