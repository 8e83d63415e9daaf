"""A backup's postgresql.conf is written by whoever controlled the source (or the
repository): reading it must end, and what pgvdrill writes back from it must be read by
PostgreSQL as the value it carried, nothing more."""

from __future__ import annotations

from pathlib import Path

from pgvdrill.cluster.base import quote
from pgvdrill.cluster.conffile import read_conf
from pgvdrill.cluster.restored import neutralise


def test_self_including_files_are_read_a_bounded_number_of_times(tmp_path: Path) -> None:
    """Three includes of itself per file, ten levels deep: 88573 reads (3^11 / 2)."""
    (tmp_path / "postgresql.conf").write_text("include 'postgresql.conf'\n" * 3)

    read = read_conf(tmp_path / "postgresql.conf", tmp_path)

    assert len(read.files) <= 1000
    assert any("include loop" in problem for problem in read.problems)
    assert len(read.problems) < 50  # said, not repeated for every include left out


def test_a_carried_value_holding_a_newline_stays_one_setting(tmp_path: Path) -> None:
    """A value PostgreSQL read from a \\n escape, written back as one line."""
    datadir = tmp_path / "data"
    datadir.mkdir()
    (datadir / "postgresql.conf").write_text(
        "default_text_search_config = 'pg_catalog.simple\\nrestore_command = "
        "''cp /production/archive/%f %p''\\n#'\n")

    neutralise(datadir, tmp_path / "kept", tmp_path / "socket",
               has_library=lambda name: False, control={})

    written = (datadir / "postgresql.conf").read_text()
    read = read_conf(datadir / "postgresql.conf", datadir)
    assert "restore_command" not in read.settings, written
    assert not read.problems, read.problems
    assert read.settings["default_text_search_config"].value.startswith(
        "pg_catalog.simple\nrestore_command")


def test_quote_writes_one_line() -> None:
    assert "\n" not in quote("a\nb\rc") and "\r" not in quote("a\nb\rc")
