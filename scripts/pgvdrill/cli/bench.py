"""`pgvdrill bench`: backup and restore times across dataset sizes, every mode, with
ratios measured side by side in the same run."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import psycopg

from pgvdrill.backends import backend_for
from pgvdrill.bench.modes import MODES, parse_modes, select
from pgvdrill.bench.payload import payload, table
from pgvdrill.bench.run import BenchResult, run_bench
from pgvdrill.bench.sizes import DEFAULT_SIZES, parse_sizes
from pgvdrill.cli.common import (
    DRILL_DEFAULTS,
    Command,
    add_backend_options,
    backend_options,
    command_parser,
    say,
)
from pgvdrill.errors import ConfigError, DrillError, clean_after
from pgvdrill.report import run_dir as report
from pgvdrill.report.views import write_views

T = TypeVar("T")

EXAMPLES = f"""examples:
  pgvdrill bench                                  # {DEFAULT_SIZES}, every mode: minutes
  pgvdrill bench --sizes 2000x64,100000x768       # a source database over 1 GB: an hour or more
  pgvdrill bench --modes dump,restore:fresh --repeat 3

Each mode runs as pgvdrill does it ("pgvdrill <mode>": a dump with its archive check, a
base backup with pg_verifybackup, a restore with its preparation) and, where there is
one, as the bare tool command ("raw <mode>"). Base backups use --checkpoint=fast.

modes ('dump', 'basebackup', 'restore' select a group):
""" + "\n".join(f"  {m.name:27} {m.description}" for m in MODES.values())


def _option(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type from a parser that raises `ConfigError`."""
    def convert(value: str) -> T:
        try:
            return parse(value)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    return convert


def repeats(text: str) -> int:
    """--repeat: how many times each run is measured, at least once."""
    if not text.strip().isdigit() or int(text) < 1:
        raise ConfigError(f"--repeat {text!r} is not a whole number of times, 1 or more")
    return int(text)


def add_bench_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                     add_backend_options: Callable[[argparse.ArgumentParser], None]) -> None:
    parser = command_parser(
        sub, "bench", "time every backup and restore mode across dataset sizes",
        description="Load a generated dataset at each size, take every backup and restore "
                    "with pgvdrill and with the bare tool command, and print the times and "
                    "ratios measured side by side: harness overhead, the runbook's settings "
                    "vs recommended ones, physical vs logical RTO, an RTO-optimised restore vs "
                    "plain pg_restore -j 2. Writes reports/<run-id>/report.json (its bench "
                    "section). Nothing is asserted about speed.",
        epilog=EXAMPLES)
    add_backend_options(parser)
    parser.add_argument("--sizes", type=_option(parse_sizes), default=parse_sizes(DEFAULT_SIZES),
                        help=f"comma-separated ROWSxDIM dataset sizes (default {DEFAULT_SIZES})")
    parser.add_argument("--modes", type=_option(parse_modes), default=["all"],
                        help="comma-separated modes or groups (default all; listed below)")
    parser.add_argument("--repeat", type=_option(repeats), default=1,
                        help="measure each run N times and keep the median (default 1)")
    parser.add_argument("--reports-dir", type=Path,
                        help="where reports/<run-id>/ is written (default ./reports)")


def run(args: argparse.Namespace) -> int:
    """The `pgvdrill bench` handler."""
    run_dir = report.new_run_dir(args.reports_dir or DRILL_DEFAULTS.reports_dir)
    started = datetime.now(UTC)
    result = BenchResult()
    options = backend_options(args)
    try:
        with backend_for(options) as backend:
            run_bench(backend, args.sizes, select(args.modes), args.repeat, options.workdir,
                      say, result)
    except (DrillError, OSError, psycopg.Error, KeyboardInterrupt) as exc:
        # the report says what stopped the run, with what was measured before
        content = payload(result, run_dir.name, started, datetime.now(UTC), exc)
        clean_after(exc, lambda: say(f"FAILED: the run stopped; report: "
                                     f"{_write(run_dir, content)}"),
                    f"(writing) the report in {run_dir}")
        raise
    for line in table(result.runs):
        say(line)
    say("ratios (a / b: how many times b's time a takes; measured in this run):")
    for ratio in result.ratios:
        say("  " + ratio.line())
    path = _write(run_dir, payload(result, run_dir.name, started, datetime.now(UTC)))
    if result.failures:
        for failure in result.failures:
            say(f"FAILED: {failure.line()}")
        say(f"FAILED: {len(result.failures)} measurement(s); report: {path}")
        return result.failures[0].error.exit_code
    say(f"ok: {len(result.runs)} runs at {len(result.sizes)} size(s); report: {path}")
    return 0


def _write(run_dir: Path, content: dict[str, object]) -> Path:
    path = report.write_json(run_dir / "report.json", content)
    write_views(run_dir, json.loads(path.read_text()))
    return path


COMMAND = Command("bench", lambda sub: add_bench_parser(sub, add_backend_options), run)
