"""Retention's decisions on constructed catalog entries and WAL file names (no server), and
its deletion order on a repository of small real files."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pgvdrill.config import Retention
from pgvdrill.errors import BackupError
from pgvdrill.ops.retention_apply import carry_out
from pgvdrill.ops.retention_plan import Plan, Problems, add_months, plan
from pgvdrill.ops.retention_scan import scan
from pgvdrill.ops.retention_wal import WalArchive, WalFile, segment_size
from pgvdrill.repository import Entry, FileSum, Repository, checksum_files
from pgvdrill.repository.catalog import write_entry
from pgvdrill.wal.names import Segment, format_lsn

NOW = datetime(2025, 11, 15, 3, 0, tzinfo=UTC)
MB16 = 16 * 1024 * 1024
NO_MONTHLY = Retention(monthly_months=0)


def entry(kind: str, days_old: float, *, start: int | None = None, end: int | None = None,
          timeline: int = 1) -> Entry:
    """A catalog entry finished `days_old` before NOW; `start`/`end` are segment numbers."""
    finished = NOW - timedelta(days=days_old)
    return Entry(f"{kind}-{finished:%Y%m%dT%H%M%SZ}", kind, finished.isoformat(),
                 finished.isoformat(), 1.0, {}, {}, {}, [FileSum("f", 1, "0" * 64)],
                 start_lsn=format_lsn(start * MB16 + 0x28) if start is not None else None,
                 end_lsn=format_lsn(end * MB16 + 0x100) if end is not None else None,
                 timeline=timeline if start is not None else None)


def seg(timeline: int, number: int) -> str:
    return Segment(timeline, number).name


def archive(*files: tuple[str, float], history: dict[int, frozenset[int]] | None = None,
            size: int = MB16) -> WalArchive:
    """WAL files given as (name, days old)."""
    return WalArchive(tuple(WalFile(name, NOW - timedelta(days=age), size)
                            for name, age in files), history or {}, size)


def corrupt(*ids: str) -> Problems:
    return lambda e: [f"{e.id}: file f changed (sha256 differs)"] if e.id in ids else []


def kept(decided: Plan) -> dict[str, bool]:
    return {d.name: d.keep for d in (*decided.backups, *decided.wal)}


def why(decided: Plan, name: str) -> str:
    return next(d.why for d in (*decided.backups, *decided.wal) if d.name == name)


def test_logical_backups_older_than_logical_days_go() -> None:
    backups = [entry("logical", days) for days in (20, 10, 6, 1)]
    decided = plan(backups, archive(), corrupt(), NO_MONTHLY, NOW)
    assert [kept(decided)[e.id] for e in backups] == [False, False, True, True]
    assert why(decided, backups[0].id) == ("older than 7 days, not the newest valid logical "
                                           "backup, not a monthly copy")
    assert why(decided, backups[2].id) == "within 7 days"


def test_the_newest_valid_backup_of_a_kind_stays_whatever_its_age() -> None:
    backups = [entry("logical", 50), entry("logical", 40), entry("physical", 90, start=2)]
    decided = plan(backups, archive(), corrupt(), NO_MONTHLY, NOW)
    assert kept(decided) == {backups[0].id: False, backups[1].id: True, backups[2].id: True}
    assert why(decided, backups[1].id) == "the newest valid logical backup, kept whatever its age"


def test_retention_of_zero_days_still_keeps_the_only_valid_backup() -> None:
    only = entry("logical", 0.01)
    decided = plan([only], archive(), corrupt(), Retention(logical_days=0, monthly_months=0),
                   NOW)
    assert kept(decided) == {only.id: True}


def test_a_corrupt_newer_backup_does_not_count_as_the_newest_valid() -> None:
    valid, broken = entry("logical", 40), entry("logical", 35)
    decided = plan([valid, broken], archive(), corrupt(broken.id), NO_MONTHLY, NOW)
    assert kept(decided) == {valid.id: True, broken.id: False}
    assert f"newer: {broken.id} is corrupt: {broken.id}: file f changed" in why(decided, valid.id)
    # a corrupt backup within the days stays (evidence), and still does not count
    young = entry("logical", 1)
    decided = plan([valid, young], archive(), corrupt(young.id), NO_MONTHLY, NOW)
    assert kept(decided) == {valid.id: True, young.id: True}


def test_only_the_backups_whose_validity_matters_are_checked() -> None:
    backups = [entry("logical", days) for days in (30, 20, 3, 2, 1)]
    checked: list[str] = []

    def problems(e: Entry) -> list[str]:
        checked.append(e.id)
        return ["corrupt"] if e is backups[-1] else []

    plan(backups, archive(), problems, NO_MONTHLY, NOW)
    assert checked == [backups[-1].id, backups[-2].id]  # newest first, until a valid one


def test_the_first_valid_backup_of_each_month_is_kept_monthly_months() -> None:
    policy = Retention(monthly_months=12)
    october = [entry("logical", days) for days in (44, 43, 42)]  # Oct 2, 3, 4
    old = entry("logical", 400)  # 2024-10-11: more than 12 months ago
    year_ago = entry("logical", 360)  # 2024-11-20: within 12 months
    decided = plan([old, year_ago, *october, entry("logical", 1)], archive(),
                   corrupt(october[0].id), policy, NOW)
    assert kept(decided)[old.id] is False
    assert kept(decided)[year_ago.id] is True
    assert [kept(decided)[e.id] for e in october] == [False, True, False]
    assert why(decided, october[1].id) == ("the first valid logical backup of 2025-10: a "
                                           "monthly copy, kept 12 months (until 2026-10-03)")


def test_add_months_clamps_the_day() -> None:
    assert add_months(datetime(2025, 1, 31, tzinfo=UTC), 1) == datetime(2025, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2027, 1, 31, tzinfo=UTC), 13) == datetime(2028, 2, 29,
                                                                          tzinfo=UTC)
    assert add_months(datetime(2025, 11, 15, tzinfo=UTC), 12) == datetime(2026, 11, 15,
                                                                           tzinfo=UTC)


def test_wal_goes_only_when_old_and_before_what_retained_base_backups_need() -> None:
    base = entry("physical", 40, start=5)  # the only valid physical backup: kept
    wal = archive(*((seg(1, n), 1 if n == 4 else 45 - n) for n in range(1, 9)),
                  (seg(1, 3) + ".partial", 44), (seg(1, 2) + ".00000028.backup", 44),
                  (seg(1, 5) + ".00000028.backup", 40))
    decided = plan([base], wal, corrupt(), Retention(), NOW)
    keep = kept(decided)
    assert [n for n in (seg(1, 1), seg(1, 2), seg(1, 3)) if keep[n]] == []
    assert keep[seg(1, 3) + ".partial"] is False
    assert keep[seg(1, 2) + ".00000028.backup"] is False
    assert keep[seg(1, 4)] is True  # before the start, but younger than 3 days
    assert why(decided, seg(1, 4)) == "younger than 3 days"
    assert all(keep[seg(1, n)] for n in range(5, 9))  # needed, though 37-40 days old
    assert keep[seg(1, 5) + ".00000028.backup"] is True
    assert why(decided, seg(1, 6)) == (f"needed by {base.id} to recover (from {seg(1, 5)} "
                                       "onwards, on timeline 1 and its descendants)")
    assert why(decided, seg(1, 1)) == ("older than 3 days and needed by no retained physical "
                                       "backup")


def test_the_oldest_retained_physical_backup_marks_where_needed_wal_starts() -> None:
    gone, oldest, newest = (entry("physical", 40, start=3), entry("physical", 20, start=6),
                            entry("physical", 5, start=9))
    wal = archive(*((seg(1, n), 41 - n) for n in range(2, 11)))
    keep = kept(plan([gone, oldest, newest], wal, corrupt(), NO_MONTHLY, NOW))
    assert keep[gone.id] is False
    assert [n for n in range(2, 11) if keep[seg(1, n)]] == [6, 7, 8, 9, 10]


def test_needed_wal_follows_descendant_timelines_only() -> None:
    # timeline 2 branched from 1 in segment 7, timeline 3 from 1 in segment 6, 4 from 2;
    # timeline 5 has no history file: it might descend, so its WAL stays
    history = {2: frozenset({1, 2}), 3: frozenset({1, 3}), 4: frozenset({1, 2, 4})}
    names = [*(seg(1, n) for n in range(4, 10)), *(seg(2, n) for n in range(7, 10)),
             *(seg(3, n) for n in range(6, 10)), seg(4, 9), seg(5, 9),
             "00000002.history", "00000003.history", "00000004.history"]
    wal = archive(*((n, 60) for n in names), history=history)
    on_two = entry("physical", 50, start=8, timeline=2)
    keep = kept(plan([on_two], wal, corrupt(), Retention(), NOW))
    assert sorted(n for n in names if keep[n]) == sorted(
        [seg(2, 8), seg(2, 9), seg(4, 9), seg(5, 9), "00000002.history", "00000003.history",
         "00000004.history"])
    on_one = entry("physical", 50, start=5)
    keep = kept(plan([on_one], wal, corrupt(), Retention(), NOW))
    assert sorted(n for n in names if not keep[n]) == [seg(1, 4)]


def test_a_monthly_physical_copy_keeps_only_its_own_wal_range() -> None:
    monthly = entry("physical", 200, start=2, end=3)  # 2025-04-29: the first of April
    newest = entry("physical", 5, start=10)
    wal = archive(*((seg(1, n), 210 - n) for n in range(1, 13)))
    decided = plan([monthly, newest], wal, corrupt(), Retention(), NOW)
    keep = kept(decided)
    assert keep[monthly.id] is True
    assert [n for n in range(1, 13) if keep[seg(1, n)]] == [2, 3, 10, 11, 12]
    assert why(decided, seg(1, 2)) == (f"needed by {monthly.id} to recover (from {seg(1, 2)} to "
                                       f"{seg(1, 3)}, on timeline 1 and its descendants)")


def test_no_wal_goes_without_a_retained_physical_backup_or_its_start() -> None:
    old_wal = archive((seg(1, 1), 90), (seg(1, 2), 90))
    decided = plan([entry("logical", 1)], old_wal, corrupt(), Retention(), NOW)
    assert not decided.deletions
    assert why(decided, seg(1, 1)).startswith("no physical backup is retained")
    unknown = replace(entry("physical", 1, start=5), start_lsn=None)
    decided = plan([unknown], old_wal, corrupt(), Retention(), NOW)
    assert not decided.deletions
    assert "does not say where its WAL starts" in why(decided, seg(1, 1))


def test_history_files_always_stay() -> None:
    wal = archive(("00000002.history", 400), (seg(2, 1), 400), history={2: frozenset({1, 2})})
    decided = plan([entry("physical", 1, start=9, timeline=2)], wal, corrupt(), Retention(), NOW)
    assert kept(decided) == {decided.backups[0].name: True, "00000002.history": True,
                                  seg(2, 1): False}


def test_the_segment_size_comes_from_the_archived_segments() -> None:
    mb64 = 64 * 1024 * 1024
    files = tuple(WalFile(seg(1, n), NOW - timedelta(days=9), mb64) for n in range(3, 7))
    assert segment_size(files) == mb64
    # with 64 MiB segments a backup starting at 0/14000028 starts in segment 5 (with 16 MiB
    # it would be segment 0x14, and 5 would look deletable)
    base = replace(entry("physical", 1, start=5), start_lsn="0/14000028")
    keep = kept(plan([base], WalArchive(files, {}, mb64), corrupt(), Retention(), NOW))
    assert [n for n in range(3, 7) if keep[seg(1, n)]] == [5, 6]
    assert segment_size(()) == MB16
    with pytest.raises(BackupError, match=r"differ in size \(1 of 67108864 bytes, 1 of 100 "):
        segment_size((files[0], WalFile(seg(1, 7), NOW, 100)))
    with pytest.raises(BackupError, match="differ in size"):
        segment_size((WalFile(seg(1, 7), NOW, 100),))


def test_a_deletion_that_fails_leaves_an_entryless_directory_never_an_entry_without_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Repository(tmp_path / "repo").ensure()
    backups = []
    for days in (20, 1):
        e = entry("logical", days)
        directory = repo.backup_dir("logical", e.id)
        directory.mkdir()
        (directory / "dump").write_bytes(b"archive bytes")
        backups.append(replace(e, files=checksum_files(directory)))
        write_entry(repo, backups[-1])
    logical = repo.dir("logical")
    (logical / "logical-20251115T020000Z").mkdir()  # in progress: no entry yet
    (repo.wal / "notes.txt").write_text("mine")
    contents = scan(repo)
    decided = plan(contents.entries, contents.wal, corrupt(), NO_MONTHLY, NOW)
    assert [d.name for d in decided.deletions] == [backups[0].id]

    def crash(path: Path) -> None:
        raise OSError(f"simulated failure removing {path}")

    monkeypatch.setattr(shutil, "rmtree", crash)
    failed = carry_out(repo, decided, lambda line: None)
    assert failed == [f"logical backup {backups[0].id}: simulated failure removing "
                      f"{repo.backup_dir('logical', backups[0].id)}"]
    after = scan(repo)
    assert [e.id for e in after.entries] == [backups[1].id]  # never an entry without files
    assert repo.backup_dir("logical", backups[0].id).is_dir()
    assert sorted(after.left_alone) == sorted([
        f"{repo.catalog}/.{backups[0].id}.json.deleting: the entry of a backup whose deletion "
        "by retention was interrupted",
        f"{logical}/{backups[0].id}: a deletion by retention was interrupted (its entry is "
        f".{backups[0].id}.json.deleting): not a valid backup; remove both by hand",
        f"{logical}/logical-20251115T020000Z: no catalog entry: a backup in progress, or one "
        "that failed; not a valid backup, never deleted by retention",
        f"{repo.wal}/notes.txt: not an archived WAL file"])
