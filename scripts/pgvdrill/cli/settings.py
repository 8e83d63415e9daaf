"""`pgvdrill settings`: the dump, restore and base backup settings `pgvdrill drill` knows,
with what each does."""

from __future__ import annotations

import argparse

from pgvdrill.cli import physical as physcmd
from pgvdrill.cli.common import Command, SubParsers, say
from pgvdrill.logical.dump import ALL_DUMP_SETTINGS
from pgvdrill.logical.restore import ALL_RESTORE_SETTINGS


def add_parser(sub: SubParsers) -> None:
    sub.add_parser("settings", help="list the dump and restore settings with what they do")


def run(args: argparse.Namespace) -> int:
    say("dump settings (--dump):")
    for dump_setting in ALL_DUMP_SETTINGS.values():
        say(f"  {dump_setting.name:16} {dump_setting.description}")
    say("restore settings (--restore):")
    for restore_setting in ALL_RESTORE_SETTINGS.values():
        say(f"  {restore_setting.name:20} {restore_setting.description}")
    physcmd.list_settings(say)
    return 0


COMMAND = Command("settings", add_parser, run)
