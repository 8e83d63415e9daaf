"""What the DR drill's comparison point reads (pgvdrill.drill.dr_point): which commits a
source's snapshot sees, asked of pg_waldump's 32-bit transaction ids, and whether
pg_waldump read every record up to the end it was given."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgvdrill.drill.dr_point import _target, snapshot_sees, stopped_at_end
from pgvdrill.errors import ConfigError
from pgvdrill.installation import embedded
from pgvdrill.server import ExternalServer

EPOCH = 2**32


@pytest.mark.parametrize(("xmin", "xmax", "running", "xid", "seen"), [
    (750, 760, {755}, 749, True),     # before xmin
    (750, 760, {755}, 754, True),     # ended before the snapshot
    (750, 760, {755}, 755, False),    # running at the snapshot
    (750, 760, {755}, 760, False),    # from xmax on
    (750, 758, set(), 758, False),    # xmax itself (running, the newest)
    # across an epoch boundary: xmax in epoch 1, the id printed modulo 2**32
    (EPOCH - 5, EPOCH + 3, {EPOCH + 1}, EPOCH - 10, True),
    (EPOCH - 5, EPOCH + 3, {EPOCH + 1}, 0, True),
    (EPOCH - 5, EPOCH + 3, {EPOCH + 1}, 1, False),
    (EPOCH - 5, EPOCH + 3, {EPOCH + 1}, 3, False),
    (EPOCH + 5, EPOCH + 9, set(), EPOCH - 1, True),
])
def testsnapshot_sees_of_waldump_xids(xmin: int, xmax: int, running: set[int], xid: int,
                                    seen: bool) -> None:
    assert snapshot_sees(xmin, xmax, running)(xid % EPOCH) is seen


@pytest.mark.parametrize(("stderr", "stopped"), [
    # pg_waldump 18's messages when the record after the last one is not there (yet)
    ("pg_waldump: error: error in WAL record at 0/3000120: record with incorrect prev-link "
     "0/213DC78 at 0/4000028\n", True),
    ("pg_waldump: error: error in WAL record at 0/4001890: invalid record length at "
     "0/40038B0: expected at least 24, got 0\n", True),
    # before the end: records are missing
    ("pg_waldump: error: error in WAL record at 0/3000120: invalid record length at "
     "0/3FFF000: expected at least 24, got 0\n", False),
    ("pg_waldump: error: could not find file \"000000010000000000000004\": No such file "
     "or directory\n", False),
    ("", False),
])
def test_waldump_stopping_at_the_end_is_told_from_missing_wal(stderr: str, stopped: bool
                                                              ) -> None:
    assert stopped_at_end(stderr, 0x4000028) is stopped


def test_waldump_of_another_major_than_the_streamed_wal_is_refused(tmp_path: Path) -> None:
    """The embedded 18's pg_waldump is not asked to read 16's WAL (it would call it
    damaged): a ConfigError naming both majors, before any record is judged."""
    wal = tmp_path / "wal"
    wal.mkdir()
    (wal / "000000010000000000000003").write_bytes(
        (0xD113).to_bytes(2, "little") + bytes(8190))  # a PostgreSQL 16 page magic
    source = ExternalServer({"host": "127.0.0.1", "port": "1"}, embedded(None))
    assert source.tools.major == 18

    with pytest.raises(ConfigError) as caught:
        _target(source, wal, 0x3000028, 0x3000100, 1, "750:760:")

    assert "pg_waldump is PostgreSQL 18's" in caught.value.message
    assert "PostgreSQL 16's" in caught.value.message
