"""Issue 13, class 3, on real servers: a killed postmaster left a zombie."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from fixtures.polling import assert_until
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
    assert_until(lambda: cluster.query("SELECT 1"), timeout=120, interval=0.1,
                 transient=(psycopg.OperationalError,), message=lambda _: cluster.server_log(20))
    os.kill(postmaster.pid, signal.SIGKILL)
    assert_until(lambda: state(postmaster.pid) == b"Z", timeout=60,
                 message=f"postmaster {postmaster.pid} never exited")

    assert not cluster.is_running()
    assert state(postmaster.pid) == b"gone", "the zombie postmaster was not reaped"
    # reaped by pgvdrill: Popen learns it from ECHILD (else its __del__ warns, "still
    # running", in whichever test the garbage collector happens to run)
    assert postmaster.poll() is not None
    cluster.stop()  # cleanup of a stopped server: nothing to do, no error
    cluster.start()
    assert cluster.query("SELECT 1") == [(1,)]
