"""The `pgvdrill` command.

Exit codes: 0 success, 1 verification failed, 2 bad input or configuration,
3 an external tool failed, 4 a backup is broken, 5 a restore cannot succeed (the target
or the dump lacks something: pgvector, roles, the extension), 6 every drill verified but
a documented target was missed (see --fail-on), 7 the repository is in use (retention),
8 the machine failed, not the backup (a full disk, a permission, a server that died),
130/143/129 interrupted by SIGINT/SIGTERM/SIGHUP (after ending every program it had
started).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from pgvdrill import __version__
from pgvdrill.backends import BACKENDS, backend_for, default_workdir
from pgvdrill.bench import add_bench_parser, cmd_bench
from pgvdrill.cli import physical as physcmd
from pgvdrill.cli.common import Handler, add_config_option, positive_int, register_all, say
from pgvdrill.cluster import Backend
from pgvdrill.cluster.docker_image import DEFAULT_TAG
from pgvdrill.dataset import Dataset, DatasetSpec, from_file, generate, real_dataset
from pgvdrill.drill import dr as dr_drill
from pgvdrill.drill.logical import DrillPlan, run_plan
from pgvdrill.drill.physical import run_physical
from pgvdrill.drill.pitr import KINDS as PITR_KINDS
from pgvdrill.drill.pitr import run_pitr
from pgvdrill.drill.record import DrillResult
from pgvdrill.drill.source import dataset_template
from pgvdrill.errors import (
    ENVIRONMENT_HINT,
    ConfigError,
    DrillError,
    EnvironmentFailure,
    clean_after,
    environment_cause,
)
from pgvdrill.logical.dump import ALL_DUMP_SETTINGS, DUMP_SETTINGS
from pgvdrill.logical.restore import ALL_RESTORE_SETTINGS, RESTORE_SETTINGS
from pgvdrill.physical.artifact import BASE_BACKUP_SETTINGS
from pgvdrill.policy.targets import load_targets
from pgvdrill.proc.interrupts import Interrupted, handle_signals
from pgvdrill.report import run_dir as report
from pgvdrill.wal import walcmd

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


def _choices(value: str, known: dict[str, object], what: str) -> list[str]:
    names = list(known) if value == "all" else [v for v in value.split(",") if v]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none)'}; known: {', '.join(known)}")
    return names




def _fraction(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {value}")
    return number


def _add_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS,
                        help="where scratch servers run (default: embedded, or [drill] "
                             "backend of --config)")
    parser.add_argument("--pg-bin", type=Path, help="PostgreSQL bin dir for --backend system")
    parser.add_argument("--image", help="image for --backend docker, e.g. pgvector/pgvector:pg17 "
                                        f"(default {DEFAULT_TAG}: pgvdrill image build)")
    parser.add_argument("--workdir", type=Path,
                        help="where scratch clusters live (default: /var/tmp as root, else TMPDIR)")
    parser.add_argument("--cache-dir", type=Path,
                        help="where initdb and dataset templates are kept "
                             "(default: ~/.cache/pgvdrill)")


PRODUCTION: dict[str, Handler] = {}  # backup, restore, retention, ... (pgvdrill.ops)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgvdrill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"pgvdrill {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    sub = parser.add_subparsers(dest="command", required=True)

    drill = sub.add_parser(
        "drill", help="back up a dataset every configured way, restore, verify, time",
        description="Load a dataset into a throw-away source server, dump it with each "
                    "--dump setting, restore each dump with each --restore setting into a "
                    "scratch server, verify the result against the source and write "
                    "reports/<run-id>/ (report.json, .md, .html, junit.xml, metrics.prom). "
                    "With --config: the disaster-recovery drill of the configured source: "
                    "its newest backups restored into scratch servers (the base backup "
                    "recovering through the archived WAL to its end) and compared with it "
                    "(read-only towards the source), judged against the targets.",
        epilog=DRILL_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_backend_options(drill)
    drill.add_argument("--dataset", choices=("generated", "real"), default="generated",
                       help="generated vectors (default) or the shipped real embeddings")
    drill.add_argument("--dataset-file", type=Path,
                       help="load vectors from a .npy, .parquet or ann-benchmarks .hdf5 file")
    drill.add_argument("--rows", type=positive_int, default=2000, help="rows (default 2000)")
    drill.add_argument("--dim", type=positive_int, default=64, help="dimension (default 64)")
    drill.add_argument("--kind", choices=("gaussian", "clustered"), default="gaussian")
    drill.add_argument("--seed", type=int, default=7)
    drill.add_argument("--dump", default=",".join(DUMP_SETTINGS),
                       type=lambda v: _choices(v, dict(ALL_DUMP_SETTINGS), "dump setting"),
                       help=f"comma-separated dump settings, 'all' for every one (default: "
                            f"{','.join(DUMP_SETTINGS)}; see pgvdrill settings)")
    drill.add_argument("--restore", default=",".join(RESTORE_SETTINGS),
                       type=lambda v: _choices(v, dict(ALL_RESTORE_SETTINGS),
                                               "restore setting"),
                       help=f"comma-separated restore settings, 'all' for every one "
                            f"(default: {','.join(RESTORE_SETTINGS)}); pairings a dump "
                            "cannot feed are skipped with the reason")
    drill.add_argument("--recall-threshold", type=_fraction, default=0.9,
                       help="minimum ANN recall@10 after restore (default 0.9); when the "
                            "source itself finds less on the same queries, its figure less "
                            "a noise margin, never below a quarter of it")
    drill.add_argument("--reports-dir", type=Path,
                       help="where reports/<run-id>/ is written (default ./reports, or "
                            "[drill] reports_dir of --config)")
    drill.add_argument("--targets", type=Path,
                       help="TOML file overriding the runbook's targets (RTO, RPO, throughput "
                            "floors, backup age, production size); see targets_default.toml")
    drill.add_argument("--production-size",
                       help='declared production data size, e.g. "200GB": throughput '
                            "verdicts project the measured rates to it")
    add_config_option(drill)
    drill.add_argument("--kinds", default=["logical", "physical"],
                       type=lambda v: _choices(v, {"logical": 1, "physical": 1}, "kind"),
                       help="with --config: which kinds of backup to drill, comma-separated "
                            "(default logical,physical)")
    drill.add_argument("--take", action="store_true",
                       help="with --config: take a backup of each kind first and drill it, "
                            "compared exactly with the source at that backup's own moment, "
                            "however busy the source: the logical one at pg_dump's snapshot, "
                            "the physical one recovered to a snapshot read after it (through "
                            "WAL streamed from the source; a primary only)")
    drill.add_argument("--fail-on", choices=("fail", "unknown", "none"), default="fail",
                       help="exit 6 when a target verdict is fail (default), fail or unknown, "
                            "or never; a failed verification always exits 1")
    physcmd.add_drill_options(drill)
    drill.add_argument("--pitr", default=[],
                       type=lambda v: _choices(v, dict(PITR_KINDS), "PITR target kind"),
                       help="also run point-in-time recovery drills (archive-wal archiving, "
                            "a plain base backup, the marker workload, recovery to each "
                            "target, the marker boundary checked exactly) for these comma-"
                            f"separated target kinds, or 'all': {', '.join(PITR_KINDS)}")

    sub.add_parser("settings", help="list the dump and restore settings with what they do")

    walcmd.add_archive_parser(sub)
    walcmd.add_restore_parser(sub)
    physcmd.add_verify_backup_parser(sub, _add_backend_options)
    add_bench_parser(sub, _add_backend_options)
    PRODUCTION.update(register_all(sub, _add_backend_options))
    return parser


def _dataset(args: argparse.Namespace) -> Dataset:
    if args.dataset_file is not None:
        return from_file(args.dataset_file)
    if args.dataset == "real":
        return real_dataset()
    return generate(DatasetSpec(rows=args.rows, dim=args.dim, kind=args.kind, seed=args.seed))


def cmd_drill(args: argparse.Namespace) -> int:
    if args.config is not None:
        return dr_drill.run(args, say)
    targets = load_targets(args.targets, args.production_size)
    run_dir = report.new_run_dir(args.reports_dir or Path("reports")).resolve()
    data = _dataset(args)
    plan = DrillPlan(data, [ALL_DUMP_SETTINGS[n] for n in args.dump] if args.logical else [],
                     [ALL_RESTORE_SETTINGS[n] for n in args.restore], args.recall_threshold)
    started = datetime.now(UTC)
    try:
        with backend_for(args, [run_dir]) as backend:
            result = run_plan(backend, plan, run_dir / "artifacts", say)
            physical = run_physical(
                backend, data, [BASE_BACKUP_SETTINGS[n] for n in args.physical],
                run_dir / "artifacts" / "physical", say, recall_threshold=args.recall_threshold,
                fast_checkpoint=args.fast_checkpoint)
            pitr = _run_pitr(args, backend, data)
    except (DrillError, OSError, psycopg.Error, KeyboardInterrupt) as exc:
        stopped = [report.aborted(exc)]  # the report says what stopped the run
        clean_after(exc, lambda: report.finish("pgvdrill drill", run_dir, started, stopped,
                                               targets, args.fail_on, say),
                    f"(writing) the report in {run_dir}")
        raise
    drills = [d.as_dict() for d in [*result.drills, *physical, *pitr]]
    return report.finish("pgvdrill drill", run_dir, started, drills, targets, args.fail_on,
                         say, server=result.server, dataset=result.dataset)


def _run_pitr(args: argparse.Namespace, backend: Backend, data: Dataset
              ) -> list[DrillResult]:
    """The PITR drills `args.pitr` asks for (none when it is empty), on a primary copied
    from the dataset's template."""
    if not args.pitr:
        return []
    template, _ = dataset_template(backend, data)
    return run_pitr(backend, template, args.pitr, args.workdir or default_workdir(), say)


def cmd_settings(args: argparse.Namespace) -> int:
    say("dump settings (--dump):")
    for dump_setting in ALL_DUMP_SETTINGS.values():
        say(f"  {dump_setting.name:16} {dump_setting.description}")
    say("restore settings (--restore):")
    for restore_setting in ALL_RESTORE_SETTINGS.values():
        say(f"  {restore_setting.name:20} {restore_setting.description}")
    physcmd.list_settings(say)
    return 0




def truthful(exc: Exception, command: str) -> Exception:
    """`exc` as the CLI reports it: an OSError or a psycopg error that nothing caught, when
    the machine caused it (a full disk, a permission, a server that died or cannot be
    reached), is an `EnvironmentFailure`; every pgvdrill error is already what it says
    (the point where the machine failed raises EnvironmentFailure itself)."""
    if isinstance(exc, DrillError):
        return exc
    cause = environment_cause(exc)
    if cause is None:
        return exc
    return EnvironmentFailure(f"pgvdrill {command}: {_first_line(exc)}", ENVIRONMENT_HINT)


def _first_line(exc: Exception) -> str:
    text = exc.message if isinstance(exc, DrillError) else str(exc)
    return (text.strip().splitlines() or [type(exc).__name__])[0]


def main(argv: Sequence[str] | None = None) -> int:
    handle_signals()
    args = walcmd.parse_args(build_parser(), argv)  # restore-wal's usage errors: 126
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    commands = {"drill": cmd_drill, "settings": cmd_settings,
                "verify-backup": lambda a: physcmd.cmd_verify_backup(a, say),
                "bench": lambda a: cmd_bench(a, say), **PRODUCTION,
                **walcmd.COMMANDS}
    try:
        try:
            return commands[args.command](args)
        except (OSError, psycopg.OperationalError) as exc:  # nothing caught: the machine?
            failure = exc if args.command in walcmd.COMMANDS else truthful(exc, args.command)
            if failure is exc:
                raise
            raise failure from exc
    except DrillError as exc:
        kind = "error" if isinstance(exc, ConfigError) else type(exc).__name__
        print(f"pgvdrill: {kind}: {exc}", file=sys.stderr)
        return exc.exit_code
    except Interrupted as exc:
        print(f"pgvdrill: interrupted by {exc.name}: stopped, with every program it had "
              "started; a backup it was taking is left incomplete, without a catalog entry",
              file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("pgvdrill: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
