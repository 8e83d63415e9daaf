"""Timelines in a WAL archive: history files (untrusted: each malformed one named, never a
traceback), the ancestry of a timeline, and the branches a timeline does not descend from."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgvdrill.errors import BackupError
from pgvdrill.wal.continuity import check_continuity
from pgvdrill.wal.timelines import Switch, parse_history, scan

# as PostgreSQL writes them (writeTimeLineHistory): parent, switch LSN, reason; tab-separated
TWO = b"1\t0/5000060\tno recovery target specified\n"
THREE = TWO + b"\n2\t0/7000000\tbefore 2026-11-24 10:00:00.000+00\n"


def test_a_history_file_as_postgresql_writes_it() -> None:
    history = parse_history("00000003.history", THREE)

    assert history.switches == (Switch(1, 0x5000060, "no recovery target specified"),
                                Switch(2, 0x7000000, "before 2026-11-24 10:00:00.000+00"))
    assert history.ancestry == (3, 2, 1) and history.branch_point() == 0x7000000
    assert parse_history("0000000A.history", b"# comment\n1 0/1 \n").ancestry == (10, 1)


@pytest.mark.parametrize(("name", "data", "why"), [
    ("00000002.history", b"", "lists no parent timeline"),
    ("00000002.history", b"one\t0/5000060\treason\n", "line 1 is not '<parent timeline>"),
    ("00000002.history", b"1\t0/50000Z0\treason\n", "line 1 is not"),
    ("00000002.history", b"1 5000060 reason\n", "line 1 is not"),
    ("00000002.history", b"2\t0/5000060\treason\n", "parent timeline 2 is not between 1 and 1"),
    ("00000002.history", b"0\t0/5000060\treason\n", "parent timeline 0 is not between"),
    ("00000003.history", b"2\t0/5000060\tr\n1\t0/7000000\tr\n", "does not follow 2"),
    ("00000003.history", b"1\t0/7000000\tr\n2\t0/5000000\tr\n", "is before the previous"),
    ("00000002.history", b"1\t0/5000060\tbell\x07\n", "not one printable line"),
    ("00000002.history", "1\t0/5000060\tr\u00e9\n".encode(), "is not plain text"),
    ("00000002.history", b"1\t0/1\t" + b"x" * 2000 + b"\n", "not one printable line"),
    ("00000001.history", b"1\t0/1\tr\n", "names timeline 1 or 0"),
    ("../00000002.history", TWO, "is not a timeline history file name"),
    ("00000002.history", b"99999999999\t0/1\tr\n", "line 1 is not"),
])
def test_a_malformed_history_file_is_named_with_its_line(name: str, data: bytes, why: str
                                                         ) -> None:
    with pytest.raises(BackupError) as raised:
        parse_history(name, data)

    assert raised.value.message.startswith(f"timeline history file {name} ")
    assert why in raised.value.message


def write(archive: Path, *names: str, **contents: bytes) -> None:
    archive.mkdir(exist_ok=True)
    for name in names:
        (archive / name).write_bytes(b"")
    for name, data in contents.items():
        (archive / name.replace("_", ".")).write_bytes(data)


def test_a_stray_branch_is_what_the_current_timeline_does_not_descend_from(
        tmp_path: Path) -> None:
    """Timeline 2 branched off 1 (a restored copy promoted and archiving here) while the
    source went on on timeline 1."""
    write(tmp_path, "000000010000000000000004", "000000010000000000000005",
          "000000010000000000000006", "000000020000000000000005",
          "000000010000000000000002.00000028.backup", "README",
          **{"00000002_history": TWO})
    found = scan(tmp_path)

    assert found.timelines == [1, 2] and found.branches() and found.latest() == 2
    assert found.strays(1) == [2]
    assert found.stray_files(2) == {1: ["000000010000000000000006"]}  # after the branch
    assert found.files_of(2) == ["00000002.history", "000000020000000000000005"]
    assert found.describe(2) == "2 (00000002.history: from 1 at 0/5000060: no recovery " \
                                "target specified; 1 WAL file(s))"


def test_one_lineage_does_not_fork(tmp_path: Path) -> None:
    write(tmp_path, "000000010000000000000004", "000000020000000000000005",
          "000000030000000000000007", **{"00000002_history": TWO, "00000003_history": THREE})

    found = scan(tmp_path)

    assert not found.branches() and found.strays(3) == [] and found.strays(1) == [2, 3]


def test_a_malformed_history_file_in_the_archive_is_a_finding_not_a_traceback(
        tmp_path: Path) -> None:
    write(tmp_path, "000000010000000000000002", **{"00000002_history": b"garbage\n"})

    found = scan(tmp_path)

    assert "00000002.history line 1 is not" in found.problems[2]
    assert found.ancestry(2) is None and found.branches()
    with pytest.raises(BackupError, match=r"00000002\.history line 1 is not"):
        check_continuity(tmp_path, 0x2000028, 1)  # follows the latest: reads it, checked
