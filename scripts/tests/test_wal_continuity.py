"""WAL names and archive continuity on archives of empty files named like real ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgvdrill.errors import BackupError
from pgvdrill.wal.continuity import check_continuity
from pgvdrill.wal.names import Segment, format_lsn, parse_lsn

MB16 = 16 * 1024 * 1024


def archive_of(tmp_path: Path, *names: str, history: dict[int, str] | None = None) -> Path:
    for name in names:
        (tmp_path / name).touch()
    for timeline, text in (history or {}).items():
        (tmp_path / f"{timeline:08X}.history").write_text(text)
    return tmp_path


def seg(timeline: int, number: int) -> str:
    return Segment(timeline, number).name


def test_lsn_and_segment_names_round_trip() -> None:
    assert parse_lsn("0/A000000") == 0xA000000
    assert format_lsn(parse_lsn("16/B374D848")) == "16/B374D848"
    assert Segment.containing(parse_lsn("1/A000028"), 3).name == "00000003000000010000000A"
    assert Segment.from_name("00000003000000010000000A") == Segment(3, 0x10A)
    assert Segment(1, 5, 64 * 1024 * 1024).name == "000000010000000000000005"
    with pytest.raises(ValueError, match="not an LSN"):
        parse_lsn("0/3000000; DROP")


def test_a_complete_archive_reaches_the_target(tmp_path: Path) -> None:
    archive = archive_of(tmp_path, *(seg(1, n) for n in range(2, 8)))

    found = check_continuity(archive, 0x2000028, 1, target_lsn=0x7000100)

    assert found.gap is None
    assert found.segments == tuple(seg(1, n) for n in range(2, 8))
    assert found.reachable == 8 * MB16
    found.require()


def test_the_first_gap_is_named(tmp_path: Path) -> None:
    archive = archive_of(tmp_path, *(seg(1, n) for n in (2, 3, 4, 6, 7, 8, 9, 11)))

    found = check_continuity(archive, 0x2000028, 1, target_lsn=0xB000000)

    assert found.gap == ("segment 000000010000000000000005 is missing: recovery beyond "
                         "0/5000000 is impossible")
    assert found.reachable == 0x5000000
    with pytest.raises(BackupError, match="000000010000000000000005 is missing"):
        found.require()


def test_without_a_target_a_hole_before_the_last_segment_is_a_gap(tmp_path: Path) -> None:
    archive = archive_of(tmp_path, seg(1, 2), seg(1, 4))

    assert check_continuity(archive, 0x2000028, 1).gap is not None
    assert check_continuity(archive, 0x4000028, 1).gap is None


def test_timelines_are_followed_through_history_files(tmp_path: Path) -> None:
    # timeline 2 branched from 1 inside segment 4: segment 4 onwards is read from timeline 2,
    # timeline 1's later segments (the old primary went on) are ignored
    archive = archive_of(tmp_path, seg(1, 2), seg(1, 3), f"{seg(1, 4)}.partial", seg(1, 5),
                         seg(2, 4), seg(2, 5), seg(2, 6),
                         history={2: "1\t0/4000100\tbefore 2025-11-01 10:00:00+00\n"})

    found = check_continuity(archive, 0x2000028, 1, target_lsn=0x6000000)

    assert found.timeline == 2
    assert found.segments == (seg(1, 2), seg(1, 3), seg(2, 4), seg(2, 5), seg(2, 6))
    assert found.gap is None
    on_one = check_continuity(archive, 0x2000028, 1, timeline=1)  # only a .partial of 4
    assert on_one.gap is not None and on_one.gap.startswith(f"segment {seg(1, 4)} is missing")


def test_a_missing_history_file_is_named(tmp_path: Path) -> None:
    archive = archive_of(tmp_path, seg(1, 2), seg(2, 3))

    with pytest.raises(BackupError, match=r"00000002\.history is missing"):
        check_continuity(archive, 0x2000028, 1, timeline=2)


def test_a_backup_after_the_branch_point_is_not_on_the_path(tmp_path: Path) -> None:
    archive = archive_of(tmp_path, seg(1, 5), seg(2, 4),
                         history={2: "1\t0/4000100\tno recovery target specified\n"})

    with pytest.raises(BackupError, match="not on the history of timeline 2"):
        check_continuity(archive, 0x5000028, 1)


def test_partial_segments_count_only_when_asked(tmp_path: Path) -> None:
    archive = archive_of(tmp_path, seg(1, 2), f"{seg(1, 3)}.partial")

    assert check_continuity(archive, 0x2000028, 1, target_lsn=0x3000100).gap is not None
    found = check_continuity(archive, 0x2000028, 1, target_lsn=0x3000100, partial=True)
    assert found.gap is None and found.partial
