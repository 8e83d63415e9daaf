"""The full logical drill: pg_dump in each setting, pg_restore each way, verify.

Reads like the runbook: dump vector_db (section 2), restore it fresh, over an existing
database with --clean --if-exists, and in parallel (section 3), then prove the copy.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fixtures.options import DrillOptions
from pgvdrill.cluster import Cluster
from pgvdrill.dataset import Dataset
from pgvdrill.drill import LogicalDrill, restore_and_verify
from pgvdrill.logical.dump import DUMP_SETTINGS, DumpResult, DumpSetting
from pgvdrill.logical.restore import RESTORE_SETTINGS, RestoreSetting
from pgvdrill.source import SOURCE_DB
from pgvdrill.verify import Snapshot


@pytest.mark.parametrize("restore_setting", RESTORE_SETTINGS.values(), ids=lambda s: s.name)
@pytest.mark.parametrize("dump_setting", DUMP_SETTINGS.values(), ids=lambda s: s.name)
def test_logical_full_drill(
    dumps: Callable[[DumpSetting], DumpResult], target: Cluster, source_snapshot: Snapshot,
    options: DrillOptions, dataset: Dataset, dump_setting: DumpSetting,
    restore_setting: RestoreSetting, record_drill: Callable[[LogicalDrill], None],
) -> None:
    dumped = dumps(dump_setting)
    assert dumped.archive.entries("TABLE DATA"), "the dump holds no table data"

    drill = restore_and_verify(dumped, target, SOURCE_DB, restore_setting, source_snapshot,
                               data=dataset, recall_threshold=options.recall_threshold)
    record_drill(drill)

    drill.verification.raise_for_problems()


def test_dump_lists_the_runbook_tables(dumps: Callable[[DumpSetting], DumpResult]) -> None:
    """The runbook's content check, by object identity rather than by substring."""
    archive = dumps(DUMP_SETTINGS["custom-z9"]).archive
    tables = {e.identity for e in archive.entries("TABLE")}
    for table in ("documents", "account_behaviors", "product_embeddings"):
        assert ("TABLE", "public", table) in tables
    assert ("EXTENSION", "-", "vector") in {e.identity for e in archive.entries("EXTENSION")}
