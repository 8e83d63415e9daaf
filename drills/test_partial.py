"""Partial dumps and partial restores (runbook sections 2 and 3): one table, several, a
pattern, one schema, exclusions, data only, schema only, by section, in parallel.

Every pairing checks that exactly the intended tables arrived, that they equal the
source, and that tables already in the target did not change. The runbook's own partial
restores that lose something are drilled too, and must be caught.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fixtures.options import DrillOptions
from pgvdrill.cluster import Cluster
from pgvdrill.dataset import Dataset
from pgvdrill.drill.logical import LogicalDrill, restore_dump_and_verify
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.logical.dump import DUMP_SETTINGS, PARTIAL_DUMP_SETTINGS, DumpResult, DumpSetting
from pgvdrill.logical.pairing import refusal
from pgvdrill.logical.restore import (
    ALL_RESTORE_SETTINGS,
    PARTIAL_RESTORE_SETTINGS,
    RestoreSetting,
)
from pgvdrill.verify import Snapshot, snapshot

# Restores of the runbook that verification must fail, and the problem it must name.
PITFALLS = {
    "table-runbook": "index public.documents_embedding_hnsw_cos on public.documents is "
                     "missing in the target",
    "data-runbook": "index public.account_behaviors_behavior_ivfflat_l2 on "
                    "public.account_behaviors: recall@10 is ",
}
FULL = DUMP_SETTINGS["custom-z1"]
PAIRS = [pytest.param(FULL, r, id=f"{FULL.name}-{r.name}")
         for r in PARTIAL_RESTORE_SETTINGS.values() if refusal(FULL, r) is None]
# Each partial dump with the restores it is made for (the full matrix: --drill-matrix full).
PARTIAL_DUMP_RESTORES = ("fresh", "scoped", "table-runbook", "data-into-schema",
                         "data-runbook")
PAIRS += [pytest.param(d, r, id=f"{d.name}-{r.name}",
                       marks=[] if r.name in PARTIAL_DUMP_RESTORES else [pytest.mark.full])
          for d in PARTIAL_DUMP_SETTINGS.values() for r in ALL_RESTORE_SETTINGS.values()
          if refusal(d, r) is None]


@pytest.fixture
def drill(dumps: Callable[[DumpSetting], DumpResult], target: Cluster,
          source_snapshot: Snapshot, options: DrillOptions, dataset: Dataset,
          record_drill: Callable[[LogicalDrill], None]
          ) -> Callable[[DumpSetting, RestoreSetting], LogicalDrill]:
    schema_only = PARTIAL_DUMP_SETTINGS["schema-only"]

    def run(dump_setting: DumpSetting, restore_setting: RestoreSetting) -> LogicalDrill:
        result = restore_dump_and_verify(
            dumps(dump_setting), target, SOURCE_DB, restore_setting, source_snapshot,
            data=dataset, recall_threshold=options.recall_threshold,
            schema_source=dumps(schema_only).archive)
        record_drill(result)
        return result

    return run


@pytest.mark.parametrize(("dump_setting", "restore_setting"), PAIRS)
def test_partial_drill(
    drill: Callable[[DumpSetting, RestoreSetting], LogicalDrill],
    dump_setting: DumpSetting, restore_setting: RestoreSetting,
) -> None:
    result = drill(dump_setting, restore_setting)

    if restore_setting.name in PITFALLS:
        assert not result.ok, f"{restore_setting.name} should have been caught"
        assert any(PITFALLS[restore_setting.name] in p
                   for p in result.verification.problems()), result.verification.problems()
    else:
        result.verification.raise_for_problems()
    assert result.verification.check("arrived").ok


def test_partial_sectioned_restore_times_each_section(
    drill: Callable[[DumpSetting, RestoreSetting], LogicalDrill],
) -> None:
    result = drill(FULL, PARTIAL_RESTORE_SETTINGS["sectioned"])

    assert [p.phase for p in result.restore.phases] == ["pre-data", "data", "post-data"]
    assert all(p.seconds > 0 for p in result.restore.phases)
    result.verification.raise_for_problems()


def test_partial_parallel_and_single_job_restores_are_identical(
    dumps: Callable[[DumpSetting], DumpResult], make_cluster: Callable[..., Cluster],
    source_snapshot: Snapshot,
) -> None:
    dumped = dumps(FULL)
    contents = []
    for name in ("fresh", "parallel-j2"):
        target = make_cluster(name)
        restore_dump_and_verify(dumped, target, SOURCE_DB, ALL_RESTORE_SETTINGS[name],
                           source_snapshot).verification.raise_for_problems()
        with target.connect(SOURCE_DB) as conn:
            contents.append(snapshot(conn).contents)

    single, parallel = contents
    assert single.keys() == parallel.keys()
    assert all(single[t] == parallel[t] for t in single)


def test_partial_table_into_existing_database_leaves_other_tables_alone(
    drill: Callable[[DumpSetting, RestoreSetting], LogicalDrill],
) -> None:
    result = drill(FULL, PARTIAL_RESTORE_SETTINGS["table-into-existing"])

    result.verification.raise_for_problems()
    untouched = result.verification.check("untouched")
    assert untouched.ok and untouched.seconds >= 0
