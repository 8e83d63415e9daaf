"""[provider.NAME] type barman: the backups a Barman server keeps (backup_method postgres
or rsync), drilled through Barman's own commands: `list-backups`/`show-backup` (-f json),
`recover --get-wal` without a target (the base backup only: no WAL is copied, every
segment from the backup's begin_wal on reaches the drill through `fetch_wal`, the one way
WAL is checked; the restore_command and recovery.signal Barman writes are replaced by the
drill's), `get-wal` to standard output, `list-files --target wal`, `check` and `verify-backup`.
A backup with tablespaces is refused before `recover` (Barman would put them back at their
original locations, the source's own directories, without --tablespace).

Barman runs as `user` (root only) or as the caller; run by root, Barman itself drops to
its `barman_user`, which therefore gets the empty restore directory (read from the
configuration Barman reads: pgvdrill.providers.barman_config, which also refuses those
files when another user can change them). What Barman prints is read by
pgvdrill.providers.barman_output.
"""

from __future__ import annotations

import os
import pwd
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pgvdrill import config
from pgvdrill.errors import ConfigError, RestoreError, ToolError
from pgvdrill.proc import runner
from pgvdrill.providers import barman_config
from pgvdrill.providers import barman_output as output
from pgvdrill.providers.base import Provider, ProviderBackup, Restored, ToolCheck

T = TypeVar("T")
SHORT = 600.0  # listing, showing, checking
JSON = ("-f", "json")  # before the command
HINT = "check the [provider] section (bin, config, server) and run the command by hand"


class Barman(Provider):
    """A Barman server's backups of one PostgreSQL server (`server`)."""

    type = "barman"

    def __init__(self, conf: config.Provider) -> None:
        self.name = conf.name
        self.server = conf.server
        self.main_config = barman_config.require_trusted_files(conf.config,
                                                               f"[provider.{conf.name}]")
        self.program = runner.which("barman", conf.bin)
        self.config = conf.config
        self.user = conf.user or None

    def argv(self, *args: str | Path) -> list[str]:
        head = [str(self.program)] + (["-c", str(self.config)] if self.config else [])
        return head + [str(arg) for arg in args]

    def _run(self, *args: str | Path, timeout: float | None = SHORT, check: bool = True,
             stdout: Path | None = None) -> runner.Result:
        return runner.run(self.argv(*args), timeout=timeout, check=check, stdout=stdout,
                          user=self.user, hint=HINT)

    def _read(self, parse: Callable[[str], T], *args: str) -> T:
        """Run `barman ARGS` and `parse` its output, or a ConfigError naming the command
        when Barman printed something else."""
        result = self._run(*args)
        try:
            return parse(result.stdout)
        except ValueError as exc:
            raise ConfigError(f"{' '.join(result.argv)} printed output pgvdrill cannot "
                              f"read: {exc}", "pgvdrill reads Barman 3's -f json output; "
                              "check the Barman version and its catalog") from None

    def version(self) -> str:
        text = self._run("--version").stdout
        try:
            return output.version(text)
        except ValueError as exc:
            raise ConfigError(f"{self.program} --version: {exc}",
                              "point [provider] bin at Barman's bin directory") from None

    def backups(self) -> list[ProviderBackup]:
        ids = self._read(lambda text: output.done_ids(text, self.server),
                         *JSON, "list-backups", self.server)
        return [self._show(backup_id) for backup_id in reversed(ids)]  # oldest first

    def _show(self, backup_id: str) -> ProviderBackup:
        return self._read(lambda text: output.backup(text, self.server, backup_id),
                          *JSON, "show-backup", self.server, backup_id)

    def restore(self, backup: ProviderBackup, into: Path) -> Restored:
        if any(into.iterdir()):
            raise RestoreError(f"{into} is not empty", "restore into an empty directory")
        spaces = self._read(lambda text: output.tablespaces(text, self.server, backup.id),
                            *JSON, "show-backup", self.server, backup.id)
        if spaces is None or spaces:
            named = ", ".join(spaces or ["or Barman did not say"])
            raise RestoreError(f"backup {backup.id} has tablespaces ({named}): barman "
                               "recover would put them back at their original locations, "
                               "the source's own directories",
                               "pgvdrill drills Barman backups without tablespaces")
        owner = self.user or barman_config.barman_user(self.main_config)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(owner)
            os.chown(into, entry.pw_uid, entry.pw_gid)
        started = time.monotonic()
        try:
            result = self._run("recover", "--get-wal", self.server, backup.id, into,
                               timeout=None)
        except ToolError as exc:
            raise RestoreError(f"barman recover of backup {backup.id} failed: {exc}",
                               f"the directory must be writable by Barman's user {owner}; "
                               f"run `{' '.join(exc.argv)}` by hand") from None
        if not (into / "PG_VERSION").is_file() or (into / "PG_VERSION").is_symlink():
            raise RestoreError(f"barman recover of backup {backup.id} left no data directory "
                               f"in {into}", "run the recover by hand and read its output")
        return Restored(into, time.monotonic() - started, tuple(result.argv))

    def fetch_wal(self, name: str, dest: Path) -> bool:
        result = self._run("get-wal", self.server, name, check=False, stdout=dest,
                           timeout=None)
        if result.returncode == 0:
            return True
        dest.unlink(missing_ok=True)
        missing = f"WAL file '{name}' not found in server '{self.server}'"
        if result.returncode == 1 and missing in result.stderr:
            return False
        raise ToolError(result.argv, result.returncode, result.stderr,
                        "Barman could not read its WAL archive: run `barman check` "
                        f"{self.server}")

    def wal_names(self) -> list[str] | None:
        ids = self._read(lambda text: output.done_ids(text, self.server),
                         *JSON, "list-backups", self.server)
        names: set[str] = set()
        for backup_id in ids:
            names.update(self._read(output.wal_names, *JSON, "list-files", "--target", "wal",
                                    self.server, backup_id))
        return sorted(names)

    def checks(self) -> list[ToolCheck]:
        argv = tuple(self.argv("-f", "json", "check", self.server))
        result = self._run("-f", "json", "check", self.server, check=False)
        try:
            found = output.checks(result.stdout, self.server)
        except ValueError as exc:
            return [ToolCheck("barman check", "unknown", argv, result.stderr,
                              f"its output cannot be read: {exc}", result.seconds)]
        failed = [f"{name}: FAILED" + (f" ({hint})" if hint else "")
                  for name, ok, hint in found if not ok]
        lines = "\n".join(f"{name}: {'OK' if ok else 'FAILED'}" + (f" ({hint})" if hint else "")
                          for name, ok, hint in found)
        return [ToolCheck("barman check", "fail" if failed else "pass", argv, lines,
                          "; ".join(failed) or None, result.seconds)]

    def verify(self, backup: ProviderBackup) -> ToolCheck:
        args = ("verify-backup", self.server, backup.id)
        result = self._run(*args, check=False)
        said = (result.stdout + result.stderr).strip()
        name = f"barman verify-backup {backup.id}"
        if result.returncode == 0 and "backup successfully verified" in result.stdout:
            return ToolCheck(name, "pass", tuple(result.argv), said, None, result.seconds)
        cannot = _cannot_verify(said)
        found = [line.split("error:", 1)[1].strip() for line in said.splitlines()
                 if "pg_verifybackup: error:" in line]
        return ToolCheck(name, "unknown" if cannot else "fail", tuple(result.argv), said,
                         cannot or "; ".join(found)[:1000] or "Barman said it failed",
                         result.seconds)


# what verify-backup says when it cannot verify at all (not: the backup is bad)
CANNOT = ((r"pg_verifybackup not found", "Barman found no pg_verifybackup (path_prefix)"),
          (r"backup_manifest\W+(could not open|No such file)|could not open file "
           r"\S*backup_manifest\W", "the backup has no backup_manifest (rsync backups and "
           "PostgreSQL before 13 have none)"),
          (r"not supported for servers using cloud storage",
           "Barman cannot verify backups kept in cloud storage"),
          (r"manifest version|unrecognized top-level field|unexpected manifest",
           "Barman's pg_verifybackup cannot read this manifest (another major version)"))


def _cannot_verify(said: str) -> str | None:
    return next((why for pattern, why in CANNOT if re.search(pattern, said)), None)
