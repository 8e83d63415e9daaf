"""`pgvdrill installations`: the PostgreSQL installations pgvdrill finds, their versions and
which checks each supports (see installation.find_installations, capabilities.py)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from pgvdrill.backends import BackendOptions, installations_of, probe_pgvector
from pgvdrill.capabilities import Capability, installation_capabilities
from pgvdrill.cli import common
from pgvdrill.config import CONFIG_ENV, CONFIG_PLACES, find_config
from pgvdrill.installation import Found

DESCRIPTION = """\
The PostgreSQL installations pgvdrill finds: the embedded one, [drill] pg_bin and [drill]
installations of the configuration, --pg-bin and --installation; for each its PostgreSQL
and pgvector versions and which checks it supports (a missing one with the reason: its
checks are reported unknown). Physical restores use the installation of the source's
major version; logical ones [drill] target_version or --target-version.

--probe also starts a scratch server of each and checks that pgvector works there
(CREATE EXTENSION vector, a distance on 64-dimension vectors, an HNSW index answering a
query): a pgvector built for another CPU dies of SIGILL on its first distance.

exit codes: 0 every installation usable, 2 one named is unusable (missing, untrusted) or
its probe failed."""
EXAMPLES = """examples:
  pgvdrill installations
  pgvdrill installations --installation /usr/lib/postgresql/16/bin --probe
  pgvdrill installations --config /etc/pgvdrill/pgvdrill.toml --json
"""
# the capabilities shown, by what an operator calls them
SHOWN = {"vector": "pgvector", "amcheck": "amcheck", "pg_walinspect": "pg_walinspect",
         "pg_verifybackup_tar": "tar verify", "incremental_backup": "incremental",
         "pg_upgrade": "pg_upgrade", "pg_waldump": "pg_waldump"}


def add_parser(sub: common.SubParsers) -> None:
    parser = common.command_parser(sub, "installations", "the PostgreSQL installations "
                                   "found, their versions and what each supports",
                                   DESCRIPTION, EXAMPLES)
    common.add_config_option(parser)
    parser.add_argument("--pg-bin", type=Path, help="a PostgreSQL bin directory")
    common.add_installation_option(parser)
    parser.add_argument("--probe", action="store_true",
                        help="start a scratch server of each and check pgvector works there")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--workdir", type=Path, help="where --probe's scratch servers live")
    parser.add_argument("--cache-dir", type=Path, help="where initdb templates are kept")


def run(args: argparse.Namespace) -> int:
    config = find_config(args.config) if args.config or os.environ.get(CONFIG_ENV) or any(
        p.is_file() for p in CONFIG_PLACES) else None
    drill = config.drill if config else common.DRILL_DEFAULTS
    options = common.backend_options(
        argparse.Namespace(**{**vars(args), "backend": "system" if args.pg_bin else None,
                              "image": None}), drill)
    found, problems = installations_of(options)
    listing = [_describe(f, options if args.probe else None) for f in found]
    failed = [i for i in listing if i.get("probe", {}).get("available") is False]
    if args.json:
        print(json.dumps({"installations": listing, "left_out": problems}, indent=2))
    else:
        for item in listing:
            _say(item)
        for problem in problems:
            common.say(f"left out: {problem}")
    return 2 if problems or failed else 0


def _describe(found: Found, options: BackendOptions | None) -> dict[str, Any]:
    inst = found.installation
    caps = installation_capabilities(inst)
    item: dict[str, Any] = {
        "origin": found.origin, "bindir": str(inst.bindir), "postgresql": inst.version,
        "pgvector": inst.pgvector_version(),
        "capabilities": {SHOWN[name]: _as_dict(cap) for name, cap in caps.items()
                         if name in SHOWN}}
    if options is not None:
        item["probe"] = _as_dict(probe_pgvector(options, found))
    return item


def _as_dict(cap: Capability) -> dict[str, Any]:
    return {"available": cap.available, "reason": cap.reason}


def _say(item: dict[str, Any]) -> None:
    common.say(f"PostgreSQL {item['postgresql']}, pgvector {item['pgvector'] or '(none)'}: "
               f"{item['bindir']} ({item['origin']})")
    for name, cap in item["capabilities"].items():
        common.say(f"  {name}: " + ("yes" if cap["available"] else f"no: {cap['reason']}"))
    if "probe" in item:
        probe = item["probe"]
        common.say("  probe: " + (f"ok: {probe['reason']}" if probe["available"]
                                  else f"FAILED: {probe['reason']}"))


COMMAND = common.Command("installations", add_parser, run)
