"""`pgvdrill verify`'s workflow: check catalog backups, the whole repository, or a bare
pg_dump archive by its path (see verify_repo.py for what is checked)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pgvdrill.backup.source import client_tools, config_tools, named_installations
from pgvdrill.backup.stored import has_wal
from pgvdrill.cluster.base import ToolRunner
from pgvdrill.config import Config
from pgvdrill.errors import BackupError, ConfigError
from pgvdrill.installation import find_installations
from pgvdrill.logical.archive import inspect
from pgvdrill.ops.verify_repo import (
    Findings,
    Tools,
    layout_problems,
    source_identity,
    source_timeline,
    timeline_findings,
    verify_repository,
)
from pgvdrill.repository import Repository, lock
from pgvdrill.wal.records import check_records

PROBLEMS = BackupError.exit_code
UNCHECKED = ConfigError.exit_code  # a backup no configured installation can read
Say = Callable[[str], None]


@dataclass(frozen=True)
class VerifyRequest:
    """What `pgvdrill verify` checks: `backups` (catalog ids; none: every one), `all` (the
    whole repository), `strict` (warnings fail too), `deep` (every archived WAL record),
    with the client tools of `pg_bin` (None: the configuration's, and for a base backup of
    another major the configured installations of its major)."""

    backups: tuple[str, ...]
    all: bool
    strict: bool
    deep: bool
    pg_bin: Path | None


def verify_backups(config: Config, args: VerifyRequest, say: Say) -> int:
    """Check what `args` names in the configuration's repository, saying each finding;
    the exit code: problems first, then backups not checked (no installation of their
    major), then warnings with --strict."""
    tools = (Tools(client_tools(args.pg_bin)) if args.pg_bin else
             Tools(config_tools(config),
                   lambda: find_installations(named_installations(config), None)[0]))
    repo = Repository(config.require_repository())
    source, how = source_identity(config)
    with lock.shared(repo):
        findings = verify_repository(repo, tools,
                                     None if args.all or not args.backups else list(args.backups),
                                     source)
        if source is None:
            findings.notes.append(f"note: the backups' source is not checked ({how})")
        if (args.all or not args.backups) and not layout_problems(repo):
            timelines = timeline_findings(repo, *source_timeline(config))
            findings.notes += timelines.notes
            findings.problems += timelines.problems
            findings.warnings += timelines.warnings
        if args.deep:
            findings.notes += _deep(repo, tools.default, findings)
    for line in findings.checked + findings.notes:
        say(line)
    for problem in findings.problems:
        say(f"problem: {_one_line(problem)}")
    for unchecked in findings.unchecked:
        say(f"unknown: {unchecked}")
    for warning in findings.warnings:
        say(f"warning: {warning}")
    failed = bool(findings.problems or (args.strict and findings.warnings))
    verdict = "FAILED" if failed else "unknown" if findings.unchecked else "ok"
    unchecked = f"{len(findings.unchecked)} not checked, " if findings.unchecked else ""
    say(f"{verdict}: {len(findings.checked)} backup(s) ok, {unchecked}"
         f"{len(findings.problems)} problem(s), {len(findings.warnings)} warning(s) in "
         f"{config.require_repository()}")
    return PROBLEMS if failed else UNCHECKED if findings.unchecked else 0


def _deep(repo: Repository, tools: ToolRunner, findings: Findings) -> list[str]:
    """--deep: every archived WAL record read (its problems added to `findings`); the
    note saying what it cost."""
    if not has_wal(repo):
        return [f"note: --deep: no archived WAL in {repo.wal} to read"]
    records = check_records(tools, repo.wal)
    findings.problems += records.problems
    return [f"deep: {records.cost()}: "
            + (f"{len(records.problems)} problem(s)" if records.problems
               else "every record reads")]


def verify_archives(paths: list[Path], pg_bin: Path | None, say: Say) -> int:
    """Check bare pg_dump archives by their paths (no configuration needed)."""
    tools = client_tools(pg_bin)
    for path in paths:
        archive = inspect(tools, path)
        say(f"ok: {archive.path} ({archive.format}, {archive.size_bytes} bytes, "
             f"{len(archive.toc)} items, sha256 {archive.sha256})")
    return 0


def _one_line(problem: str) -> str:
    """A problem on its own line: a tool's quoted report follows it, indented."""
    first, *rest = problem.strip().splitlines()
    return "\n".join([first, *("    " + line.strip() for line in rest)])
