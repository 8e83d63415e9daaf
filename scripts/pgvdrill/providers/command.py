"""The `command` provider: a team's own backup tool (WAL-G, pg_probackup, a home-grown
script) drilled through command templates, no code needed (docs/providers/command.md).

Every template runs with `sh -c` as the caller, through proc.runner. `list`, `restore`,
`check` and `verify` take the placeholders {backup_id} and {datadir}, shell-quoted
(proc.template); `restore_command` takes PostgreSQL's %f (the WAL file's name) and %p
(where to write it), shell-quoted too, and %% for a literal %. Whatever a template prints
is untrusted: `list`'s lines are parsed strictly, ids checked, the rest kept only as
evidence text.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from pgvdrill import config
from pgvdrill.errors import ConfigError, RestoreError, ToolError
from pgvdrill.physical.manifest import MAX_TIMELINE
from pgvdrill.proc import runner, template
from pgvdrill.providers.base import (
    Kind,
    Provider,
    ProviderBackup,
    Restored,
    ToolCheck,
    check_backup_id,
)

PLACEHOLDERS = {"backup_id": "the backup's id (from list; 'latest' without a list command)",
                "datadir": "the empty directory the restore fills"}
LATEST = "latest"  # the one backup of a provider without a list command
CHECK_TIMEOUT = 600.0
NOT_FOUND_MAX = 125  # restore_command: exit 1..125 = not in the archive (PostgreSQL's rule)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # sorts a backup listed without times first
_LSN = re.compile(r"[0-9A-F]{1,8}/[0-9A-F]{1,8}")
_FIELDS = frozenset({"id", "kind", "started", "finished", "start_lsn", "end_lsn", "timeline",
                     "size_bytes"})


def _percent(text: str, values: Mapping[str, str]) -> str:
    """restore_command `text` with %f/%p replaced by their shell-quoted values and %% by %;
    ConfigError for any other %-escape."""
    def value(match: re.Match[str]) -> str:
        letter = match.group(1)
        if letter == "%":
            return "%"
        if letter not in values:
            raise ConfigError(f"restore_command: unknown escape %{letter}",
                              "use %f (the WAL file's name), %p (where to write it) or %%")
        return shlex.quote(values[letter])
    return re.sub(r"%(.?)", value, text)


def parse_list(text: str, kind: Kind) -> list[ProviderBackup]:
    """The backups `list` printed: one JSON object per non-empty line (docs/providers/
    command.md), each id once, oldest first by finish time; ToolError naming the line that
    is not one."""
    found: dict[str, tuple[int, ProviderBackup]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            backup = _backup(json.loads(line), kind)
        except (ValueError, TypeError, RecursionError, ConfigError) as exc:
            why = exc.message if isinstance(exc, ConfigError) else \
                "JSON nested too deep" if isinstance(exc, RecursionError) else str(exc)
            raise _bad_list(f"line {number}: {line[:200]!r}: {why}") from None
        if backup.id in found:
            raise _bad_list(f"lines {found[backup.id][0]} and {number} both list backup "
                            f"{backup.id!r}: which one the restore restores is unknown")
        found[backup.id] = (number, backup)
    return sorted((b for _, b in found.values()), key=lambda b: b.finished or b.started or EPOCH)


def _bad_list(why: str) -> ToolError:
    return ToolError(["list"], 0, why, "make the list command print one JSON object per "
                     "backup, each id once, see docs/providers/command.md")


def _backup(item: object, kind: Kind) -> ProviderBackup:
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}")
    if not isinstance(item.get("id"), str):
        raise ValueError("no string 'id'")
    listed = item.get("kind", kind)
    if listed not in ("physical", "logical"):
        raise ValueError(f"kind {listed!r} is neither physical nor logical")
    lsns = {key: item.get(key) for key in ("start_lsn", "end_lsn")}
    for key, lsn in lsns.items():
        if lsn is not None and not (isinstance(lsn, str) and _LSN.fullmatch(lsn.upper())):
            raise ValueError(f"{key} {lsn!r} is not an LSN like 0/3000028")
    timeline, size = item.get("timeline"), item.get("size_bytes")
    for key, number, top in (("timeline", timeline, MAX_TIMELINE), ("size_bytes", size, None)):
        if number is not None and (type(number) is not int or number < (key == "timeline")
                                   or (top is not None and number > top)):
            raise ValueError(f"{key} {number!r} is not a whole number in range"
                             + (f" (1..{top})" if top else ""))
    return ProviderBackup(
        check_backup_id(item["id"], "the list command"), listed,
        started=_time(item, "started"), finished=_time(item, "finished"),
        start_lsn=None if lsns["start_lsn"] is None else str(lsns["start_lsn"]).upper(),
        end_lsn=None if lsns["end_lsn"] is None else str(lsns["end_lsn"]).upper(),
        timeline=timeline, size_bytes=size)


def _time(item: Mapping[str, object], key: str) -> datetime | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} is not a string")
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise ValueError(f"{key} {value!r} has no time zone (write e.g. 2026-12-07T22:00:00Z)")
    return when


class CommandProvider(Provider):
    """A [provider.NAME] of type command (see the module docstring)."""

    type = "command"

    def __init__(self, conf: config.Provider) -> None:
        self.name = conf.name
        self.conf = conf
        self.kind: Kind = "logical" if conf.kind == "logical" else "physical"
        for key in ("list", "restore", "check", "verify"):
            text = getattr(conf, key)
            if text:
                template.placeholders(text, PLACEHOLDERS, f"[provider.{conf.name}] {key}")

    def _run(self, key: str, values: Mapping[str, str], *, timeout: float | None = None,
             check: bool = True) -> runner.Result:
        where = f"[provider.{self.name}] {key}"
        text = template.render(getattr(self.conf, key), values, PLACEHOLDERS, where)
        return runner.run(["sh", "-c", text], timeout=timeout, check=check,
                          hint=f"fix the command or the tool it runs ({where})")

    def version(self) -> str:
        return "command (a team's own templates; no version known)"

    def backups(self) -> list[ProviderBackup]:
        if not self.conf.list:
            return [ProviderBackup(LATEST, self.kind, details={
                "note": "no list command: the backup the restore command restores"})]
        return parse_list(self._run("list", {}, timeout=CHECK_TIMEOUT).stdout, self.kind)

    def restore(self, backup: ProviderBackup, into: Path) -> Restored:
        started = time.monotonic()
        done = self._run("restore", {"backup_id": backup.id, "datadir": str(into)})
        seconds = time.monotonic() - started
        if backup.kind == "physical":
            return Restored(into, seconds, tuple(done.argv))
        made = list(into.iterdir())
        if len(made) != 1 or made[0].is_symlink():
            raise RestoreError(
                f"[provider.{self.name}] restore of logical backup {backup.id} left "
                f"{len(made)} entries in {into}, not one dump file or directory",
                "make the restore command write exactly one dump into {datadir}")
        return Restored(made[0], seconds, tuple(done.argv))

    def fetch_wal(self, name: str, dest: Path) -> bool:
        if not self.conf.restore_command:
            return False
        text = _percent(self.conf.restore_command, {"f": name, "p": str(dest)})
        done = runner.run(["sh", "-c", text], check=False, timeout=CHECK_TIMEOUT)
        if done.returncode == 0 and dest.is_file() and not dest.is_symlink():
            return True
        if done.returncode == 0 or done.returncode > NOT_FOUND_MAX:
            raise ToolError(done.argv, done.returncode,
                            done.stderr or f"exit 0 but {dest} is not a regular file",
                            f"fix [provider.{self.name}] restore_command: exit 0 only "
                            "after writing %p, 1-125 when the archive has no %f")
        return False

    def wal_names(self) -> list[str] | None:
        return None  # a command cannot list its archive

    def checks(self) -> list[ToolCheck]:
        if not self.conf.check:
            return [ToolCheck("check", "unknown", reason="no check command configured")]
        return [self._tool_check("check", {})]

    def verify(self, backup: ProviderBackup) -> ToolCheck:
        if not self.conf.verify:
            return ToolCheck("verify", "unknown", reason="no verify command configured")
        return self._tool_check("verify", {"backup_id": backup.id})

    def _tool_check(self, key: str, values: Mapping[str, str]) -> ToolCheck:
        try:
            done = self._run(key, values, timeout=CHECK_TIMEOUT, check=False)
        except ToolError as exc:  # it ran out of time
            return ToolCheck(key, "fail", tuple(exc.argv), reason=exc.message)
        return ToolCheck(key, "pass" if done.returncode == 0 else "fail", tuple(done.argv),
                         (done.stdout + done.stderr)[-4000:],
                         None if done.returncode == 0 else f"exit {done.returncode}",
                         done.seconds)
