"""`pgvdrill procedures`: drill the configuration's [[procedure]] entries and/or the built-in
runbook pack on throw-away servers, print one line per step and write reports/<run-id>/
with the per-step verdict table."""

from __future__ import annotations

import argparse
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from pgvdrill.backends import BackendOptions, backend_for
from pgvdrill.cli import common
from pgvdrill.cluster.local import LocalBackend
from pgvdrill.config import CONFIG_ENV, Config, Procedure, find_config
from pgvdrill.dataset import Dataset, DatasetSpec, generate
from pgvdrill.drill.source import dataset_template
from pgvdrill.errors import ConfigError, DrillError, clean_after
from pgvdrill.policy.targets import load_targets
from pgvdrill.procedures import user
from pgvdrill.procedures.pack import PACK, PROCEDURES, PackRun
from pgvdrill.procedures.runbook import run_pack
from pgvdrill.procedures.steps import VERDICTS, Recorder, StepResult
from pgvdrill.report import run_dir as report
from pgvdrill.report.views import write_views

DESCRIPTION = """\
Drill backup and restore procedures on throw-away servers and judge every step: works
(it ran and its result verified exactly), fails (with the error or what did not verify)
or unsafe (with what it lost or exposed, as observed).

--config: the [[procedure]] entries of the configuration (templates with {dsn},
{target_dsn}, {backup}, {wal_dir}, {pgdata}, {target_time}; see pgvdrill.example.toml),
each run on a copy of a generated dataset and its restore verified like pgvdrill's own.
No [source] is needed. --pack runbook: the runbook's procedures, verbatim where they are
valid commands. Without --config or $PGVDRILL_CONFIG, --pack runs alone; otherwise the
configuration is found as for every command.

Writes reports/<run-id>/report.json (a top-level "procedures" list) and its views.

exit codes: 0 every configured procedure works (a pack's fails and unsafe steps are
findings, reported but not errors, unless --fail-on-findings), 1 a configured procedure's
step fails or is unsafe (with --fail-on-findings: any step), 2 bad configuration or
options, 3 an external tool failed outside a step, 130 interrupted."""

EXAMPLES = """\
examples:
  pgvdrill procedures --pack runbook               # the runbook's procedures, step by step
  pgvdrill procedures --config /etc/pgvdrill/pgvdrill.toml     # the team's [[procedure]]s
  pgvdrill procedures --config pgvdrill.toml --only "nightly dump"
  pgvdrill procedures --pack runbook --only pg_restore,pitr
  pgvdrill procedures --pack runbook --fail-on-findings          # CI: fail on any finding
"""


def _names(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one procedure")
    return names


def add_parser(sub: common.SubParsers) -> None:
    parser = common.command_parser(
        sub, "procedures", "drill your own backup/restore procedures and the runbook's",
        description=DESCRIPTION, epilog=EXAMPLES)
    common.add_backend_options(parser)
    common.add_config_option(parser)
    parser.add_argument("--pack", choices=(PACK,),
                        help="also run a built-in procedure pack: runbook (RUNBOOK.md's "
                             f"procedures: {', '.join(PROCEDURES)})")
    parser.add_argument("--only", type=_names,
                        help="comma-separated procedures to run: [[procedure]] names and/or "
                             "the pack's (default: all)")
    parser.add_argument("--reports-dir", type=Path,
                        help="where reports/<run-id>/ is written (default: [drill] "
                             "reports_dir of the configuration, else ./reports)")
    parser.add_argument("--fail-on-findings", action="store_true",
                        help="exit 1 also when a step of the pack fails or is unsafe")
    parser.add_argument("--rows", type=int, default=DatasetSpec.rows,
                        help=f"rows of the generated dataset (default {DatasetSpec.rows})")
    parser.add_argument("--dim", type=int, default=DatasetSpec.dim,
                        help=f"its vector dimension (default {DatasetSpec.dim})")


def _selected(pack_asked: bool, only_asked: list[str] | None, config: Config | None
              ) -> tuple[list[Procedure], list[str]]:
    """The configured procedures and the pack's procedures this run drills (checked)."""
    procedures = list(config.procedures) if config else []
    if not procedures and not pack_asked:
        raise ConfigError(f"{config.path if config else 'the configuration'} has no "
                          "[[procedure]] entry and no --pack was given: nothing to drill",
                          "add [[procedure]] entries (see pgvdrill.example.toml) or pass "
                          "--pack runbook")
    pack = list(PROCEDURES) if pack_asked else []
    only = only_asked or [p.name for p in procedures] + pack
    unknown = sorted(set(only) - {p.name for p in procedures} - set(pack))
    if unknown:
        raise ConfigError(f"--only names unknown procedure(s): {', '.join(unknown)}",
                          f"known: {', '.join([p.name for p in procedures] + pack)}")
    chosen = [p for p in procedures if p.name in only]
    for proc in chosen:
        user.check(proc)
    return chosen, [p for p in pack if p in only]


def run(args: argparse.Namespace) -> int:
    """The `pgvdrill procedures` handler."""
    load = args.config is not None or bool(os.environ.get(CONFIG_ENV)) or not args.pack
    config = find_config(args.config) if load else None
    procedures, pack = _selected(bool(args.pack), args.only, config)
    drill = config.drill if config else common.DRILL_DEFAULTS
    run_dir = report.new_run_dir(args.reports_dir or drill.reports_dir)
    data = generate(DatasetSpec(rows=args.rows, dim=args.dim))
    own, built_in = Recorder("config", common.say), Recorder(PACK, common.say)
    options = common.backend_options(args, drill)
    started = datetime.now(UTC)
    try:
        facts = _drill(options, data, procedures, pack, own, built_in)
    except (DrillError, OSError, psycopg.Error, KeyboardInterrupt) as exc:
        stopped = report.aborted(exc)
        clean_after(exc, lambda: _write(args.fail_on_findings, run_dir, started, own,
                                        built_in, {}, stopped),
                    f"(writing) the report in {run_dir}")
        raise
    return _write(args.fail_on_findings, run_dir, started, own, built_in, facts)


def _drill(options: BackendOptions, data: Dataset, procedures: list[Procedure],
           pack: list[str], own: Recorder, built_in: Recorder) -> dict[str, Any]:
    """Drill the configured procedures and the pack's steps; what the report says about
    the servers and the dataset."""
    with backend_for(options) as backend:
        if not isinstance(backend, LocalBackend):
            raise ConfigError(f"procedures run on this machine, not in containers (backend "
                              f"{backend.name})", "use --backend embedded or system")
        template, load_seconds = dataset_template(backend, data)
        common.say(f"dataset {data.spec.key()}: "
                   + (f"loaded in {load_seconds:.1f}s" if load_seconds else "cached template"))
        for proc in procedures:
            user.drill(user.Run(backend, template, own), proc)
        if pack:
            run_pack(PackRun(backend, template, built_in, pack))
        return {"server": backend.facts(),
                "dataset": {"key": data.spec.key(), "rows": data.spec.rows,
                            "dim": data.spec.dim, "load_seconds": round(load_seconds, 3)}}


def _write(fail_on_findings: bool, run_dir: Path, started: datetime, own: Recorder,
           built_in: Recorder, facts: dict[str, Any], stopped: dict[str, Any] | None = None
           ) -> int:
    """Write the report of every step judged (and, when `stopped`, what stopped the run),
    print its summary line; the exit code."""
    failed = [r for r in own.results if r.verdict != "works"]
    findings = [r for r in built_in.results if r.verdict != "works"]
    payload = report.build("pgvdrill procedures", run_dir, started,
                           [stopped] if stopped else [], load_targets(None), **facts)
    payload["procedures"] = [r.as_dict() for r in own.results + built_in.results]
    payload["ok"] = not failed and not stopped and not (fail_on_findings and findings)
    path = report.write_json(run_dir / "report.json", payload)
    write_views(run_dir, payload)
    common.say(f"{'ok' if payload['ok'] else 'FAILED'}: "
               f"{_tally(own.results + built_in.results)}; configured procedures: "
               f"{len(failed)} step(s) not working; runbook findings: {len(findings)}; "
               f"report: {path}")
    return 0 if payload["ok"] else 1


def _tally(results: list[StepResult]) -> str:
    counted = Counter(r.verdict for r in results)
    return f"{len(results)} steps: " + ", ".join(f"{counted[v]} {v}" for v in VERDICTS)



COMMAND = common.Command("procedures", add_parser, run)
