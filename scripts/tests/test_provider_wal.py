"""The WAL a provider drill fetches (drill.provider_wal): which files, from which timeline,
where it stops, and when the missing file is a gap. The provider here is a directory of
files (pgvdrill's own logic under test, not a tool's); segments are 1 MiB."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgvdrill.drill.provider_wal import FetchedWal, fetch_archive
from pgvdrill.errors import BackupError
from pgvdrill.providers.base import Provider, ProviderBackup, Restored, ToolCheck
from pgvdrill.wal.names import Segment

SIZE = 1 << 20


class DirectoryArchive(Provider):
    """An archive that is a directory; `listing`: what wal_names says (None: no listing)."""

    name = "fake"
    type = "fake"

    def __init__(self, root: Path, listing: list[str] | None = None) -> None:
        self.root = root
        self.listing = listing
        self.asked: list[str] = []

    def fetch_wal(self, name: str, dest: Path) -> bool:
        self.asked.append(name)
        if not (self.root / name).is_file():
            return False
        dest.write_bytes((self.root / name).read_bytes())
        return True

    def wal_names(self) -> list[str] | None:
        return self.listing

    def version(self) -> str:
        raise NotImplementedError

    def backups(self) -> list[ProviderBackup]:
        raise NotImplementedError

    def restore(self, backup: ProviderBackup, into: Path) -> Restored:
        raise NotImplementedError

    def checks(self) -> list[ToolCheck]:
        raise NotImplementedError

    def verify(self, backup: ProviderBackup) -> ToolCheck:
        raise NotImplementedError


def _segment(root: Path, timeline: int, number: int, size: int = SIZE) -> str:
    name = Segment(timeline, number, SIZE).name
    (root / name).write_bytes(b"\0" * size)
    return name


@pytest.fixture
def into(tmp_path: Path) -> Path:
    """Where the drill fetches to (`archive`, fixtures.wal: the provider's archive)."""
    path = tmp_path / "wal"
    path.mkdir()
    return path


def test_segments_follow_the_newest_timeline_of_the_history(archive: Path, into: Path) -> None:
    """Timeline 2 branched inside segment 3: 1..2 from timeline 1, 3.. from timeline 2 (the
    switch segment too, though timeline 1 has one), up to the first missing one."""
    old = [_segment(archive, 1, n) for n in (1, 2, 3, 4)]
    new = [_segment(archive, 2, n) for n in (3, 4)]
    (archive / "00000002.history").write_text("1\t0/300100\tno recovery target specified\n")

    fetched = fetch_archive(DirectoryArchive(archive), 0x100028, 1, into, SIZE)

    assert fetched.histories == ("00000002.history",)
    assert fetched.segments == (old[0], old[1], *new)
    assert fetched.missing == Segment(2, 5, SIZE).name
    assert sorted(p.name for p in into.iterdir()) == sorted(
        ["00000002.history", old[0], old[1], *new])
    reach = fetched.reach()
    assert reach is not None and reach.lsn == 4 * SIZE and reach.past


def test_history_files_are_looked_for_upward_from_the_backups_timeline(
        archive: Path, into: Path) -> None:
    provider = DirectoryArchive(archive)
    (archive / "00000002.history").write_text("1\t0/100000\tx\n")
    (archive / "00000003.history").write_text("1\t0/100000\tx\n2\t0/200000\tx\n")
    _segment(archive, 3, 2)

    fetched = fetch_archive(provider, 0x200028, 2, into, SIZE)

    assert fetched.histories == ("00000002.history", "00000003.history")
    assert provider.asked[:3] == ["00000002.history", "00000003.history", "00000004.history"]
    assert fetched.segments == (Segment(3, 2, SIZE).name,)


def test_a_segment_missing_before_listed_ones_is_a_gap_named(archive: Path, into: Path) -> None:
    names = [_segment(archive, 1, n) for n in (1, 2, 4, 5)]
    listing = [*names, "00000001.history", "../../etc/passwd", Segment(1, 6, SIZE).name
               + ".partial", Segment(7, 9, SIZE).name]

    fetched = fetch_archive(DirectoryArchive(archive, listing), SIZE + 40, 1, into, SIZE)

    assert fetched.segments == tuple(names[:2])
    (problem,) = fetched.problems("provider fake")
    assert problem.startswith(f"WAL segment {Segment(1, 3, SIZE).name} is missing from "
                              "provider fake's archive")
    assert f"{names[2]} .. {names[3]}" in problem


def test_the_archives_end_is_no_problem(archive: Path, into: Path) -> None:
    names = [_segment(archive, 1, n) for n in (1, 2)]
    stray = Segment(2, 5, SIZE).name  # a timeline the followed history does not hold

    fetched = fetch_archive(DirectoryArchive(archive, [*names, stray]), SIZE, 1, into, SIZE)

    assert fetched.problems("provider fake") == []
    assert "not in the archive" in str(fetched.as_dict()["archive_end"])


def test_without_a_listing_the_sources_archiver_tells(archive: Path, into: Path) -> None:
    """Beyond the missing segment: a gap; at or before it: the archive's end; no word or
    a name that is no segment: unknown."""
    [_segment(archive, 1, n) for n in (1, 2, 4)]
    provider = DirectoryArchive(archive)

    def fetched(archived: str | None) -> FetchedWal:
        for path in into.iterdir():
            path.unlink()
        return fetch_archive(provider, SIZE, 1, into, SIZE, archived)

    (gap,) = fetched(Segment(1, 4, SIZE).name).problems("p")
    assert f"WAL segment {Segment(1, 3, SIZE).name} is missing" in gap
    assert "pg_stat_archiver" in gap
    end = fetched(Segment(1, 2, SIZE).name)
    assert end.problems("p") == [] and "not in the archive" in str(end.as_dict()["archive_end"])
    for said in (None, "garbage; rm -rf /"):
        unknown = fetched(said)
        assert unknown.problems("p") == []
        assert str(unknown.as_dict()["archive_end"]).startswith("unknown")
    for path in into.iterdir():
        path.unlink()
    empty = fetch_archive(provider, 6 * SIZE, 1, into, SIZE, Segment(1, 9, SIZE).name)
    assert empty.segments == () and empty.problems("p") == []  # not where it archives


def test_without_a_listing_or_the_archivers_word_the_sources_wal_position_tells(
        archive: Path, into: Path) -> None:
    """B6: segments 1, 2 and 4 archived, 3 gone, the archiver's statistics reset: a source
    already writing segment 5 before the drill had completed 3 and 4, so the archive's end
    at 3 is WAL missing (or never archived); a source writing 4 may still be archiving 3
    (one segment of slack); no position either: unknown, said."""
    [_segment(archive, 1, n) for n in (1, 2, 4)]
    provider = DirectoryArchive(archive)

    def fetched(source_lsn: int | None) -> FetchedWal:
        for path in into.iterdir():
            path.unlink()
        return fetch_archive(provider, SIZE, 1, into, SIZE, None, source_lsn)

    (gap,) = fetched(5 * SIZE + 40).problems("p")
    assert f"WAL segment {Segment(1, 3, SIZE).name} is not in p's archive" in gap
    assert "0/500028" in gap and fetched(5 * SIZE + 40).unknown() is None
    lagging = fetched(4 * SIZE + 40)
    assert lagging.problems("p") == [] and lagging.unknown() is None
    assert "not in the archive" in str(lagging.as_dict()["archive_end"])
    silent = fetched(None)
    assert silent.problems("p") == [] and silent.unknown()
    assert str(silent.as_dict()["archive_end"]).startswith("unknown")
    for path in into.iterdir():
        path.unlink()
    # an archive that gives nothing may be none of the source's: unknown, not a gap
    nothing = fetch_archive(provider, 6 * SIZE, 1, into, SIZE, None, 9 * SIZE)
    assert nothing.problems("p") == [] and "gave no WAL segment" in str(nothing.unknown())


def test_a_segment_of_the_wrong_size_is_refused(archive: Path, into: Path) -> None:
    _segment(archive, 1, 1)
    _segment(archive, 1, 2, size=SIZE - 1)
    with pytest.raises(BackupError, match="1048575 bytes, not the segment size"):
        fetch_archive(DirectoryArchive(archive), SIZE, 1, into, SIZE)


def test_a_history_file_that_is_no_history_is_refused(archive: Path, into: Path) -> None:
    (archive / "00000002.history").write_text("this is not a history file\n")
    with pytest.raises(BackupError):
        fetch_archive(DirectoryArchive(archive), SIZE, 1, into, SIZE)


def test_a_symlink_for_a_fetched_file_is_refused(archive: Path, into: Path,
                                                 tmp_path: Path) -> None:
    class Linking(DirectoryArchive):
        def fetch_wal(self, name: str, dest: Path) -> bool:
            dest.symlink_to(tmp_path)
            return True

    with pytest.raises(BackupError, match="other than a regular file"):
        fetch_archive(Linking(archive), SIZE, 1, into, SIZE)
