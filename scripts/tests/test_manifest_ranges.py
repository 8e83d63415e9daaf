"""A base backup's backup_manifest read as the untrusted input it is (physical.manifest),
and the LSNs a tool lists read by the provider drill (drill.provider.backup_point): each
damage a BackupError naming it, never a traceback (B14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pgvdrill.drill.provider import backup_point
from pgvdrill.errors import BackupError
from pgvdrill.physical.manifest import WalRange, manifest_ranges
from pgvdrill.providers.base import ProviderBackup


def _manifest(tmp_path: Path, ranges: object) -> Path:
    path = tmp_path / "backup_manifest"
    path.write_text(json.dumps({"WAL-Ranges": ranges}))
    return path


def test_a_manifests_ranges_are_read_checked(tmp_path: Path) -> None:
    ranges = [{"Timeline": 2, "Start-LSN": "0/5000028", "End-LSN": "0/a000100"}]
    assert manifest_ranges(_manifest(tmp_path, ranges)) == [
        WalRange(2, "0/5000028", "0/A000100")]


@pytest.mark.parametrize("ranges, why", [
    ([], "lists no WAL range"),
    ([{"Timeline": 0, "Start-LSN": "0/1", "End-LSN": "0/2"}], "timeline 0"),
    ([{"Timeline": 2**32, "Start-LSN": "0/1", "End-LSN": "0/2"}], "timeline 4294967296"),
    ([{"Timeline": "1", "Start-LSN": "0/1", "End-LSN": "0/2"}], "timeline '1'"),
    ([{"Timeline": 1, "Start-LSN": "zz", "End-LSN": "0/1"}], "'zz' is not an LSN"),
    ([{"Timeline": 1, "Start-LSN": "0/1", "End-LSN": "-1/1"}], "'-1/1' is not an LSN"),
    ([{"Timeline": 1, "Start-LSN": "0/9", "End-LSN": "0/1"}], "after its end"),
    (["0/1"], "not an object"),
    ([{"Timeline": 1}], "Start-LSN"),
])
def test_a_damaged_manifest_is_a_backup_error_naming_it(
        tmp_path: Path, ranges: object, why: str) -> None:
    with pytest.raises(BackupError, match="backup_manifest") as raised:
        manifest_ranges(_manifest(tmp_path, ranges))
    assert why in raised.value.message


def test_a_manifest_nested_too_deep_is_a_backup_error(tmp_path: Path) -> None:
    path = tmp_path / "backup_manifest"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BackupError, match="nested too deep"):
        manifest_ranges(path)


@pytest.mark.parametrize("start, end", [("zz", None), ("0/1", "1/zz")])
def test_a_tools_lsn_that_is_no_lsn_is_a_backup_error(
        tmp_path: Path, start: str, end: str | None) -> None:
    listed = ProviderBackup("b1", "physical", start_lsn=start, end_lsn=end, timeline=1)
    with pytest.raises(BackupError, match="not an LSN"):
        backup_point(listed, tmp_path)
