"""What a restored data directory keeps of the source's configuration (files only)."""

from __future__ import annotations

from pathlib import Path

from pgvdrill.cluster.restored import neutralise


def test_a_copy_keeps_the_wal_sizes_its_segment_size_needs(tmp_path: Path) -> None:
    """initdb --wal-segsize 64 writes min_wal_size = 128MB; PostgreSQL refuses to start a
    copy with the default 80MB ("min_wal_size must be at least twice wal_segment_size")."""
    datadir = tmp_path / "data"
    datadir.mkdir()
    (datadir / "PG_VERSION").write_text("18\n")
    (datadir / "postgresql.conf").write_text(
        "port = 6543\nmax_wal_size = 1GB\nmin_wal_size = 128MB\narchive_mode = on\n")

    done = neutralise(datadir, tmp_path / "kept", tmp_path / "socket",
                      has_library=lambda name: True, control={})

    assert done.carried == {"min_wal_size": "128MB", "max_wal_size": "1GB"}
    assert sorted(done.dropped) == ["archive_mode", "port"]
    text = (datadir / "postgresql.conf").read_text()
    assert "min_wal_size = '128MB'" in text and "archive_mode = 'off'" in text
