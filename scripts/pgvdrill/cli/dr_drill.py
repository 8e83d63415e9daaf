"""`pgvdrill dr-drill`: the monthly disaster-recovery drill of the configured source (see
drill/dr.py)."""

from __future__ import annotations

import argparse

from pgvdrill.cli import common
from pgvdrill.cli.drill_options import add_dr_options, add_fail_on_option, add_judging_options
from pgvdrill.cli.restore import target_from
from pgvdrill.config import find_config
from pgvdrill.drill import dr

DESCRIPTION = """\
The disaster-recovery drill of the configured source: its newest backups restored into
scratch servers (the base backup recovering through the archived WAL to its end) and
compared with it (read-only towards the source), judged against the targets. Writes
reports/<run-id>/ (report.json, .md, .html, junit.xml, metrics.prom).

A physical backup is restored with PostgreSQL of the source's own major version: the
backend's installation when it is that version, else one of [drill] installations or
--installation (pgvdrill installations lists them); none of that version is an error. A
logical backup is restored into --target-version (default: [drill] target_version, else the
backend's own), so the drill can rehearse an upgrade; the report states both versions.

Backups other tools took ([provider.NAME] sections: barman, barman-cloud, pgbackrest,
command, files, pgvdrill; docs/providers/) are drilled the same way: each provider's newest
backup of each kind (--provider NAME[,NAME]: only those, not the repository; --backup ID:
that one), restored with the tool, its WAL fetched by the drill into a directory of its
own, recovered to the archive's end (or --target-time/-xid/-lsn/-name/--target-immediate:
then the content is not compared with the live source, which is past the target) and
verified; the tool's own checks and verification are evidence, and fail the drill when
they fail."""
EXAMPLES = """examples:
  pgvdrill dr-drill --config /etc/pgvdrill/pgvdrill.toml          # the newest backups
  pgvdrill dr-drill --config /etc/pgvdrill/pgvdrill.toml --take   # backups taken now
  pgvdrill dr-drill --kinds physical --fail-on unknown
  pgvdrill dr-drill --installation /usr/lib/postgresql/16/bin   # a PostgreSQL 16 source
  pgvdrill dr-drill --kinds logical --target-version 18         # rehearse the upgrade to 18
  pgvdrill dr-drill --provider barman                            # barman's newest backup
  pgvdrill dr-drill --provider walg --backup base_000000010000000000000004
  pgvdrill dr-drill --provider walg --target-time "2026-12-01 10:00:00+00"
"""


def add_parser(sub: common.SubParsers) -> None:
    parser = common.command_parser(
        sub, "dr-drill", "the disaster-recovery drill: restore the configured source's "
                         "newest backups and compare",
        description=DESCRIPTION,
        epilog=EXAMPLES)
    common.add_backend_options(parser)
    common.add_installation_option(parser)
    common.add_target_version_option(parser)
    add_judging_options(parser, "[drill] reports_dir of the configuration, else ./reports")
    common.add_config_option(parser)
    add_dr_options(parser, "")
    add_fail_on_option(parser)


def run(args: argparse.Namespace) -> int:
    """The DR drill, its options resolved once: the command line's, else the
    configuration's [drill], else the defaults."""
    config = find_config(args.config)
    drill = config.drill
    options = dr.DrOptions(
        kinds=tuple(args.kinds), take=args.take, recall_threshold=args.recall_threshold,
        fail_on=args.fail_on, reports_dir=args.reports_dir or drill.reports_dir,
        targets=args.targets or drill.targets,
        production_size=args.production_size or drill.production_size,
        backend=common.backend_options(args, drill),
        providers=None if args.provider is None else tuple(args.provider),
        backup=args.backup, target=target_from(args))
    return dr.run(config, options, common.say)


COMMAND = common.Command("dr-drill", add_parser, run)
