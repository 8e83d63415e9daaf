"""Refusing recovery targets beyond the archive: reading pg_waldump's output (the tool is
faked here; drills/test_ops_restore.py runs the real one against a real archive)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pgvdrill.cli.main import build_parser
from pgvdrill.errors import RestoreError
from pgvdrill.proc.runner import Result, ToolCall
from pgvdrill.wal.continuity import Continuity
from pgvdrill.wal.pitr import Target
from pgvdrill.wal.reach import last_transaction_end, refuse_beyond_archive, stopping_points

SEG = ["000000010000000000000003", "000000010000000000000004", "000000010000000000000005"]
COMMIT = ("rmgr: Transaction len (rec/tot):     34/    34, tx:        756, lsn: 0/04000420, "
          "prev 0/040003E0, desc: COMMIT 2026-11-24 19:59:29.616476 UTC\n")
ABORT = COMMIT.replace("COMMIT 2026-11-24 19:59:29.616476", "ABORT 2026-11-24 19:59:30.5")
RESTORE_POINT = ("rmgr: XLOG        len (rec/tot):     98/    98, tx:          0, lsn: "
                 "0/05000028, prev 0/04000420, desc: RESTORE_POINT before-upgrade\n")
SWITCH = ("rmgr: XLOG        len (rec/tot):     24/    24, tx:          0, lsn: 0/05000098, "
          "prev 0/05000028, desc: SWITCH \n")
LAST = datetime(2026, 11, 24, 19, 59, 29, 616476, tzinfo=UTC)


class FakeWaldump:
    """pg_waldump answering per segment with (exit code, output)."""

    def __init__(self, answers: Mapping[str, tuple[int, str]]) -> None:
        self.answers = answers
        self.read: list[str] = []

    def run_tool(self, call: ToolCall) -> Result:
        assert call.tool == "pg_waldump" and call.env == {"TZ": "UTC"} and not call.check
        segment = str(call.args[-1])
        self.read.append(segment)
        code, out = self.answers.get(segment, (0, ""))
        return Result([call.tool, *map(str, call.args)], code, out, "", 0.0)


def test_the_newest_segment_with_a_transaction_end_decides() -> None:
    tools = FakeWaldump({SEG[1]: (0, COMMIT)})
    assert last_transaction_end(tools, Path("/a"), SEG) == (LAST, True)
    assert tools.read == [SEG[2], SEG[1]]  # newest first, stopping at the answer


def test_an_abort_ends_a_transaction_too() -> None:
    found, certain = last_transaction_end(FakeWaldump({SEG[2]: (0, COMMIT + ABORT)}),
                                          Path("/a"), SEG)
    assert found == datetime(2026, 11, 24, 19, 59, 30, 500000, tzinfo=UTC) and certain


def test_an_unreadable_newer_segment_or_a_later_restore_point_leaves_it_open() -> None:
    assert last_transaction_end(FakeWaldump({SEG[2]: (1, ""), SEG[1]: (0, COMMIT)}),
                                Path("/a"), SEG) == (None, False)
    assert last_transaction_end(FakeWaldump({SEG[2]: (0, COMMIT + RESTORE_POINT + SWITCH)}),
                                Path("/a"), SEG) == (None, False)


def test_a_segment_read_partly_still_counts() -> None:
    assert last_transaction_end(FakeWaldump({SEG[2]: (1, COMMIT)}), Path("/a"), SEG) \
        == (LAST, True)


def reach() -> Continuity:
    return Continuity(1, 0x3000028, None, tuple(SEG), 0x6000000, None, False)


@pytest.mark.parametrize(("value", "inclusive", "refused"), [
    ("2026-11-24 19:59:29.616475+00", True, False),
    ("2026-11-24 19:59:29.616476+00", True, True),  # stops only at a later transaction
    ("2026-11-24 19:59:29.616476+00", False, False),  # stops before this one
    ("2026-11-24 21:59:29.616477+02", False, True),
])
def test_a_time_target_needs_a_transaction_that_ends_after_it(
        value: str, inclusive: bool, refused: bool) -> None:
    target = Target("time", value, inclusive=inclusive)
    tools = FakeWaldump({SEG[2]: (0, COMMIT)})
    if refused:
        with pytest.raises(RestoreError, match=re.escape(
                "not before the archived WAL ends: its last transaction ended at "
                "2026-11-24T19:59:29.616476+00:00")):
            refuse_beyond_archive(tools, Path("/a"), reach(), target)
    else:
        refuse_beyond_archive(tools, Path("/a"), reach(), target)


def test_an_lsn_past_the_last_contiguous_segment_is_refused() -> None:
    tools = FakeWaldump({})
    refuse_beyond_archive(tools, Path("/a"), reach(), Target("lsn", "0/6000000"))
    with pytest.raises(RestoreError, match="LSN 0/6000001 is beyond the archived WAL, which "
                       "carries recovery to 0/6000000"):
        refuse_beyond_archive(tools, Path("/a"), reach(), Target("lsn", "0/6000001"))
    assert tools.read == []


def test_restore_points_and_ended_transactions_are_listed_in_order() -> None:
    tools = FakeWaldump({SEG[1]: (0, COMMIT + RESTORE_POINT), SEG[2]: (1, ABORT)})
    assert stopping_points(tools, Path("/a"), SEG) == (["before-upgrade"], {756})
    assert tools.read == SEG


def test_an_unreadable_segment_or_a_prepared_transaction_leaves_it_open() -> None:
    assert stopping_points(FakeWaldump({SEG[1]: (1, "")}), Path("/a"), SEG) is None
    prepared = COMMIT.replace("desc: COMMIT ", "desc: COMMIT_PREPARED 757: ")
    assert stopping_points(FakeWaldump({SEG[0]: (0, prepared)}), Path("/a"), SEG) is None


@pytest.mark.parametrize(("target", "refusal"), [
    (Target("name", "before-upgrade"), None),
    (Target("name", "before-upgade"), "restore point 'before-upgade' is not in the archived "
                                      "WAL after the backup's start"),
    (Target("xid", "756"), None),
    (Target("xid", str(2**32 + 756)), None),  # with its epoch
    (Target("xid", "757"), "transaction 757 does not commit or abort in the archived WAL"),
])
def test_a_name_or_xid_target_must_be_in_the_archive(target: Target, refusal: str | None
                                                     ) -> None:
    tools = FakeWaldump({SEG[1]: (0, COMMIT + RESTORE_POINT)})
    if refusal is None:
        refuse_beyond_archive(tools, Path("/a"), reach(), target)
    else:
        with pytest.raises(RestoreError, match=re.escape(refusal)):
            refuse_beyond_archive(tools, Path("/a"), reach(), target)


def test_the_refusals_hint_names_a_command_that_parses() -> None:
    """The hint once said `--target latest`, which restore pitr's parser rejects."""
    command = "pgvdrill restore pitr physical-1 --pgdata /srv/pg/pitr --target-timeline 1"
    with pytest.raises(RestoreError) as refusal:
        refuse_beyond_archive(FakeWaldump({}), Path("/a"), reach(), Target("lsn", "1/0"),
                              command)

    hint = refusal.value.hint or ""
    assert f"no target option ({command})" in hint and "--target latest" not in hint
    build_parser().parse_args(shlex.split(command)[1:])
