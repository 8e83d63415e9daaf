"""What the DR drill's comparison point reads (pgvdrill.drill.dr_point): which commits a
source's snapshot sees, asked of pg_waldump's 32-bit transaction ids, and whether
pg_waldump read every record up to the end it was given."""

from __future__ import annotations

import pytest

from pgvdrill.drill.dr_point import snapshot_sees, stopped_at_end

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
