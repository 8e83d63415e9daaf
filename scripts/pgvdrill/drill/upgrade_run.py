"""Running the upgrade drills of a plan: the downgrade refused first, then each mode."""

from __future__ import annotations

from pathlib import Path

from pgvdrill.cluster.local import LocalBackend
from pgvdrill.drill.record import DrillResult, Progress, run_cases
from pgvdrill.drill.upgrade import Mode, UpgradeFailure, UpgradePlan, refuse_downgrade
from pgvdrill.drill.upgrade_dump import dump_upgrade
from pgvdrill.drill.upgrade_pg import pg_upgrade_upgrade
from pgvdrill.errors import DrillError


def run_upgrades(source: LocalBackend, target: LocalBackend, plan: UpgradePlan,
                 outdir: Path, progress: Progress) -> list[DrillResult]:
    """Each mode of `plan` from `source`'s installation to `target`'s, reported as it ends;
    a `RestoreError` before anything starts when it would be a downgrade."""
    refuse_downgrade(source.installation, target.installation, plan.modes)
    versions = f"{source.installation.version}->{target.installation.version}"

    def drill(mode: Mode) -> DrillResult:
        if mode == "dump":
            return dump_upgrade(source, target, plan, outdir / "upgrade-dump", progress)
        return pg_upgrade_upgrade(source, target, plan, progress)

    def failed(mode: Mode, error: DrillError) -> DrillResult:
        return UpgradeFailure(f"upgrade:{mode}:{versions}", "upgrade", error, stage=mode)

    return run_cases(plan.modes, drill, failed, progress, label=lambda mode: f"upgrade {mode}")
