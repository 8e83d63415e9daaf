"""Upgrade drills: a pgvector database moved from an older PostgreSQL and pgvector to a
newer one, each step timed (the upgrade's RTO), then verified against the source.

Two modes: `dump` (the target's pg_dump reads the source, pg_restore writes the target,
the extension ends at the target's version: upgrade_dump.py) and `pg_upgrade` (the data
directory carried over, the update scripts pg_upgrade writes applied: upgrade_pg.py). A
downgrade is refused before anything starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pgvdrill.capabilities import version_key
from pgvdrill.cluster import Cluster
from pgvdrill.dataset import Dataset
from pgvdrill.drill.record import DrillFailure
from pgvdrill.errors import RestoreError
from pgvdrill.installation import Installation
from pgvdrill.report.record import DrillEntry
from pgvdrill.timing import Item, Phase
from pgvdrill.verify import Verification

Mode = Literal["dump", "pg_upgrade"]
MODES: tuple[Mode, ...] = ("dump", "pg_upgrade")
# steps an operator runs before the outage starts: not part of the downtime
PREPARATION = frozenset({"initdb", "check"})


@dataclass(frozen=True)
class Tamper:
    """What a meta-drill does wrong on purpose, to prove that verification catches it;
    the command line never sets it. Hooks get the target cluster and the database."""

    skip_extension_update: bool = False
    before_restore: Callable[[Cluster, str], None] | None = None  # dump: the empty database
    after_upgrade: Callable[[Cluster, str], None] | None = None  # before verification


@dataclass(frozen=True)
class UpgradePlan:
    """What `pgvdrill upgrade-drill` runs: a dataset, the modes, how recall is judged."""

    data: Dataset
    modes: tuple[Mode, ...] = MODES
    recall_threshold: float = 0.9
    tamper: Tamper = field(default_factory=Tamper)


def refuse_downgrade(source: Installation, target: Installation, modes: tuple[Mode, ...]
                     ) -> None:
    """A `RestoreError` before anything starts, when `target` cannot take an upgrade from
    `source`: an older PostgreSQL major, the same major for pg_upgrade, a pgvector missing
    on either side or older on the target (an extension is never downgraded)."""
    src, tgt = f"PostgreSQL {source.version}", f"PostgreSQL {target.version}"
    hint = ("drill the upgrade from the older installation to the newer one: "
            "--from OLD_BIN --to NEW_BIN")
    if target.major < source.major:
        raise RestoreError(
            f"refused: {src} ({source.bindir}) -> {tgt} ({target.bindir}) is a downgrade: "
            "pg_upgrade only upgrades to a newer major, and a dump of a newer server is not "
            "guaranteed to restore into an older one; nothing was started", hint)
    if "pg_upgrade" in modes and target.major == source.major:
        raise RestoreError(
            f"refused: pg_upgrade needs a newer major version, and {src} -> {tgt} is the "
            "same major (a minor update needs only the new binaries); nothing was started",
            "use --mode dump, or an installation of a newer major as --to")
    versions = {}
    for side, inst in (("source", source), ("target", target)):
        versions[side] = inst.pgvector_version()
        if versions[side] is None:
            raise RestoreError(f"refused: the {side} installation {inst.bindir} has no "
                               "pgvector extension; nothing was started",
                               "install pgvector for that PostgreSQL (its vector.control "
                               "and vector.so)")
    if version_key(versions["target"] or "") < version_key(versions["source"] or ""):
        raise RestoreError(
            f"refused: pgvector {versions['source']} ({src}) -> {versions['target']} ({tgt}) "
            "is a downgrade of the extension, which ALTER EXTENSION cannot do; nothing "
            "was started", f"install pgvector {versions['source']} or later for {tgt}")


@dataclass
class UpgradeDrill:
    """One upgrade: the versions each side ran, its timed steps, the verification."""

    mode: Mode
    source: dict[str, Any]  # server_capabilities(...).as_dict() of each side, as it ran
    target: dict[str, Any]
    steps: list[Phase]
    verification: Verification
    notes: list[str] = field(default_factory=list)
    backup: dict[str, Any] | None = None  # the dump mode's dump
    items: tuple[Item, ...] = ()  # per table and index, from the target's statement log
    kind: ClassVar[str] = "upgrade"

    @property
    def name(self) -> str:
        return (f"upgrade:{self.mode}:{self.source.get('postgresql')}->"
                f"{self.target.get('postgresql')}")

    @property
    def ok(self) -> bool:
        return self.verification.ok

    @property
    def downtime(self) -> float:
        """The upgrade's RTO: every step but the preparation an operator does beforehand."""
        return sum(s.seconds for s in self.steps if s.phase not in PREPARATION)

    def summary(self) -> str:
        steps = ", ".join(f"{s.phase} {s.seconds:.1f}s"
                          + (" beforehand" if s.phase in PREPARATION else "")
                          for s in self.steps)
        return (f"PostgreSQL {self.source.get('postgresql')}/pgvector "
                f"{self.source.get('pgvector')} -> {self.target.get('postgresql')}/pgvector "
                f"{self.target.get('pgvector')}: downtime {self.downtime:.1f}s ({steps}); "
                f"verify {self.verification.summary()}")

    def problems(self) -> list[str]:
        return self.verification.problems()

    def measures(self) -> dict[str, object]:
        return {"downtime_seconds": round(self.downtime, 3),
                "total_seconds": round(sum(s.seconds for s in self.steps), 3),
                "source": self.source, "target": self.target, "notes": self.notes}

    def evidence(self) -> dict[str, object]:
        return {}  # the targets have no upgrade RTO: the downtime is reported, not judged

    def entry(self) -> DrillEntry:
        return DrillEntry(
            self.name, self.kind, self.ok, backup=self.backup,
            restore={"setting": self.mode, "seconds": round(self.downtime, 3)},
            measures=self.measures(),
            phases=[*(s.as_dict() for s in self.steps),
                    Phase("verify", self.verification.seconds).as_dict()],
            items=[i.as_dict() for i in self.items], evidence=self.evidence(),
            verification=self.verification.as_dict(), problems=self.problems())

    def as_dict(self) -> dict[str, Any]:
        return self.entry().as_dict()


@dataclass
class UpgradeFailure(DrillFailure):
    """An upgrade that stopped before it could be verified (no RTO target to judge)."""

    def evidence(self) -> dict[str, object]:
        return dict(self.more_evidence)
