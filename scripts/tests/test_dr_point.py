"""Which commits a source's snapshot sees, as the DR drill's comparison point asks it of
pg_waldump's 32-bit transaction ids (pgvdrill.ops.dr_point)."""

from __future__ import annotations

import pytest

from pgvdrill.ops.dr_point import snapshot_sees

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
