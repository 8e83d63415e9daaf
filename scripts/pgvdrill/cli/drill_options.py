"""The options `pgvdrill drill` and `pgvdrill dr-drill` share: how a restore is judged,
where the report goes, and which backups the DR drill takes and drills."""

from __future__ import annotations

import argparse
from pathlib import Path


def choices(value: str, known: dict[str, object], what: str) -> list[str]:
    """argparse type: comma-separated names of `known`, or 'all'."""
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


def add_judging_options(parser: argparse.ArgumentParser, reports_default: str) -> None:
    """--recall-threshold, --reports-dir (its default described by `reports_default`),
    --targets, --production-size."""
    parser.add_argument("--recall-threshold", type=_fraction, default=0.9,
                        help="minimum ANN recall@10 after restore (default 0.9); when the "
                             "source itself finds less on the same queries, its figure less "
                             "a noise margin, never below a quarter of it")
    parser.add_argument("--reports-dir", type=Path,
                        help=f"where reports/<run-id>/ is written (default {reports_default})")
    parser.add_argument("--targets", type=Path,
                        help="TOML file overriding the runbook's targets (RTO, RPO, throughput "
                             "floors, backup age, production size); see targets_default.toml")
    parser.add_argument("--production-size",
                        help='declared production data size, e.g. "200GB": throughput '
                             "verdicts project the measured rates to it")


def add_dr_options(parser: argparse.ArgumentParser, condition: str) -> None:
    """--kinds, --take and the provider options, their help starting with `condition`
    (e.g. "with --config: ")."""
    parser.add_argument("--kinds", default=["logical", "physical"],
                        type=lambda v: choices(v, {"logical": 1, "physical": 1}, "kind"),
                        help=f"{condition}which kinds of backup to drill, comma-separated "
                             "(default logical,physical)")
    parser.add_argument("--take", action="store_true",
                        help=f"{condition}take a backup of each kind first and drill it, "
                             "compared exactly with the source at that backup's own moment, "
                             "however busy the source: the logical one at pg_dump's snapshot, "
                             "the physical one recovered to a snapshot read after it (through "
                             "WAL streamed from the source; a primary only)")
    add_provider_options(parser, condition)


def add_fail_on_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fail-on", choices=("fail", "unknown", "none"), default="fail",
                        help="exit 6 when a target verdict is fail (default), fail or unknown, "
                             "or never; a failed verification always exits 1")


def add_target_options(parser: argparse.ArgumentParser, condition: str = "") -> None:
    """The recovery target options (one of them) and --exclusive, each help starting with
    `condition`; cli.restore.target_from reads them."""
    targets = parser.add_mutually_exclusive_group()
    targets.add_argument("--target-time", metavar="T",
                         help=f"{condition}recovery_target_time, with a zone")
    targets.add_argument("--target-xid", metavar="X", help=f"{condition}recovery_target_xid")
    targets.add_argument("--target-lsn", metavar="L", help=f"{condition}recovery_target_lsn")
    targets.add_argument("--target-name", metavar="N",
                         help=f"{condition}recovery_target_name (a pg_create_restore_point "
                              "name)")
    targets.add_argument("--target", choices=("immediate",),
                         help=f"{condition}immediate: the backup's consistent point")
    targets.add_argument("--target-immediate", dest="target", action="store_const",
                         const="immediate", help="the same as --target immediate")
    parser.add_argument("--exclusive", action="store_true",
                        help=f"{condition}stop just before the target "
                             "(recovery_target_inclusive = off)")
    parser.set_defaults(target_action=None)  # `restore pitr` adds --target-action


def add_provider_options(parser: argparse.ArgumentParser, condition: str) -> None:
    """--provider, --backup and the recovery targets of a provider's backup, each help
    starting with `condition`."""
    parser.add_argument("--provider", type=lambda v: [n for n in v.split(",") if n],
                        metavar="NAME[,NAME]",
                        help=f"{condition}drill only these [provider.NAME] sections' backups "
                             "(not the [repository]'s); default: every provider and the "
                             "repository")
    parser.add_argument("--backup", metavar="ID",
                        help=f"{condition}with --provider: the backup to drill, as the "
                             "provider lists it (default: its newest of each --kinds)")
    add_target_options(parser, f"{condition}with --provider: ")
