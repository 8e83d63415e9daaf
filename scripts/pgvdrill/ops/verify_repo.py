"""Checking the backups in a repository, without restoring them.

Per backup: its files against its catalog entry (size and sha256, nothing missing, nothing
added); then its content: a dump's table of contents and every data block read back
(`inspect`), a base backup checked by pg_verifybackup with its WAL parsed (`check_backup`);
for a base backup also the archived WAL in <repository>/wal from its start LSN on its
timeline (`wal_reach`: the first missing segment is named, and the first one from another
database system, or renamed); for a dump also the globals.sql beside it (readable, holding
CREATE ROLE; a backup taken before pgvdrill kept globals gets a note). For the whole
repository also unreadable catalog entries (problems) and backup directories without an
entry (warnings: a backup running now, or one that failed; pgvdrill never deletes them),
invalid catalog entries (schema.py), a symlinked root or directory, what in wal/ is not
an archived WAL file of the right size (wal_files.py), symlinks and other non-regular files
in a backup, and backups whose source is not the configured source (by system identifier).
A base backup is read by the tools of its own major (`Tools`); one whose major no
installation offers is listed as not checked, naming the installation to configure.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgvdrill.backup.source import server_facts, source_server
from pgvdrill.backup.stored import artifact_path, globals_path, has_wal, wal_reach
from pgvdrill.config import Config
from pgvdrill.errors import BackupError, ConfigError
from pgvdrill.files.gzipped import gzip_problem
from pgvdrill.installation import Found, Installation, listed
from pgvdrill.logical.archive import inspect
from pgvdrill.logical.globals import GLOBALS_FILE
from pgvdrill.physical.verifybackup import backup_major, check_backup
from pgvdrill.repository import Entry, Repository, file_problems
from pgvdrill.repository.catalog import incomplete, read_catalog
from pgvdrill.repository.layout import SUBDIRS
from pgvdrill.repository.paths import UnsafePath
from pgvdrill.repository.wal_files import wal_file_problems
from pgvdrill.wal.timelines import current_timeline, scan


@dataclass
class Findings:
    """What verification found: problems fail it, warnings only with --strict."""

    checked: list[str] = field(default_factory=list)  # one "ok" line per good backup
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # backups no tools here can read


@dataclass
class Tools:
    """The client tools verify reads backups with: `default` for dumps and base backups of
    its major; for another major's base backup the first installation of that major in
    `more()` (the configured installations, asked once on first need; none when the
    operator named the tools, --pg-bin)."""

    default: Installation
    more: Callable[[], Sequence[Found]] = lambda: ()
    _found: Sequence[Found] | None = field(default=None, init=False, repr=False)

    def of_major(self, major: int) -> Installation | None:
        """The tools of PostgreSQL `major`, or None when no installation here is one."""
        if self.default.major == major:
            return self.default
        if self._found is None:
            self._found = self.more()
        return next((f.installation for f in self._found if f.installation.major == major),
                    None)

    def missing(self, major: int) -> str:
        """Why a base backup of PostgreSQL `major` is not checked, and what to configure."""
        looked = [Found("verify's client tools", self.default), *(self._found or ())]
        return (f"it is PostgreSQL {major}'s, and only PostgreSQL {major}'s pg_verifybackup "
                f"and pg_waldump read it; no installation of PostgreSQL {major} is "
                f"configured (found: {listed(looked)}): name its bin directory in [drill] "
                f"installations (or pass --pg-bin DIR of PostgreSQL {major})")


def globals_problems(repo: Repository, entry: Entry) -> list[str]:
    """A logical backup's globals.sql unreadable or without a role (its size and sha256
    are checked with the other files)."""
    path = globals_path(repo, entry)
    if path is None:
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [f"{entry.id}: {GLOBALS_FILE} cannot be read: {exc}"]
    return [] if "CREATE ROLE" in text else [
        f"{entry.id}: {GLOBALS_FILE} holds no CREATE ROLE: restore logical --with-globals "
        "cannot create roles from it"]


def globals_note(entry: Entry) -> list[str]:
    """A note for a logical backup taken before pgvdrill kept globals beside each dump."""
    if entry.kind != "logical" or any(f.path == GLOBALS_FILE for f in entry.files):
        return []
    return [f"note: {entry.id} has no {GLOBALS_FILE} (taken before pgvdrill kept the roles "
            "beside each dump): restore logical --with-globals cannot use it; create the "
            "roles on the target first, or restore with --no-owner --no-privileges"]


def content_problems(repo: Repository, entry: Entry, tools: Tools) -> list[str]:
    """Every gzip file of the backup read to its end; a dump read back in full, or a base
    backup through pg_verifybackup of its major (`NotChecked` when there is none)."""
    directory = repo.backup_dir(entry.kind, entry.id)
    cut = [p for p in (gzip_problem(directory / f.path) for f in entry.files
                       if f.path.endswith(".gz")) if p]
    if cut:
        return [f"{entry.id}: {problem}" for problem in cut]
    try:
        if entry.kind == "logical":
            inspect(tools.default, artifact_path(repo, entry))
        else:
            major = backup_major(directory)
            runner = tools.of_major(major)
            if runner is None:
                raise NotChecked(f"{entry.id}: not checked: {tools.missing(major)}")
            check_backup(runner, directory)
    except BackupError as exc:
        return [f"{entry.id}: {exc.message}"]
    return []


class NotChecked(Exception):
    """A backup no tools here can read: neither good nor broken (`Findings.unchecked`)."""


def wal_problems(repo: Repository, entry: Entry) -> list[str]:
    """What stops recovery through <repository>/wal from a base backup's start, if anything
    (none is checked while wal/ holds no segment: archiving is not in use)."""
    if not has_wal(repo):
        return []
    _, problem = wal_reach(repo, entry)
    return [f"{entry.id}: WAL archive {repo.wal}: {problem}"] if problem else []


def backup_problems(repo: Repository, entry: Entry, tools: Tools) -> list[str]:
    """Everything wrong with one backup; its content is read only when its files are
    exactly those of its catalog entry."""
    problems = file_problems(repo, entry) or (content_problems(repo, entry, tools)
                                              + globals_problems(repo, entry))
    return problems + (wal_problems(repo, entry) if entry.kind == "physical" else [])


def layout_problems(repo: Repository) -> list[str]:
    """The repository's root or one of its directories a symlink or not a directory
    (nothing below it is read then), or missing (`pgvdrill backup` makes all of them)."""
    try:
        for name in SUBDIRS:
            path = repo.dir(name)
            if not os.path.lexists(path):
                return [f"{path} in backup repository {repo.root} is missing: an unmounted "
                        f"disk or a directory moved away (if it was really empty: mkdir -m "
                        f"0700 {path}; wal/ belongs to the server's OS user)"]
            if not path.is_dir():
                return [f"{path} in backup repository {repo.root} is not a directory"]
    except UnsafePath as exc:
        return [f"{exc.message} ({exc.hint})"]
    return []


def source_problems(entries: list[Entry], source: dict[str, Any]) -> list[str]:
    """Backups taken from another database system than the configured source (`source`:
    its server_facts), or, for a dump, from another of its databases."""
    problems = []
    for entry in entries:
        theirs = entry.source.get("system_identifier")
        if theirs and source["system_identifier"] and theirs != source["system_identifier"]:
            problems.append(
                f"{entry.id}: taken from database system {theirs} "
                f"({entry.source.get('describe')}), not the configured source's "
                f"{source['system_identifier']} ({source['describe']}): a repository shared "
                "with or copied from another cluster; restoring it brings back that "
                "cluster's data")
        elif entry.kind == "logical" and entry.source.get("dbname") not in (
                None, source["dbname"]):
            problems.append(
                f"{entry.id}: a dump of database {entry.source.get('dbname')}, not of the "
                f"configured source's {source['dbname']} ({source['describe']})")
    return problems


def verify_repository(repo: Repository, tools: Tools, ids: list[str] | None,
                      source: dict[str, Any] | None = None) -> Findings:
    """Check the backups `ids` (None: the whole repository, its wal/ too); `source`: the
    configured source's server_facts, when it could be asked, for the backups' origin. A
    backup no tools read is listed in `unchecked`, and the others are checked all the same."""
    if not repo.root.is_dir():
        raise ConfigError(f"backup repository {repo.root} does not exist",
                          "check [repository] path, or take a backup first (pgvdrill backup)")
    findings = Findings(problems=layout_problems(repo))
    if findings.problems:
        return findings
    entries, unreadable = read_catalog(repo)
    if ids is None:
        chosen = entries
        findings.problems += unreadable.values()
        findings.problems += wal_file_problems(repo.wal).values()
        findings.warnings += [
            f"{path}: backup directory without a catalog entry: a backup running now, or "
            "one that failed (never used by restore or drill; remove it once it is of no "
            "use to investigate)" for path in incomplete(repo, entries)]
    else:
        by_id = {e.id: e for e in entries}
        findings.problems += [unreadable[i] for i in ids if i in unreadable]
        missing = [i for i in ids if i not in by_id and i not in unreadable]
        if missing:
            raise ConfigError(f"no backup {', '.join(missing)} in the catalog of {repo.root}",
                              f"the ids are the names in {repo.catalog} without .json "
                              "(pgvdrill verify --all lists every backup)")
        chosen = [by_id[i] for i in ids if i in by_id]
    origin = source_problems(chosen, source) if source else []
    for entry in chosen:
        try:
            problems = backup_problems(repo, entry, tools)
        except NotChecked as exc:
            findings.unchecked.append(str(exc))
            problems = wal_problems(repo, entry)  # its files are as catalogued
        problems += [p for p in origin if p.startswith(f"{entry.id}: ")]
        findings.problems += problems
        findings.notes += globals_note(entry)
        if not problems and not any(u.startswith(f"{entry.id}: ")
                                    for u in findings.unchecked):
            findings.checked.append(
                f"ok: {entry.id} ({entry.kind}, {len(entry.files)} file(s), "
                f"{entry.size_bytes / 2**20:.1f} MiB, finished {entry.finished})")
    if any(e.kind == "physical" for e in chosen) and not has_wal(repo):
        findings.notes.append(f"note: no archived WAL in {repo.wal}: base backups restore to "
                              "their end only (no point-in-time recovery beyond)")
    return findings


def source_identity(config: Config) -> tuple[dict[str, Any] | None, str]:
    """The configured source's server_facts, or None and why they cannot be read."""
    if config.source is None:
        return None, f"{config.path} has no [source]"
    try:
        facts = server_facts(source_server(config))
    except ConfigError as exc:
        return None, exc.message
    if facts["system_identifier"] is None:
        return None, "the source's user may not read pg_control_system()"
    return facts, ""


def source_timeline(config: Config) -> tuple[int | None, str]:
    """The timeline the configured source is on now, and how that was read; None and why
    not when there is no [source] or it cannot be reached or asked."""
    if config.source is None:
        return None, f"{config.path} has no [source]"
    server = source_server(config)
    try:
        with psycopg.connect(server.dsn(), autocommit=True, connect_timeout=10) as conn:
            return current_timeline(conn)
    except (psycopg.Error, ConfigError) as exc:
        text = exc.message if isinstance(exc, ConfigError) else str(exc)
        reason = (text.strip().splitlines() or [type(exc).__name__])[-1]
        return None, f"cannot ask the source {server.describe()}: {reason}"


def set_aside(repo: Repository, timeline: int, files: list[str]) -> str:
    """A command that moves a stray timeline's files out of wal/ (nothing is deleted)."""
    place = repo.root / "set-aside" / f"timeline-{timeline}"
    return (f"{shlex.join(['mkdir', '-p', str(place)])} && "
            f"{shlex.join(['mv', '-n', *(str(repo.wal / name) for name in files)])} "
            f"{shlex.quote(str(place) + '/')}")


def timeline_findings(repo: Repository, current: int | None, how: str) -> Findings:
    """The archive's timelines and history files (notes), the branches the source's
    `current` timeline does not descend from (problems, with a command to set their files
    aside), malformed history files (problems); with `current` unknown (`how` says why),
    a fork is a warning: which branch is stray cannot be told."""
    found = Findings()
    timelines = scan(repo.wal)
    if not timelines.timelines:
        return found
    found.notes.append(f"timelines in {repo.wal}: "
                       + "; ".join(timelines.describe(t) for t in timelines.timelines))
    found.problems += [f"WAL archive {repo.wal}: {why}" for why in timelines.problems.values()]
    if current is None:
        found.notes.append(f"the source's current timeline is unknown ({how}): stray "
                           "timeline branches cannot be told apart")
        if timelines.branches():
            listed = ", ".join(map(str, timelines.timelines))
            found.warnings.append(
                f"WAL archive {repo.wal}: the timelines fork ({listed}) and the source's "
                "current timeline is unknown "
                f"({how}): restore pitr needs --target-timeline N; run verify where the "
                "source can be reached to find the stray branch")
        return found
    found.notes.append(f"the source is on timeline {current} (read from {how})")
    if current not in timelines.timelines:  # then which branch is stray is not known
        found.problems.append(
            f"WAL archive {repo.wal}: holds no file of the source's current timeline "
            f"{current}: the source does not archive here (check its archive_command)")
        return found
    if timelines.ancestry(current) is None:
        if current not in timelines.problems:
            found.problems.append(
                f"WAL archive {repo.wal}: the history file of the source's timeline "
                f"{current} is missing: recovery cannot follow it (copy "
                f"pg_wal/{current:08X}.history from the source into the archive)")
        return found
    for stray, files in timelines.stray_files(current).items():
        what = (f"timeline {timelines.describe(stray)} is a branch the source's current "
                f"timeline {current} does not descend from (a restored copy or a former "
                "primary archived into this archive)" if stray not in
                (timelines.ancestry(current) or ()) else
                f"timeline {stray} went on after the source's timeline {current} branched "
                "off it (a former primary archived into this archive)")
        found.problems.append(
            f"WAL archive {repo.wal}: {what}: {', '.join(files)}. restore pitr follows it "
            f"only when asked (--target-timeline {stray}); find out which server wrote it, "
            f"then set its files aside (pgvdrill deletes nothing): "
            f"{set_aside(repo, stray, files)}")
    return found
