"""`pgvdrill upgrade-drill`: rehearse a major upgrade of a pgvector database (dump/restore
and pg_upgrade) from one installation to a newer one, each step timed (the downtime)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from pgvdrill import installation, osuser
from pgvdrill.backends import default_cache_dir, default_workdir
from pgvdrill.cli.common import Command, SubParsers, command_parser, positive_int, say
from pgvdrill.cli.drill_options import add_fail_on_option, add_judging_options
from pgvdrill.cluster.local import LocalBackend
from pgvdrill.dataset import DatasetSpec, generate
from pgvdrill.drill.upgrade import MODES, Mode, UpgradePlan, refuse_downgrade
from pgvdrill.drill.upgrade_run import run_upgrades
from pgvdrill.errors import DrillError, clean_after, cleanup
from pgvdrill.installation import Installation
from pgvdrill.policy.targets import load_targets
from pgvdrill.report import run_dir as report

EMBEDDED = "embedded"
DESCRIPTION = """\
Load a pgvector dataset (vector columns, HNSW and IVFFlat indexes) into a scratch server
of the --from installation and upgrade it into one of the --to installation: by dump
(the target's pg_dump, pg_restore -j2, ALTER EXTENSION vector UPDATE where the restore
left it older) and by pg_upgrade (data checksums matched, --check first, the
update_extensions.sql it writes applied). Each step is timed: the report states the
downtime (the upgrade's RTO). Then the upgraded database is verified against the source:
extension version, halfvec available, every row bit-exact, indexes valid, recall@10, the
planner's use of HNSW and, after pg_upgrade, the same top-10 answers as before. A
downgrade is refused before anything starts (exit 5). Writes reports/<run-id>/."""
EXAMPLES = """examples:
  pgvdrill upgrade-drill --from /opt/pgvdrill-installations/pg16.2/pgserver/pginstall/bin
  pgvdrill upgrade-drill --from OLD/bin --to NEW/bin --mode pg_upgrade
  pgvdrill upgrade-drill --from OLD/bin --rows 100000 --dim 768   # production-like timings
"""


def add_parser(sub: SubParsers) -> None:
    parser = command_parser(sub, "upgrade-drill",
                            "rehearse a major upgrade (dump/restore and pg_upgrade), timed",
                            DESCRIPTION, EXAMPLES)
    parser.add_argument("--from", dest="source", required=True,
                        help="bin directory of the installation upgraded from (or 'embedded')")
    parser.add_argument("--to", dest="target", default=EMBEDDED,
                        help="bin directory of the installation upgraded to (default: the "
                             "embedded PostgreSQL 18 + pgvector)")
    parser.add_argument("--mode", choices=(*MODES, "both"), default="both",
                        help="dump, pg_upgrade or both (default)")
    parser.add_argument("--rows", type=positive_int, default=2000, help="rows (default 2000)")
    parser.add_argument("--dim", type=positive_int, default=64, help="dimension (default 64)")
    parser.add_argument("--workdir", type=Path,
                        help="where scratch clusters live (default: /var/tmp as root, else TMPDIR)")
    parser.add_argument("--cache-dir", type=Path,
                        help="where initdb and dataset templates are kept "
                             "(default: ~/.cache/pgvdrill)")
    add_judging_options(parser, "./reports")
    add_fail_on_option(parser)


def _installation(spec: str) -> Installation:
    if spec == EMBEDDED:
        return installation.embedded(osuser.server_user())
    return installation.from_bindir(Path(spec))


def _backend(inst: Installation, args: argparse.Namespace) -> LocalBackend:
    return LocalBackend(inst, args.workdir or default_workdir(),
                        args.cache_dir or default_cache_dir(), name="system")


def run(args: argparse.Namespace) -> int:
    modes: tuple[Mode, ...] = MODES if args.mode == "both" else (args.mode,)
    source, target = _installation(args.source), _installation(args.target)
    refuse_downgrade(source, target, modes)  # before anything is made or started
    targets = load_targets(args.targets, args.production_size)
    run_dir = report.new_run_dir(args.reports_dir or Path("reports")).resolve()
    plan = UpgradePlan(generate(DatasetSpec(rows=args.rows, dim=args.dim)), modes,
                       args.recall_threshold)
    say(f"upgrade drill: PostgreSQL {source.version} + pgvector {source.pgvector_version()} "
        f"-> {target.version} + pgvector {target.pgvector_version()}, dataset "
        f"{plan.data.spec.key()}, modes {', '.join(modes)}")
    started = datetime.now(UTC)
    try:
        old, new = _backend(source, args), _backend(target, args)
        with cleanup(old.close, "the source backend"), cleanup(new.close, "the target backend"):
            drills = run_upgrades(old, new, plan, run_dir / "artifacts", say)
    except (DrillError, OSError, psycopg.Error, KeyboardInterrupt) as exc:
        stopped = [report.aborted(exc)]
        clean_after(exc, lambda: report.finish("pgvdrill upgrade-drill", run_dir, started,
                                               stopped, targets, args.fail_on, say),
                    f"(writing) the report in {run_dir}")
        raise
    spec = plan.data.spec
    return report.finish(
        "pgvdrill upgrade-drill", run_dir, started, [d.as_dict() for d in drills], targets,
        args.fail_on, say,
        server={"backend": "system", "version": f"{source.version} -> {target.version}",
                "pgvector": f"{source.pgvector_version()} -> {target.pgvector_version()}",
                "source": {"bindir": str(source.bindir), "version": source.version},
                "target": {"bindir": str(target.bindir), "version": target.version}},
        dataset={"key": spec.key(), "rows": spec.rows, "dim": spec.dim})


COMMAND = Command("upgrade-drill", add_parser, run)
