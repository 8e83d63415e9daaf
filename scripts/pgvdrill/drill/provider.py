"""The DR drill of a provider's backup (a backup another tool took: providers/), the same
for every provider.

In order, each step's result kept in the drill's report entry: the tool's version, its own
checks (a fail fails the drill), its backups and the one chosen (provider_choose), the
tool's own verification of it (a fail fails the drill), the tool's restore into an empty
directory of the drill's own, the source's major version from the restored PG_VERSION (a
scratch server of that version adopts and neutralises the copy: no archiving, no port,
no way to production), the WAL fetched by the drill itself (provider_wal), recovery to the
archive's end or to a target, and the verification against the source
(physical.verify_restored). A logical backup's dump is restored and verified as pgvdrill's
own (dr.restore_dump), on the target version.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgvdrill import config, osuser
from pgvdrill.backends import BackendOptions, backend_for, of_major, of_target
from pgvdrill.cluster import Backend, Cluster
from pgvdrill.cluster.directory import DirectoryCluster
from pgvdrill.drill.dr_restore import FAILURES, bootstrap_superuser, restore_dump
from pgvdrill.drill.physical import SEQUENCE_SLACK, verify_restored
from pgvdrill.drill.provider_choose import named, newest
from pgvdrill.drill.provider_rpo import rpo_evidence
from pgvdrill.drill.provider_source import read_source
from pgvdrill.drill.provider_wal import FetchedWal, fetch_archive
from pgvdrill.drill.record import DrillFailure, ran_on
from pgvdrill.errors import BackupError, DrillError, cleanup
from pgvdrill.physical.manifest import label_range
from pgvdrill.proc.runner import ToolCall
from pgvdrill.providers import registry
from pgvdrill.providers.base import Provider, ProviderBackup, ToolCheck
from pgvdrill.report.record import DrillEntry, Record
from pgvdrill.server import ExternalServer
from pgvdrill.verify import Snapshot, Verification, snapshot, verify
from pgvdrill.verify.outcome import Check, run_check
from pgvdrill.wal.names import DEFAULT_SEGMENT_SIZE, SEGMENT_SIZES, format_lsn, parse_lsn
from pgvdrill.wal.pitr import BackupPoint, Recovery, Target, recover

Say = Callable[[str], None]
LABEL_MAX = 64 * 1024  # backup_label is a few lines
_SEGMENT = re.compile(r"^Bytes per WAL segment:\s+([0-9]{1,12})$", re.M)
# what a recovery stopped at its target logs (PostgreSQL's "recovery stopping ...")
STOPPED = "recovery stopping"
# checks that compare the copy's content with the source: not run after a PITR target
STRUCTURAL = ("index_validity", "ann_recall", "planner", "amcheck")


@dataclass
class Scene:
    """What every provider drill of a run shares: the source and its snapshot, where
    scratch servers run (`backends` opened on `stack` as needed), the recovery target and
    the judging options."""

    source: ExternalServer
    snapshot: Snapshot | None  # None: a PITR target (content is not compared)
    options: BackendOptions
    stack: ExitStack
    mounts: list[Path]
    target: Target
    recall_threshold: float
    say: Say
    backends: dict[BackendOptions, Backend]

    def backend(self, options: BackendOptions) -> Backend:
        if options not in self.backends:
            self.backends[options] = self.stack.enter_context(backend_for(options, self.mounts))
        return self.backends[options]


def tool_facts(provider: Provider, version: str, checks: list[ToolCheck]) -> dict[str, Any]:
    """What the run's report says of a provider (its `provider` fact)."""
    return {"name": provider.name, "type": provider.type, "version": version,
            "checks": [c.as_dict() for c in checks]}


def backup_record(provider: Provider, version: str, backup: ProviderBackup,
                  checks: list[ToolCheck], verified: ToolCheck | None) -> dict[str, Any]:
    """A drill entry's `backup`: the provider and its tool, the backup as it lists it, and
    the tool's checks and verification."""
    return {"setting": backup.id, "provider": provider.name, "provider_type": provider.type,
            "tool_version": version, **backup.as_dict(),
            "size_bytes": backup.size_bytes, "finished": _iso(backup.finished),
            "tool_checks": [c.as_dict() for c in checks],
            "tool_verify": None if verified is None else verified.as_dict()}


def tool_problems(checks: list[ToolCheck], verified: ToolCheck | None) -> list[str]:
    """The tool's own checks and verification that failed, as problems of the drill."""
    return [f"{c.name} (the tool's own {'verification' if c is verified else 'check'}) "
            f"failed: {c.reason or 'it said so'}; {c.output.strip()[-300:]}".rstrip("; ")
            for c in [*checks, *([verified] if verified else [])] if c.status == "fail"]


def backup_age(backup: ProviderBackup) -> float | None:
    """Seconds since `backup` finished; None when its tool does not say."""
    if backup.finished is None:
        return None
    return (datetime.now(UTC) - backup.finished).total_seconds()


def failed(provider: Provider, backup: ProviderBackup, why: BaseException | str,
           record: dict[str, Any], more: list[str], reached: dict[str, Any]) -> dict[str, Any]:
    """The entry of a provider drill that stopped on `why` (`more`: problems found before;
    `reached`: what its restore had done)."""
    return DrillFailure(f"provider:{provider.name}:{backup.id}", backup.kind, why, stage=None,
                        backup=record, restore=reached or None, more_evidence={"backup_age": {
                            "kind": backup.kind, "seconds": backup_age(backup)}},
                        listed=tuple(more)).as_dict()


def drill_backup(provider: Provider, backup: ProviderBackup, record: dict[str, Any],
                 problems: list[str], scene: Scene) -> dict[str, Any]:
    """Restore `backup` with its tool, recover and verify it (see the module docstring);
    its report entry, failed when `problems` (the tool's own failed checks) are not empty
    or anything on the way failed."""
    scene.say(f"provider {provider.name}: restoring {backup.kind} backup {backup.id}")
    reached: dict[str, Any] = {"setting": provider.type}
    try:
        if backup.kind == "logical":
            entry = _logical(provider, backup, scene)
        else:
            entry = _physical(provider, backup, scene, reached)
    except FAILURES as exc:
        scene.say(f"  provider {provider.name} {backup.id}: FAILED: {exc}")
        for problem in problems:
            scene.say(f"    - {problem}")
        return failed(provider, backup, exc, record, problems, reached)
    entry = replace(entry, drill=f"provider:{provider.name}:{backup.id}",
                    backup={**record, **(entry.backup or {})},
                    evidence={**(entry.evidence or {}),
                              "backup_age": {"kind": backup.kind, "seconds": backup_age(backup)}})
    if problems:
        entry = replace(entry, ok=False, problems=[*(entry.problems or []), *problems])
    scene.say(f"  provider {provider.name} {backup.id}: {'ok' if entry.ok else 'FAILED'}")
    for problem in entry.problems or []:
        scene.say(f"    - {problem}")
    return entry.as_dict()


def _logical(provider: Provider, backup: ProviderBackup, scene: Scene) -> DrillEntry:
    """The dump the tool hands over, restored and verified as pgvdrill's own (on the
    target version; roles from a live pg_dumpall of the source)."""
    if scene.snapshot is None:
        raise DrillError("a recovery target applies to physical backups only",
                         f"drill logical backup {backup.id} without --target-*")
    backend = scene.backend(of_target(scene.options, f"restoring logical backup {backup.id}"))
    with tempfile.TemporaryDirectory(prefix=f"provider-{provider.name}-",
                                     dir=scene.options.workdir) as tmp:
        restored = provider.restore(backup, _empty(Path(tmp) / "dump"))
        drill = restore_dump(backend, restored.path, backup.id, restored.seconds, scene.source,
                             scene.snapshot, recall_threshold=scene.recall_threshold,
                             say=scene.say, finished=backup.finished)
    entry = drill.entry()
    return replace(entry, restore={**(entry.restore or {}), **backend.facts(),
                                   "tool_seconds": round(restored.seconds, 3)})


def _physical(provider: Provider, backup: ProviderBackup, scene: Scene,
              reached: dict[str, Any]) -> DrillEntry:
    """The data directory the tool restores, recovered through the WAL the drill fetched,
    verified against the source; `reached` records each step as it ends."""
    with tempfile.TemporaryDirectory(prefix=f"provider-{provider.name}-",
                                     dir=scene.options.workdir) as tmp:
        Path(tmp).chmod(0o711)  # the scratch server's restore_command reads wal/
        source = read_source(scene.source)  # before the restore: where its WAL was then
        restored = provider.restore(backup, _empty(Path(tmp) / "data"))
        reached["tool_seconds"] = round(restored.seconds, 3)
        datadir = restored.path
        major = reached["source_major"] = source_major(datadir)
        backend = scene.backend(of_major(scene.options, major, f"restoring physical backup "
                                         f"{backup.id} of a PostgreSQL {major} source"))
        reached.update(backend.facts())
        control = controldata(backend, datadir)
        reached["system_identifier"] = source.same_server(control, backup.id)
        point, point_note = backup_point(backup, datadir)
        reached["backup_point"] = {"start_lsn": format_lsn(point.start_lsn),
                                   "timeline": point.timeline,
                                   "end_lsn": format_lsn(point.end_lsn), "note": point_note}
        started = time.monotonic()
        fetched = fetch_archive(provider, point.start_lsn, point.timeline,
                                _empty(Path(tmp) / "wal"), segment_size(control),
                                source.last_archived, source.wal_lsn)
        fetch_seconds = time.monotonic() - started
        reached["wal"] = {**fetched.as_dict(), "seconds": round(fetch_seconds, 3)}
        osuser.chown_tree(fetched.directory, osuser.server_user())
        scene.say(f"  restored by {provider.type} in {restored.seconds:.1f}s (PostgreSQL "
                  f"{major}); WAL: {len(fetched.segments)} segment(s) fetched, "
                  f"{fetched.missing} not in the archive")
        cluster = backend.adopt(f"restored-{provider.name}", datadir,
                                superuser=bootstrap_superuser(scene.source))
        with cleanup(cluster.destroy, f"the restored copy {cluster.name}"):
            gap = fetched.problems(f"provider {provider.name}")
            if gap:  # a WAL file missing from the archive: recovery would stop there
                raise BackupError(gap[0], "restore the missing file into the archive from "
                                  "another copy; until then the backup recovers only up to it")
            recovery = recover(cluster, scene.target, cluster.restore_command(fetched.directory),
                               point, must_reach=fetched.reach()
                               if scene.target.kind == "end" else None)
            reached["recovery"] = recovery.as_dict()
            rpo = None if scene.target.kind != "end" else rpo_evidence(
                source, recovery.replayed_to, last_replayed(cluster), segment_size(control))
            started = time.monotonic()
            verification, server = _verified(cluster, recovery, scene)
            verify_seconds = time.monotonic() - started
        neutralised = cluster.restored if isinstance(cluster, DirectoryCluster) else None
    # not known whose backup it is, or whether WAL is missing: the restore is not judged
    unknown = _unknowns(reached["system_identifier"], fetched)
    verification.checks.extend(unknown)
    # a real recovery runs the restore_command for each segment: the fetch is in the RTO
    rto = restored.seconds + fetch_seconds + recovery.start_to_ready
    ok = verification.ok
    return DrillEntry(
        "provider", "physical", ok, server=server,
        restore={**reached, "seconds": round(rto, 3),
                 "recovery_seconds": round(recovery.start_to_ready, 3),
                 "verify_seconds": round(verify_seconds, 3)},
        phases=[{"phase": f"{provider.type} restore", "seconds": round(restored.seconds, 3)},
                {"phase": f"{provider.type} WAL fetch", "seconds": round(fetch_seconds, 3)},
                {"phase": "recovery", "seconds": round(recovery.start_to_ready, 3)},
                {"phase": "verify", "seconds": round(verify_seconds, 3)}],
        evidence={"restore": {"kind": "physical",
                              "seconds": rto if ok and not unknown else None,
                              "why": None if ok and not unknown else
                              "the restore did not verify" if not ok else
                              "unknown: " + "; ".join(f"{c.name}: {c.unknown}"
                                                      for c in unknown)},
                  **({} if rpo is None else {"rpo": rpo})},
        verification=verification.as_dict(), problems=verification.problems(),
        neutralised=None if neutralised is None else neutralised.as_dict())


def last_replayed(cluster: Cluster) -> datetime | None:
    """When the last transaction the copy's recovery replayed committed (None: none)."""
    row = cluster.query("SELECT pg_last_xact_replay_timestamp()")
    found = row[0][0] if row else None
    return found if isinstance(found, datetime) else None


def _unknowns(identifier: dict[str, object], fetched: FetchedWal) -> list[Check]:
    """What the drill could not judge, as unknown checks: whose backup it is (the system
    identifiers) and whether WAL after the archive's end was missing (B6)."""
    found = []
    if identifier["status"] != "pass":
        found.append(Check("system_identifier", True, [], 0.0, dict(identifier),
                           unknown=f"not compared: {identifier.get('why')}"))
    why = fetched.unknown()
    if why:
        found.append(Check("wal_continuity", True, [], 0.0, fetched.as_dict(), unknown=why))
    return found


def _verified(cluster: Cluster, recovery: Recovery, scene: Scene
              ) -> tuple[Verification, Record]:
    """The copy verified against the source (recovered to the archive's end); after a
    target, what holds without the source: it stopped at the target, and its own indexes,
    recall and pages."""
    if scene.snapshot is not None:
        return verify_restored(cluster, scene.source, scene.snapshot,
                               dbname=scene.source.dbname,
                               recall_threshold=scene.recall_threshold)
    stopped = [line for line in cluster.log_since(0).splitlines() if STOPPED in line]
    with cluster.connect(scene.source.dbname) as conn:
        own = snapshot(conn)
        checks = [c for c in verify(own, conn, recall_threshold=scene.recall_threshold,
                                    sequence_slack=SEQUENCE_SLACK).checks
                  if c.name in STRUCTURAL]
        ran = ran_on(conn)

    def at_target(check: Check) -> None:
        check.details["recovery"] = recovery.target.describe()
        if stopped:
            check.details["log"] = stopped[-1][-300:]
        else:
            check.problems.append(f"recovery to {recovery.target.describe()} promoted without "
                                  "logging where it stopped: it did not stop at the target")

    def content(check: Check) -> None:
        check.unknown = ("not compared: recovered to a target, while the live source is past "
                         "it; structural checks ran on the copy's own data")

    return Verification([run_check("recovery_target", at_target), run_check("content", content),
                         *checks]), ran


def source_major(datadir: Path) -> int:
    """The major version in the restored data directory's PG_VERSION (untrusted: digits
    only)."""
    path = datadir / "PG_VERSION"
    if path.is_symlink() or not path.is_file():
        raise BackupError(f"the restored data directory {datadir} has no PG_VERSION file",
                          "the provider's restore did not produce a data directory")
    with path.open("rb") as handle:
        text = handle.read(16).decode("ascii", "replace").strip()
    if not re.fullmatch(r"[0-9]{1,3}", text):
        raise BackupError(f"{path} holds {text[:16]!r}, not a PostgreSQL major version",
                          "inspect the backup")
    return int(text)


def controldata(backend: Backend, datadir: Path) -> str:
    """What pg_controldata prints of the restored copy (untrusted text)."""
    return backend.tools().run_tool(ToolCall("pg_controldata", [datadir], timeout=60)).stdout


def segment_size(control: str) -> int:
    """The WAL segment size in the restored copy's pg_controldata output."""
    found = _SEGMENT.search(control)
    size = int(found.group(1)) if found else DEFAULT_SEGMENT_SIZE
    if size not in SEGMENT_SIZES:
        raise BackupError(f"the restored copy's pg_control says a WAL segment is {size} bytes",
                          "inspect the backup: PostgreSQL allows 1 MB to 1 GB, a power of 2")
    return size


def backup_point(backup: ProviderBackup, datadir: Path) -> tuple[BackupPoint, str | None]:
    """Where the backup's WAL starts and ends: from its tool's listing, else from the
    restored backup_label (then its end is unknown: the note says so)."""
    if backup.start_lsn and backup.timeline:
        start = _tool_lsn(backup, "start", backup.start_lsn)
        end = _tool_lsn(backup, "end", backup.end_lsn) if backup.end_lsn else start
        return (BackupPoint(start, backup.timeline, end, backup.finished),
                None if backup.end_lsn else "the tool lists no end LSN: the backup's end is "
                "not checked before recovery ends")
    label = datadir / "backup_label"
    if label.is_symlink() or not label.is_file():
        raise BackupError(f"{backup.id}: the tool lists no start LSN and the restored data "
                          "directory has no backup_label",
                          "the provider's restore did not produce a base backup")
    with label.open("rb") as handle:
        text = handle.read(LABEL_MAX).decode("utf-8", "replace")
    first = label_range(text, "")  # BackupError unless it names both, checked
    lsn = parse_lsn(first.start)
    return (BackupPoint(lsn, first.timeline, lsn, backup.finished),
            "from backup_label: the backup's end LSN is unknown (recovery reports it)")


def _tool_lsn(backup: ProviderBackup, which: str, text: str) -> int:
    """An LSN the tool listed for `backup` (untrusted), or BackupError."""
    try:
        return parse_lsn(text)
    except ValueError:
        raise BackupError(f"the tool listed {which} LSN {text[:40]!r} for backup {backup.id}: "
                          "not an LSN", "inspect the tool's catalog of that backup") from None


def _empty(path: Path) -> Path:
    path.mkdir(mode=0o700)
    return path


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def drill_provider(conf: config.Provider, scene: Scene, kinds: Sequence[str],
                   backup_id: str | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Drill the backups of the provider `conf` configures: the one named `backup_id`, else
    its newest of each of `kinds` it has (provider_choose); what the report says of the
    provider, and each drill's entry."""
    say = scene.say
    facts: dict[str, Any] = {"name": conf.name, "type": conf.type, "version": None,
                             "checks": []}
    record: dict[str, Any] = {"provider": conf.name, "provider_type": conf.type}
    try:
        provider = registry.make(conf)
        facts["version"] = record["tool_version"] = provider.version()
        checks = provider.checks()
        facts["checks"] = [c.as_dict() for c in checks]
        say(f"provider {conf.name} ({facts['version']}): checks "
            + (", ".join(f"{c.name} {c.status}" for c in checks) or "none"))
        listed = provider.backups()
        chosen = [named(listed, backup_id, conf.name)] if backup_id else [
            b for b in (newest(listed, kind, scene.target, conf.name) for kind in kinds) if b]
    except FAILURES as exc:
        say(f"provider {conf.name}: FAILED: {exc}")
        return facts, [_provider_failed(conf, exc, record)]
    facts["backups"] = len(listed)
    if not chosen:
        why = f"provider {conf.name} lists no complete {' or '.join(kinds)} backup"
        say(f"provider {conf.name}: FAILED: {why}")
        return facts, [_provider_failed(conf, why, record)]
    entries = []
    for backup in chosen:
        age = backup_age(backup)
        say(f"provider {conf.name}: {backup.kind} backup {backup.id} of {len(listed)}, "
            f"finished {_iso(backup.finished) or 'unknown'}"
            + ("" if age is None else f", {age / 3600:.1f} h old"))
        try:
            verified = provider.verify(backup)
        except FAILURES as exc:
            verified = ToolCheck("verify", "fail", reason=str(exc))
        say(f"  the tool's verification of {backup.id}: {verified.status}"
            + (f" ({verified.reason})" if verified.reason else ""))
        backup_facts = {**backup_record(provider, str(facts["version"]), backup, checks,
                                        verified), "backups_listed": len(listed)}
        entries.append(drill_backup(provider, backup, backup_facts,
                                    tool_problems(checks, verified), scene))
    return facts, entries


def _provider_failed(conf: config.Provider, why: BaseException | str, record: dict[str, Any]
                     ) -> dict[str, Any]:
    """The entry of a provider whose tool failed before a backup was chosen."""
    return DrillFailure(f"provider:{conf.name}:none", "physical", why, stage=None,
                        backup=record,
                        more_evidence={"backup_age": {"kind": "physical", "seconds": None}},
                        listed=()).as_dict()
