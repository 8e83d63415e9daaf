"""`pgvdrill drill`: back up a generated or given dataset every configured way, restore,
verify and time it (the logical, physical and PITR drills); `drill --config`, the
deprecated spelling of `pgvdrill dr-drill`, runs the DR drill."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from pgvdrill.backends import backend_for
from pgvdrill.cli import dr_drill
from pgvdrill.cli import physical as physcmd
from pgvdrill.cli.common import (
    DRILL_DEFAULTS,
    Command,
    SubParsers,
    add_backend_options,
    add_config_option,
    backend_options,
    command_parser,
    positive_int,
    say,
)
from pgvdrill.cli.drill_options import (
    add_dr_options,
    add_fail_on_option,
    add_judging_options,
    choices,
)
from pgvdrill.cluster import Backend
from pgvdrill.dataset import Dataset, DatasetSpec, from_file, generate, real_dataset
from pgvdrill.drill.logical import DrillPlan, run_plan
from pgvdrill.drill.physical import run_physical
from pgvdrill.drill.pitr import KINDS as PITR_KINDS
from pgvdrill.drill.pitr import run_pitr
from pgvdrill.drill.record import DrillResult
from pgvdrill.drill.source import dataset_template
from pgvdrill.errors import ConfigError, DrillError, clean_after
from pgvdrill.logical.dump import ALL_DUMP_SETTINGS, DUMP_SETTINGS
from pgvdrill.logical.restore import ALL_RESTORE_SETTINGS, RESTORE_SETTINGS
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS
from pgvdrill.policy.targets import load_targets
from pgvdrill.report import run_dir as report

DRILL_EXAMPLES = """examples:
  pgvdrill drill                                  # embedded PostgreSQL 18 + pgvector, 2000 x 64
  pgvdrill drill --rows 100000 --dim 768          # a larger dataset
  pgvdrill drill --dataset real                   # the shipped real MiniLM embeddings
  pgvdrill drill --dataset-file vectors.npy --dump custom-z9 --restore parallel-j2
  pgvdrill drill --backend system --pg-bin /usr/lib/postgresql/17/bin
  pgvdrill drill --no-logical --physical all      # every base backup form, restored
  pgvdrill drill --no-logical --pitr all          # archive, base backup, PITR to each target
  pgvdrill drill --targets targets.toml --production-size 200GB --fail-on unknown
  pgvdrill drill --config /etc/pgvdrill/pgvdrill.toml   # monthly DR drill of the newest
                                                        # backups of the configured source
"""
DEPRECATED = ("pgvdrill: warning: `pgvdrill drill --config` is deprecated: run `pgvdrill "
              "dr-drill --config ...` (same options)")


def add_parser(sub: SubParsers) -> None:
    drill = command_parser(
        sub, "drill", "back up a dataset every configured way, restore, verify, time",
        description="Load a dataset into a throw-away source server, dump it with each "
                    "--dump setting, restore each dump with each --restore setting into a "
                    "scratch server, verify the result against the source and write "
                    "reports/<run-id>/ (report.json, .md, .html, junit.xml, metrics.prom). "
                    "With --config: the disaster-recovery drill of the configured source: "
                    "its newest backups restored into scratch servers (the base backup "
                    "recovering through the archived WAL to its end) and compared with it "
                    "(read-only towards the source), judged against the targets.",
        epilog=DRILL_EXAMPLES)
    add_backend_options(drill)
    drill.add_argument("--dataset", choices=("generated", "real"), default="generated",
                       help="generated vectors (default) or the shipped real embeddings")
    drill.add_argument("--dataset-file", type=Path,
                       help="load vectors from a .npy, .parquet or ann-benchmarks .hdf5 file")
    drill.add_argument("--rows", type=positive_int, default=2000, help="rows (default 2000)")
    drill.add_argument("--dim", type=positive_int, default=64, help="dimension (default 64)")
    drill.add_argument("--kind", choices=("gaussian", "clustered"), default="gaussian")
    drill.add_argument("--seed", type=int, default=7)
    drill.add_argument("--dump", default=",".join(DUMP_SETTINGS),
                       type=lambda v: choices(v, dict(ALL_DUMP_SETTINGS), "dump setting"),
                       help=f"comma-separated dump settings, 'all' for every one (default: "
                            f"{','.join(DUMP_SETTINGS)}; see pgvdrill settings)")
    drill.add_argument("--restore", default=",".join(RESTORE_SETTINGS),
                       type=lambda v: choices(v, dict(ALL_RESTORE_SETTINGS),
                                              "restore setting"),
                       help=f"comma-separated restore settings, 'all' for every one "
                            f"(default: {','.join(RESTORE_SETTINGS)}); pairings a dump "
                            "cannot feed are skipped with the reason")
    add_judging_options(drill, "./reports, or [drill] reports_dir of --config")
    add_config_option(drill)
    add_dr_options(drill, "with --config: ")
    add_fail_on_option(drill)
    physcmd.add_drill_options(drill)
    drill.add_argument("--pitr", default=[],
                       type=lambda v: choices(v, dict(PITR_KINDS), "PITR target kind"),
                       help="also run point-in-time recovery drills (archive-wal archiving, "
                            "a plain base backup, the marker workload, recovery to each "
                            "target, the marker boundary checked exactly) for these comma-"
                            f"separated target kinds, or 'all': {', '.join(PITR_KINDS)}")


def _dataset(args: argparse.Namespace) -> Dataset:
    if args.dataset_file is not None:
        return from_file(args.dataset_file)
    if args.dataset == "real":
        return real_dataset()
    return generate(DatasetSpec(rows=args.rows, dim=args.dim, kind=args.kind, seed=args.seed))


def run(args: argparse.Namespace) -> int:
    if args.config is not None:
        print(DEPRECATED, file=sys.stderr, flush=True)
        return dr_drill.run(args)
    given = [option for option, value in (
        ("--provider", args.provider), ("--backup", args.backup),
        ("--target-*", args.target_time or args.target_xid or args.target_lsn
         or args.target_name or args.target)) if value]
    if given:
        raise ConfigError(f"{', '.join(given)}: a provider's backups are drilled with "
                          "--config", "run pgvdrill dr-drill --config CFG --provider NAME")
    targets = load_targets(args.targets, args.production_size)
    run_dir = report.new_run_dir(args.reports_dir or DRILL_DEFAULTS.reports_dir).resolve()
    data = _dataset(args)
    plan = DrillPlan(data, [ALL_DUMP_SETTINGS[n] for n in args.dump] if args.logical else [],
                     [ALL_RESTORE_SETTINGS[n] for n in args.restore], args.recall_threshold)
    options = backend_options(args)
    started = datetime.now(UTC)
    try:
        with backend_for(options, [run_dir]) as backend:
            result = run_plan(backend, plan, run_dir / "artifacts", say)
            physical = run_physical(
                backend, data, [BASE_BACKUP_SETTINGS[n] for n in args.physical],
                run_dir / "artifacts" / "physical", say, recall_threshold=args.recall_threshold,
                fast_checkpoint=args.fast_checkpoint)
            pitr = _run_pitr(args.pitr, backend, data, options.workdir)
    except (DrillError, OSError, psycopg.Error, KeyboardInterrupt) as exc:
        stopped = [report.aborted(exc)]  # the report says what stopped the run
        clean_after(exc, lambda: report.finish("pgvdrill drill", run_dir, started, stopped,
                                               targets, args.fail_on, say),
                    f"(writing) the report in {run_dir}")
        raise
    drills = [d.as_dict() for d in [*result.drills, *physical, *pitr]]
    return report.finish("pgvdrill drill", run_dir, started, drills, targets, args.fail_on,
                         say, server=result.server, dataset=result.dataset)


def _run_pitr(kinds: list[str], backend: Backend, data: Dataset, workdir: Path
              ) -> list[DrillResult]:
    """The PITR drills of `kinds` (none when it is empty), on a primary copied from the
    dataset's template."""
    if not kinds:
        return []
    template, _ = dataset_template(backend, data)
    return run_pitr(backend, template, kinds, workdir, say)


COMMAND = Command("drill", add_parser, run)
