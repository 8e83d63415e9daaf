"""pgBackRest as a provider ([provider.NAME] type = "pgbackrest"; docs/providers/pgbackrest.md).

Every command is `pgbackrest [--config=CONFIG] --stanza=STANZA [--repo=N] COMMAND`, run
as the configured OS user (`user`: pgBackRest must run as the data directory's owner;
root runs it as that user, anyone else only as themselves). What it prints is parsed by
pgbackrest_parse, untrusted. A restore is `restore --set=LABEL --pg1-path=INTO
--type=none`: into the drill's empty directory instead of the configured pg1-path, with
no recovery settings of pgBackRest's (no restore_command that would run the tool); a
backup with tablespaces is refused before anything is restored (pgBackRest would write
them to their original paths, the source's). WAL is fetched with `archive-get` into a
private directory of the tool user's and copied from there into the drill's file.
"""

from __future__ import annotations

import os
import pwd
import re
import time
from pathlib import Path

from pgvdrill import config
from pgvdrill.errors import BackupError, ConfigError, DrillError, RestoreError, ToolError
from pgvdrill.files.trust import require_trusted
from pgvdrill.proc import runner
from pgvdrill.providers import local
from pgvdrill.providers import pgbackrest_parse as parse
from pgvdrill.providers.base import (
    BACKUP_ID,
    Provider,
    ProviderBackup,
    Restored,
    ToolCheck,
    check_backup_id,
)
from pgvdrill.wal.names import is_archive_name

CONFIG_PATH = "/etc/pgbackrest"  # pgBackRest's --config-path default
OLD_CONFIG = Path("/etc/pgbackrest.conf")  # read when the default config is missing
INCLUDED = re.compile(r".+\.conf")  # what pgBackRest reads of --config-include-path
PROBE_TIMEOUT = 600.0  # info, repo-ls, archive-get: short commands
NOT_FOUND = 1  # archive-get's exit code when the archive lacks the file (2.45)


class PgBackRest(Provider):
    """A stanza of a pgBackRest repository."""

    type = "pgbackrest"

    def __init__(self, conf: config.Provider) -> None:
        self.name = conf.name
        self.conf = conf
        if not BACKUP_ID.fullmatch(conf.stanza):
            raise ConfigError(f"[provider.{conf.name}] stanza = {conf.stanza!r:.80} is not a "
                              "plain name", "use the stanza's name as pgbackrest.conf has it")
        _require_trusted_configs(conf)
        self.program = runner.which("pgbackrest", conf.bin)
        self.user = _run_as(conf)

    # running the tool
    def argv(self, command: str, *args: str) -> list[str]:
        argv = [str(self.program)]
        if self.conf.config is not None:
            argv.append(f"--config={self.conf.config}")
        # no log file: pgBackRest's log-path is production's (the operator's own runs log there)
        argv += [f"--stanza={self.conf.stanza}", "--log-level-file=off"]
        if self.conf.repo:
            argv.append(f"--repo={self.conf.repo}")
        return [*argv, command, *args]

    def run(self, command: str, *args: str, timeout: float | None = PROBE_TIMEOUT,
            check: bool = True) -> runner.Result:
        return runner.run(self.argv(command, *args), user=self.user, cwd="/",
                          timeout=timeout, check=check,
                          hint=f"pgBackRest's {command} failed for [provider.{self.name}]: "
                               f"run `{' '.join(self.argv(command, *args))}` as "
                               f"{self.user or 'yourself'} and fix what it says")

    # the Provider interface
    def version(self) -> str:
        out = runner.run([self.program, "version"], user=self.user, cwd="/",
                         timeout=PROBE_TIMEOUT).stdout.strip()
        words = out.split()
        if len(words) != 2 or words[0] != "pgBackRest" or not parse.VERSION.fullmatch(
                words[1].split("dev")[0]):
            raise ConfigError(f"{self.program} version printed {out[:80]!r}, not "
                              "'pgBackRest X.Y'", "point [provider] bin at pgBackRest's")
        return f"pgbackrest {words[1]}"

    def _info(self, *args: str) -> str:
        return self.run("info", "--output=json", *args).stdout

    def backups(self) -> list[ProviderBackup]:
        return parse.backups(self._info(), self.conf.stanza)

    def restore(self, backup: ProviderBackup, into: Path) -> Restored:
        label = check_backup_id(backup.id, parse.TOOL)
        if into.is_symlink() or not into.is_dir() or any(into.iterdir()):
            raise RestoreError(f"{into} is not an empty directory", "restore into a new one")
        entry = parse.stanza_entry(self._info(f"--set={label}"), self.conf.stanza)
        listed = [b for b in entry.get("backup") or [] if isinstance(b, dict)
                  and b.get("label") == label]
        if len(listed) != 1:
            raise RestoreError(f"pgBackRest does not list backup {label} of stanza "
                               f"{self.conf.stanza}", "choose one `pgvdrill` lists")
        if listed[0].get("tablespace") or "tablespace" not in listed[0]:
            raise RestoreError(
                f"backup {label} holds tablespaces (or pgBackRest did not say): pgBackRest "
                "restores them to their original paths, the source's own directories",
                "pgvdrill drills pgBackRest backups without tablespaces")
        if self.user is not None:
            entry_user = pwd.getpwnam(self.user)
            os.chown(into, entry_user.pw_uid, entry_user.pw_gid)
        argv = self.argv("restore", f"--set={label}", f"--pg1-path={into}", "--type=none")
        started = time.monotonic()
        try:
            self.run("restore", f"--set={label}", f"--pg1-path={into}", "--type=none",
                     timeout=None)
        except ToolError as exc:
            raise RestoreError(f"pgBackRest could not restore backup {label}: {exc.message}",
                               f"{exc.hint}; {into} must be reachable and writable by "
                               f"{self.user or 'the caller'}") from exc
        return Restored(into, time.monotonic() - started, tuple(argv))

    def fetch_wal(self, name: str, dest: Path) -> bool:
        if not is_archive_name(name):
            raise ConfigError(f"not a WAL file name: {name[:80]!r}")
        with local.staging(self.user, "pgbackrest-wal-") as staged:
            got = self.run("archive-get", name, str(staged / name), check=False)
            if got.returncode == NOT_FOUND:
                return False
            if got.returncode != 0:
                raise ToolError(got.argv, got.returncode, got.stderr,
                                f"pgBackRest could not fetch {name} from its archive")
            local.deliver(staged / name, dest, got.argv)
            return True

    def wal_names(self) -> list[str] | None:
        names: list[str] = []
        for archive_id in parse.archive_ids(self._info(), self.conf.stanza):
            listing = self.run("repo-ls", "--recurse", "--output=json",
                               f"archive/{self.conf.stanza}/{archive_id}").stdout
            names += parse.wal_names(listing, self.conf.stanza)
        return sorted(set(names))

    def checks(self) -> list[ToolCheck]:
        """Read-only evidence from `pgbackrest info` (parse.health): never `pgbackrest
        check`, which makes the source switch WAL and archives a segment."""
        argv = tuple(self.argv("info", "--output=json"))
        started = time.monotonic()
        try:
            result = self.run("info", "--output=json", check=False)
        except DrillError as exc:  # could not run at all (timeout, missing program)
            return [ToolCheck("pgbackrest info", "unknown", argv, reason=exc.message,
                              seconds=time.monotonic() - started)]
        said = (result.stdout + result.stderr)[-4000:]
        if result.returncode != 0:
            return [ToolCheck("pgbackrest info", "fail", argv, said,
                              f"pgbackrest info exited {result.returncode}: the repository "
                              "cannot be read", result.seconds)]
        try:
            found = parse.health(result.stdout, self.conf.stanza)
        except BackupError as exc:
            return [ToolCheck("pgbackrest info", "unknown", argv, said, exc.message,
                              result.seconds)]
        return [ToolCheck(f"pgbackrest info: {what}", "fail" if problem else "pass", argv,
                          problem or "ok", problem, result.seconds)
                for what, problem in found]

    def verify(self, backup: ProviderBackup) -> ToolCheck:
        """`pgbackrest verify` (the whole repository: 2.45 has no --set), judged for
        `backup`: its own status, files the log names missing or invalid, WAL gaps after
        its start, pgBackRest's page checksum errors, and verify's summary status."""
        args = ("--output=text", "--verbose", "--log-level-console=off",
                "--log-level-stderr=detail")
        argv = tuple(self.argv("verify", *args))
        try:
            result = self.run("verify", *args, check=False, timeout=None)
        except DrillError as exc:
            return ToolCheck("pgbackrest verify", "unknown", argv, reason=exc.message)
        output = (result.stdout + result.stderr)[-4000:]
        if result.returncode != 0:
            return ToolCheck("pgbackrest verify", "fail", argv, output,
                             seconds=result.seconds)
        details = backup.details
        archive_id, start = details.get("archive_id"), details.get("archive_start")
        if not isinstance(archive_id, str) or not isinstance(start, str):
            return ToolCheck("pgbackrest verify", "unknown", argv, output,
                             reason=f"backup {backup.id} was not listed by this provider")
        seen = parse.verified(result.stdout, result.stderr, backup.id, archive_id, start)
        if seen.status is None:
            return ToolCheck("pgbackrest verify", "unknown", argv, output,
                             reason="verify printed no summary status", seconds=result.seconds)
        problems = list(seen.problems)
        if seen.status != "ok":
            problems.insert(0, f"verify's status is {seen.status!r}")
        if seen.backup_status != "valid":
            problems.append(f"verify says backup {backup.id} is "
                            f"{seen.backup_status or 'not checked'}")
        if details.get("page_checksum_error"):
            problems.append(f"pgBackRest recorded page checksum errors in backup {backup.id}")
        summary = "; ".join(problems) if problems else f"backup {backup.id} is valid"
        return ToolCheck("pgbackrest verify", "fail" if problems else "pass", argv,
                         f"{output}\n{summary}", reason=summary if problems else None,
                         seconds=result.seconds)


def _run_as(conf: config.Provider) -> str | None:
    """The OS user to run pgBackRest as: `user` when root (None when unset), else None
    (ourselves) and a ConfigError when another user is configured."""
    if not conf.user:
        return None
    try:
        pwd.getpwnam(conf.user)
    except KeyError:
        raise ConfigError(f"[provider.{conf.name}] user = {conf.user!r:.80}: no such OS user",
                          "name the OS user that owns the data directory") from None
    if os.geteuid() == 0:
        return conf.user
    if pwd.getpwuid(os.geteuid()).pw_name != conf.user:
        raise ConfigError(f"[provider.{conf.name}] user = {conf.user!r}: only root can run "
                          "pgBackRest as another user", f"run pgvdrill as {conf.user} or root")
    return None


def _require_trusted_configs(conf: config.Provider) -> None:
    """ConfigError unless root and the caller alone can change every configuration file
    pgBackRest reads (files/trust.py): --config (else $PGBACKREST_CONFIG, else
    CONFIG_PATH/pgbackrest.conf or OLD_CONFIG) and the *.conf files of its
    --config-include-path, which pgBackRest reads unless a config file is named and
    neither $PGBACKREST_CONFIG_INCLUDE_PATH nor $PGBACKREST_CONFIG_PATH is set (2.45's
    cfgFileLoad; pgvdrill passes no other option, the environment is passed on)."""
    where = f"[provider.{conf.name}]"
    stake = "chooses what pgBackRest runs and restores as {user}'s delegate"
    env = os.environ
    named = conf.config or (Path(env["PGBACKREST_CONFIG"]) if env.get("PGBACKREST_CONFIG")
                            else None)
    base = Path(env.get("PGBACKREST_CONFIG_PATH") or CONFIG_PATH)
    main = named or base / "pgbackrest.conf"
    if named is None and not main.exists() and str(base) == CONFIG_PATH:
        main = OLD_CONFIG
    if named is not None or main.exists():
        require_trusted(main, f"{where}: pgBackRest's configuration", stake=stake)
    if named is not None and not (env.get("PGBACKREST_CONFIG_INCLUDE_PATH")
                                  or env.get("PGBACKREST_CONFIG_PATH")):
        return
    include = Path(env.get("PGBACKREST_CONFIG_INCLUDE_PATH") or base / "conf.d")
    require_trusted(include, f"{where}: pgBackRest's config-include-path", stake=stake)
    try:
        names = sorted(os.listdir(include))
    except OSError:
        return  # missing: pgBackRest reads nothing there (its parents were checked)
    for name in names:
        if INCLUDED.fullmatch(name) and (include / name).is_file():
            require_trusted(include / name, f"{where}: pgBackRest's included configuration",
                            stake=stake)
