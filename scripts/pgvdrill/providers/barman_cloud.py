"""[provider.NAME] type = "barman-cloud": backups barman-cloud-backup wrote to object
storage (S3, Azure, GCS), and the WAL barman-cloud-wal-archive archived beside them.

Every call runs barman-cloud's own programs with SOURCE_URL SERVER (and --endpoint-url,
--cloud-provider): backup-list, restore, wal-restore (into a private spool directory, so
a file another restore left in the shared default spool is never handed over),
check-wal-archive. No barman-cloud command lists the WAL archive or checks a backup's
files: for those the provider runs a few lines with the tool's own Python and barman's
CloudBackupCatalog (barman_cloud_catalog.CATALOG_SCRIPT). Credentials come from the
environment pgvdrill runs in, as for the tool itself. Nothing here writes to the bucket.
"""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

from pgvdrill import config
from pgvdrill.errors import BackupError, ConfigError, RestoreError, ToolError
from pgvdrill.proc import runner
from pgvdrill.providers import barman_cloud_catalog as catalog
from pgvdrill.providers import local
from pgvdrill.providers.base import Provider, ProviderBackup, Restored, ToolCheck
from pgvdrill.wal.names import is_archive_name

LIST_TIMEOUT = 900.0  # listing a large bucket
WAL_TIMEOUT = 600.0  # one WAL file


class BarmanCloud(Provider):
    """barman-cloud's programs, found in `bin` (or on PATH), run as `user` (or the caller)."""

    type = "barman-cloud"

    def __init__(self, conf: config.Provider) -> None:
        self.name = conf.name
        self.conf = conf
        if not conf.source_url.startswith(("s3://", "azure://", "gs://", "https://")):
            raise ConfigError(f"[provider.{conf.name}] source_url {conf.source_url!r} is not "
                              "an object storage URL", "write it as barman-cloud takes it, "
                              "e.g. s3://bucket/prefix")

    def _tool(self, program: str) -> str:
        return str(self.conf.bin / program) if self.conf.bin else program

    def _where(self) -> list[str]:
        """The options and arguments that name the bucket and the server, in that order."""
        options = ["--cloud-provider", self.conf.cloud_provider]
        if self.conf.endpoint_url:
            options += ["--endpoint-url", self.conf.endpoint_url]
        return [*options, self.conf.source_url, self.conf.server]

    def _run(self, argv: list[str], timeout: float | None, check: bool = True
             ) -> runner.Result:
        return runner.run(argv, timeout=timeout, user=self.conf.user or None, check=check,
                          hint=f"[provider.{self.name}]: check source_url, server, "
                               "endpoint_url and the credentials in pgvdrill's environment")

    def version(self) -> str:
        out = self._run([self._tool("barman-cloud-backup-list"), "--version"], 60).stdout
        words = out.split()
        if len(words) != 2 or not all(c.isdigit() or c == "." for c in words[1]):
            raise BackupError(f"barman-cloud-backup-list --version printed "
                                      f"{out.strip()[:80]!r}", "check the installation")
        return f"barman-cloud {words[1]}"

    def _list(self) -> runner.Result:
        return self._run([self._tool("barman-cloud-backup-list"), "--format", "json",
                          *self._where()], LIST_TIMEOUT)

    def backups(self) -> list[ProviderBackup]:
        return catalog.parse_backups(self._list().stdout)

    def restore(self, backup: ProviderBackup, into: Path) -> Restored:
        if "tablespaces" in backup.details:
            raise RestoreError(f"barman-cloud backup {backup.id} has tablespaces: "
                               "barman-cloud-restore would write them to their original "
                               "locations, which pgvdrill never does",
                               "drill a backup of a server without tablespaces")
        if self.conf.user:
            entry = pwd.getpwnam(self.conf.user)
            os.chown(into, entry.pw_uid, entry.pw_gid)
        argv = [self._tool("barman-cloud-restore"), *self._where(), backup.id, str(into)]
        done = self._run(argv, None)
        if not (into / "PG_VERSION").is_file() or (into / "PG_VERSION").is_symlink():
            raise RestoreError(f"barman-cloud-restore of {backup.id} left no PG_VERSION in "
                               f"{into}", "check the backup with barman-cloud-backup-show")
        return Restored(into, done.seconds, tuple(argv))

    def fetch_wal(self, name: str, dest: Path) -> bool:
        if not is_archive_name(name):
            raise ConfigError(f"not a WAL file name: {name[:80]!r}", "a pgvdrill bug")
        # the tool user's own directory (spool and file): the drill's may be closed to it
        with local.staging(self.conf.user or None, "pgvdrill-walspool-") as staged:
            spool = staged / "spool"
            spool.mkdir()
            if self.conf.user:
                shutil.chown(spool, self.conf.user, pwd.getpwnam(self.conf.user).pw_gid)
            argv = [self._tool("barman-cloud-wal-restore"), "--no-partial", "--spool-dir",
                    str(spool), *self._where(), name, str(staged / name)]
            done = self._run(argv, WAL_TIMEOUT, check=False)
            if done.returncode == 1 and "does not exist" in done.stderr:
                return False  # its OperationErrorExit, with the not-found message
            if done.returncode != 0:
                raise ToolError(done.argv, done.returncode, done.stderr,
                                f"[provider.{self.name}]: barman-cloud could not fetch {name}")
            local.deliver(staged / name, dest, done.argv)
        return True

    def _catalog(self, *mode: str) -> str:
        """CATALOG_SCRIPT's output for `mode` ("wals", or "verify" and a backup id)."""
        argv = [self._python(), "-c", catalog.CATALOG_SCRIPT, *mode, "--", *self._where()]
        return self._run(argv, LIST_TIMEOUT).stdout

    def _python(self) -> str:
        """The interpreter barman-cloud's own scripts run with (their #! line)."""
        script = self._tool("barman-cloud-wal-restore")
        found = script if os.sep in script else shutil.which(script)
        try:
            with open(found or script, "rb") as handle:
                first = handle.readline(4096).decode("utf-8", "replace")
        except OSError as exc:
            raise ConfigError(f"cannot read {script}: {exc}",
                              "install barman[cloud] or set bin") from None
        python = first[2:].strip() if first.startswith("#!") else ""
        if not python.startswith("/") or " " in python or not os.access(python, os.X_OK):
            raise ConfigError(f"{script} does not start with the #! line of a Python "
                              f"interpreter: {first.strip()[:80]!r}", "set bin to the "
                              "bin directory of barman-cloud's own installation")
        return python

    def wal_names(self) -> list[str]:
        return catalog.parse_wal_names(self._catalog("wals"))

    def checks(self) -> list[ToolCheck]:
        """barman-cloud-backup-list (the bucket reachable, a complete backup listed) and
        barman-cloud-check-wal-archive --timeline (newest backup's + 1): no WAL of a later
        timeline than the newest backup's (run only once the bucket is known to exist:
        the program creates a missing bucket)."""
        argv = [self._tool("barman-cloud-backup-list"), "--format", "json", *self._where()]
        try:
            backups = catalog.parse_backups(self._list().stdout)
        except (ToolError, BackupError, ConfigError) as exc:
            reason = "the bucket could not be listed, so check-wal-archive was not run"
            return [ToolCheck("barman-cloud-backup-list", "fail", tuple(argv), str(exc)),
                    ToolCheck("barman-cloud-check-wal-archive", "unknown", reason=reason)]
        if not backups:
            listed = ToolCheck("barman-cloud-backup-list", "fail", tuple(argv),
                               f"no complete (DONE) backup of server {self.conf.server}")
            return [listed, ToolCheck("barman-cloud-check-wal-archive", "unknown",
                                      reason="no complete backup to take a timeline from")]
        listed = ToolCheck("barman-cloud-backup-list", "pass", tuple(argv),
                           f"{len(backups)} complete backups, newest {backups[-1].id}")
        return [listed, self._timeline_check(max(b.timeline or 1 for b in backups))]

    def _timeline_check(self, timeline: int) -> ToolCheck:
        argv = [self._tool("barman-cloud-check-wal-archive"), "--timeline",
                str(timeline + 1), *self._where()]
        done = self._run(argv, LIST_TIMEOUT, check=False)
        said = (done.stdout + done.stderr).strip()
        if done.returncode == 0:
            return ToolCheck("barman-cloud-check-wal-archive", "pass", tuple(argv),
                             said or f"no WAL of a timeline after {timeline}",
                             seconds=done.seconds)
        reason = (f"the archive holds WAL of a timeline after {timeline}, the newest "
                  "backup's: a promotion since that backup (take a new base backup), or "
                  "another server archiving into this bucket (find it and stop it)"
                  if done.returncode == 1 else "barman-cloud-check-wal-archive failed")
        return ToolCheck("barman-cloud-check-wal-archive", "fail", tuple(argv), said,
                         reason, done.seconds)

    def verify(self, backup: ProviderBackup) -> ToolCheck:
        """barman-cloud has no verify command: barman's own catalog code checks that the
        backup's tar files and the WAL from its begin_wal to its end_wal are in the bucket
        (presence, not content: the restore and the drill read the content)."""
        argv = ("barman-cloud catalog", "verify", backup.id)
        try:
            files, wals = catalog.parse_missing(self._catalog("verify", backup.id))
        except (ToolError, BackupError, ConfigError) as exc:
            return ToolCheck("barman-cloud catalog", "unknown", argv, reason=str(exc))
        if files or wals:
            missing = [f"{f}.* (a file of the backup)" for f in files]
            missing += [f"{w} (WAL the backup needs)" for w in wals]
            return ToolCheck("barman-cloud catalog", "fail", argv,
                             "missing from the bucket: " + ", ".join(missing),
                             f"backup {backup.id} is incomplete in the bucket")
        return ToolCheck("barman-cloud catalog", "pass", argv,
                         f"backup {backup.id}: its files and WAL "
                         f"{backup.details.get('begin_wal')}..{backup.details.get('end_wal')} "
                         "are in the bucket")
