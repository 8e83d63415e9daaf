"""The operator's configuration: one TOML file (pgvdrill.example.toml documents every key).

Loading is strict: an unknown section or key, a wrong type or a bad value raises
ConfigError naming the file, the key and what is allowed. Credentials are never read from
here: the source is a libpq connection string without a password (server.parse_conninfo),
S3 credentials come from boto3's usual chain (environment, ~/.aws, instance roles).
"""

from __future__ import annotations

import math
import os
import re
import sys
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from pgvdrill.errors import ConfigError
from pgvdrill.files.trust import (
    require_trusted,
    require_trusted_bindir,
    require_trusted_command,
    safe_directory,
)
from pgvdrill.proc import runner
from pgvdrill.proc.runner import DEFAULT_TOOL_TIMEOUT, MAX_TOOL_TIMEOUT
from pgvdrill.server import parse_conninfo


@dataclass(frozen=True)
class Source:
    """The production server backups are taken from (never written to)."""

    conninfo: dict[str, str]
    pg_bin: Path | None = None  # client tools; None: the embedded ones (PostgreSQL 18)


@dataclass(frozen=True)
class Logical:
    format: str = "custom"  # custom or directory
    compress: str = "gzip:1"  # pg_dump --compress (the runbook's -Z 9 is far slower)
    jobs: int = 1  # --jobs (directory format only)


@dataclass(frozen=True)
class Physical:
    format: str = "tar"  # tar or plain
    compress: str = "none"  # pg_basebackup --compress, e.g. "server-gzip", "client-gzip:1"
    checkpoint: str = "fast"  # fast or spread
    wal_method: str = "stream"  # stream or fetch (-X)
    max_rate: str = ""  # pg_basebackup --max-rate, e.g. "50M" (empty: not throttled)


@dataclass(frozen=True)
class Retention:
    """The runbook's policy (section 4), in days; monthly long-term copies in months."""

    logical_days: float = 7
    physical_days: float = 30
    wal_days: float = 3
    monthly_months: int = 12


@dataclass(frozen=True)
class RsyncTarget:
    dest: str  # a directory or host:path


@dataclass(frozen=True)
class S3Target:
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None  # S3-compatible storage; None: AWS
    region: str | None = None
    storage_class: str | None = None  # e.g. STANDARD_IA, as the runbook's aws s3 sync


@dataclass(frozen=True)
class Drill:
    backend: str = "embedded"
    pg_bin: Path | None = None
    # more installations (bin directories): physical restores use the source's major's
    installations: tuple[Path, ...] = ()
    target_version: str | None = None  # logical restores' server, e.g. "18" or "18.3"
    targets: Path | None = None
    production_size: str | None = None
    reports_dir: Path = Path("reports")


@dataclass(frozen=True)
class Limits:
    """How long a long-running tool (pg_dump, pg_restore, pg_basebackup) may run, in
    seconds, before pgvdrill ends it (runner.set_tool_timeout)."""

    tool_timeout: float = DEFAULT_TOOL_TIMEOUT


def _limits(reader: _Reader, body: dict[str, Any]) -> Limits:
    limits: Limits = reader.build(Limits, "limits", body)  # ranged in RANGES
    return limits


@dataclass(frozen=True)
class Procedure:
    """A team's own backup/restore commands, as templates (see pgvdrill/procedures/)."""

    name: str
    backup: str = ""
    restore: str = ""
    archive_command: str = ""
    restore_command: str = ""
    kind: str = "logical"  # logical (a dump file/dir) or physical (a base backup dir)


@dataclass(frozen=True)
class Provider:
    """A backup tool whose backups the DR drill restores: `[provider.NAME]`, its `type`
    (default: NAME) one of PROVIDER_KEYS; which keys each type takes and needs are there
    (docs/providers/). Templates (command) are run through the shell as the caller."""

    name: str
    type: str
    bin: Path | None = None  # the tool's bin directory; None: found on PATH
    config: Path | None = None  # the tool's own configuration (barman.conf, pgbackrest.conf)
    user: str = ""  # the OS user the tool runs as (root only); "": the caller
    server: str = ""  # barman's and barman-cloud's server name
    stanza: str = ""  # pgBackRest's
    repo: int = 0  # pgBackRest's --repo (0: its default)
    source_url: str = ""  # barman-cloud: s3://bucket/prefix
    endpoint_url: str = ""  # barman-cloud: an S3-compatible endpoint ("": AWS)
    cloud_provider: str = "aws-s3"  # barman-cloud: aws-s3, azure-blob-storage, google...
    list: str = ""  # command: prints backups, one JSON object per line (docs/providers/)
    restore: str = ""  # command: restores {backup_id} into the empty {datadir}
    restore_command: str = ""  # command: fetches WAL file %f into %p (exit 0) or fails
    check: str = ""  # command: the tool's own health check
    verify: str = ""  # command: the tool's own check of {backup_id}
    kind: str = "physical"  # command: physical (a data directory) or logical (a dump)
    dumps: str = ""  # files: glob of dump files or directories, e.g. /backup/full_backup_*.dump
    base_backups: str = ""  # files: glob of base backup directories
    wal: Path | None = None  # files: the WAL archive the base backups recover through
    repository: Path | None = None  # pgvdrill: another pgvdrill repository (an off-site copy)


# per type: the keys it takes (besides name, type) and, first in each tuple, those it needs
PROVIDER_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "barman": (("server",), ("bin", "config", "user")),
    "barman-cloud": (("source_url", "server"), ("bin", "endpoint_url", "cloud_provider", "user")),
    "pgbackrest": (("stanza",), ("bin", "config", "repo", "user")),
    "command": (("restore",), ("list", "restore_command", "check", "verify", "kind")),
    "files": ((), ("dumps", "base_backups", "wal")),
    "pgvdrill": (("repository",), ()),
}


@dataclass(frozen=True)
class Config:
    path: Path
    source: Source | None
    repository: Path | None  # None: only [provider.*] backups are drilled
    logical: Logical = field(default_factory=Logical)
    physical: Physical = field(default_factory=Physical)
    retention: Retention = field(default_factory=Retention)
    rsync: RsyncTarget | None = None
    s3: S3Target | None = None
    drill: Drill = field(default_factory=Drill)
    procedures: tuple[Procedure, ...] = ()
    limits: Limits = field(default_factory=Limits)
    providers: tuple[Provider, ...] = ()

    @property
    def wal_dir(self) -> Path:
        return self.require_repository() / "wal"

    def require_repository(self) -> Path:
        if self.repository is None:
            raise ConfigError(f"{self.path}: no [repository] section (it has only "
                              "[provider.*] backups, which this command does not handle)",
                              'add [repository] with path = "/backup/pgvdrill"')
        return self.repository

    def provider(self, name: str) -> Provider:
        for provider in self.providers:
            if provider.name == name:
                return provider
        raise ConfigError(f"{self.path}: no [provider.{name}]",
                          "configured: " + (", ".join(p.name for p in self.providers)
                                            or "none (see docs/providers/)"))

    def require_source(self) -> Source:
        if self.source is None:
            raise ConfigError(f"{self.path}: no [source] section",
                              'add [source] with conninfo = "host=... dbname=... user=..."')
        return self.source


# every number's range: finite, and small enough for any date or count arithmetic
RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("logical", "jobs"): (1, 128),
    ("retention", "logical_days"): (0, 36500),
    ("retention", "physical_days"): (0, 36500),
    ("retention", "wal_days"): (0, 36500),
    ("retention", "monthly_months"): (0, 1200),
    ("limits", "tool_timeout"): (1, MAX_TOOL_TIMEOUT),
    ("provider", "repo"): (1, 256),
}
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("logical", "format"): ("custom", "directory"),
    ("physical", "format"): ("tar", "plain"),
    ("physical", "checkpoint"): ("fast", "spread"),
    ("physical", "wal_method"): ("stream", "fetch"),
    ("procedure", "kind"): ("logical", "physical"),
    ("drill", "backend"): ("embedded", "system"),
    ("provider", "type"): tuple(PROVIDER_KEYS),
    ("provider", "kind"): ("physical", "logical"),
    ("provider", "cloud_provider"): ("aws-s3", "azure-blob-storage", "google-cloud-storage"),
}
# Compression pgvdrill can read back (its tar reader, the embedded pg_restore): gzip or
# none, in pg_dump's and pg_basebackup's --compress spellings; not lz4 or zstd.
_LEVEL = r"(?::(?:level=)?[0-9])?"  # gzip levels 0-9
VERSION = re.compile(r"[1-9]\d*(?:\.\d+)?")  # a PostgreSQL version: "18" or "18.3"
_COMPRESSION = "not a compression pgvdrill can verify and restore"
_UNSUPPORTED = " (lz4 and zstd are not supported yet)"
FORMS: dict[tuple[str, str], tuple[re.Pattern[str], str, str]] = {
    ("logical", "compress"): (
        re.compile(rf"\d|(?:none|gzip){_LEVEL}"), _COMPRESSION,
        'write "gzip:1" (up to "gzip:9"), a level 0-9, or "none"' + _UNSUPPORTED),
    ("physical", "compress"): (
        re.compile(rf"\d|(?:(?:server|client)-)?(?:none|gzip){_LEVEL}"), _COMPRESSION,
        'write "server-gzip", "client-gzip:1", or "none"' + _UNSUPPORTED),
    ("drill", "target_version"): (
        VERSION, "not a PostgreSQL version",
        'write a major version such as "18", or an exact one such as "18.3"'),
}


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, where: str, why: str, hint: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {why}", hint)

    def number(self, where: str, value: Any, low: float, high: float, *, whole: bool
               ) -> None:
        """ConfigError unless `value` is a finite number (whole if `whole`) in [low, high]."""
        kind = "whole number" if whole else "number"
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or (whole and not isinstance(value, int)) or not math.isfinite(value)
                or not low <= value <= high):
            example = f"{(low + high) // 2:.0f}" if whole else f"{max(low, 0.5):g}"
            raise self.error(where, f"not a {kind} >= {low:.15g} and <= {high:.15g}",
                             f"write a {kind} in that range, e.g. {example}")

    def paths(self, where: str, value: Any) -> tuple[Path, ...]:
        """A list of paths (strings), each relative one taken from the file's directory."""
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(where, "not a list of paths",
                             'write a list of strings, e.g. ["/usr/lib/postgresql/16/bin"]')
        return tuple(Path(v) if os.path.isabs(v) else self.path.parent / v for v in value)

    def table(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        body = data.get(name, {})
        if not isinstance(body, dict):
            raise self.error(name, "must be a table", f"write [{name}] on its own line")
        return body

    def build(self, cls: type, section: str, body: dict[str, Any]) -> Any:
        """An instance of dataclass `cls` from `body`, checking keys, types and choices."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(body) - set(known))
        if unknown:
            raise self.error(f"[{section}]", f"unknown key(s) {', '.join(unknown)}",
                             f"allowed keys: {', '.join(known)}")
        values: dict[str, Any] = {}
        for key, value in body.items():
            kind = str(known[key].type)
            where = f"[{section}] {key} = {value!r}"
            if "tuple" in kind:
                value = self.paths(where, value)
            elif "Path" in kind:
                if not isinstance(value, str) or not value:
                    raise self.error(where, "not a path", "write a path as a string")
                value = Path(value)
                if not value.is_absolute():
                    value = self.path.parent / value
            elif "int" in kind or "float" in kind:
                self.number(where, value, *RANGES[section.split()[0].split(".")[0], key],
                            whole="float" not in kind)
            elif not isinstance(value, str):
                raise self.error(where, f"wrong type ({type(value).__name__})",
                                 "write a string in double quotes")
            if any("\0" in str(v) for v in (value if isinstance(value, tuple) else [value])):
                raise self.error(where, "contains a NUL character", "remove it")
            choices = CHOICES.get((section.split()[0].split(".")[0], key))
            if choices and value not in choices:
                raise self.error(where, "not allowed", f"choose one of: {', '.join(choices)}")
            form = FORMS.get((section, key))
            if form and not form[0].fullmatch(value):
                raise self.error(where, form[1], form[2])
            values[key] = value
        missing = [f.name for f in fields(cls) if f.name not in values
                   and f.default is MISSING and f.default_factory is MISSING]
        if missing:
            raise self.error(f"[{section}]", f"missing key(s) {', '.join(missing)}",
                             "see pgvdrill.example.toml")
        return cls(**values)


CONFIG_ENV = "PGVDRILL_CONFIG"
CONFIG_PLACES = (Path("pgvdrill.toml"), Path("/etc/pgvdrill/pgvdrill.toml"))


def find_config(path: Path | None) -> Config:
    """The configuration at `path` (--config), else at $PGVDRILL_CONFIG, else the first in
    CONFIG_PLACES; its [limits] tool_timeout becomes the runner's limit for long-running
    tools."""
    path = path or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if path is None:
        path = next((p for p in CONFIG_PLACES if p.is_file() and _searchable(p)), None)
    if path is None:
        raise ConfigError("no configuration file",
                          f"pass --config FILE, set {CONFIG_ENV}, or create "
                          f"{' or '.join(str(p) for p in CONFIG_PLACES)} "
                          "(start from pgvdrill.example.toml)")
    config = load_config(path)
    runner.set_tool_timeout(config.limits.tool_timeout, f"[limits] tool_timeout of {path}")
    return config


def _searchable(found: Path) -> bool:
    """Whether a configuration found in a default place may be used: one in a directory
    other users can write (e.g. ./pgvdrill.toml in /tmp) could be theirs, so it is
    skipped with a warning on stderr, as if absent. An explicit --config is never skipped
    (load_config refuses it if it is unsafe)."""
    unsafe = safe_directory(found.absolute().parent)
    if unsafe:
        print(f"pgvdrill: warning: ignoring {found.absolute()}: {unsafe}, so the file may "
              "not be yours; pass --config to use a configuration there", file=sys.stderr)
    return unsafe is None


SECTIONS = ("source", "repository", "logical", "physical", "retention", "sync", "drill",
            "procedure", "limits", "provider")
PROVIDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def load_config(path: Path) -> Config:
    """The configuration at `path`; ConfigError with what to fix if it is unusable (also
    when anyone but root and the caller can change it or a program it names: trust.py)."""
    require_trusted(path, "configuration")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror or exc}",
                          "pass --config with a readable file (see pgvdrill.example.toml)"
                          ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                          "save the configuration as UTF-8 (see pgvdrill.example.toml)"
                          ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}",
                          "see pgvdrill.example.toml for the format") from None
    reader = _Reader(path)
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise reader.error(", ".join(f"[{u}]" for u in unknown), "unknown section",
                           f"allowed: {', '.join(f'[{s}]' for s in SECTIONS)}")
    source = None
    if "source" in data:
        body = dict(reader.table(data, "source"))
        text = body.pop("conninfo", None)
        if not isinstance(text, str):
            raise reader.error("[source] conninfo", "missing or not a string",
                               'write conninfo = "host=db1 dbname=vector_db user=backup"')
        extra = reader.build(Source, "source", {**body, "conninfo": "x"})
        source = Source(parse_conninfo(text, f"{path}: [source] conninfo"), extra.pg_bin)
    providers = _providers(reader, reader.table(data, "provider"))
    repository = _repository(reader, data, bool(providers))
    sync = reader.table(data, "sync")
    unknown_sync = sorted(set(sync) - {"rsync", "s3"})
    if unknown_sync:
        raise reader.error("[sync]", f"unknown target(s) {', '.join(unknown_sync)}",
                           "use [sync.rsync] and/or [sync.s3]")
    procedures = data.get("procedure", [])
    if not isinstance(procedures, list):
        raise reader.error("procedure", "must be an array of tables",
                           "write each one as [[procedure]]")
    config = Config(
        path=path, source=source, repository=repository,
        logical=reader.build(Logical, "logical", reader.table(data, "logical")),
        physical=reader.build(Physical, "physical", reader.table(data, "physical")),
        retention=reader.build(Retention, "retention", reader.table(data, "retention")),
        rsync=reader.build(RsyncTarget, "sync.rsync", sync["rsync"]) if "rsync" in sync
        else None,
        s3=reader.build(S3Target, "sync.s3", sync["s3"]) if "s3" in sync else None,
        drill=reader.build(Drill, "drill", reader.table(data, "drill")),
        procedures=tuple(reader.build(Procedure, f"procedure {i + 1}", p if isinstance(p, dict)
                                      else {"?": p}) for i, p in enumerate(procedures)),
        limits=_limits(reader, reader.table(data, "limits")),
        providers=providers,
    )
    _require_trusted_programs(config)
    if config.repository is not None:
        require_trusted(config.repository, f"{config.path}: [repository] path", itself=False,
                        stake="can put another directory in its place, where pgvdrill "
                              "writes and deletes as {user}")
    return config


def _repository(reader: _Reader, data: dict[str, Any], optional: bool) -> Path | None:
    """[repository] path; it may be left out when `optional` (providers are configured)."""
    if "repository" not in data and optional:
        return None
    repo = reader.table(data, "repository")
    if set(repo) != {"path"} or not isinstance(repo.get("path"), str):
        raise reader.error("[repository]", "needs exactly one key, path (a string)",
                           'write [repository] then path = "/backup/pgvdrill"')
    if "\0" in repo["path"]:
        raise reader.error("[repository] path", "contains a NUL character", "remove it")
    repository = Path(repo["path"])
    return repository if repository.is_absolute() else reader.path.parent / repository


def _providers(reader: _Reader, body: dict[str, Any]) -> tuple[Provider, ...]:
    """Each [provider.NAME] table, its keys checked against its type's (PROVIDER_KEYS)."""
    found = []
    for name, table in body.items():
        section = f"provider.{name}"
        if not PROVIDER_NAME.fullmatch(name):
            raise reader.error(f"[{section}]", "not a provider name",
                               "use 1-63 letters, digits, '.', '_' or '-'")
        if not isinstance(table, dict):
            raise reader.error(f"[{section}]", "must be a table",
                               f"write [{section}] on its own line, then its keys")
        kind = table.get("type", name)
        if kind not in PROVIDER_KEYS:
            raise reader.error(f"[{section}] type = {kind!r}", "not a provider type",
                               f"choose one of: {', '.join(PROVIDER_KEYS)}")
        needed, optional = PROVIDER_KEYS[kind]
        unknown = sorted(set(table) - {"type", *needed, *optional})
        if unknown:
            raise reader.error(f"[{section}]", f"key(s) {', '.join(unknown)} are not "
                               f"{kind}'s", f"{kind} takes: {', '.join((*needed, *optional))}")
        missing = [key for key in needed if not table.get(key)]
        if kind == "files" and not (table.get("dumps") or table.get("base_backups")):
            missing.append("dumps or base_backups")
        if missing:
            raise reader.error(f"[{section}]", f"missing key(s) {', '.join(missing)}",
                               f"see docs/providers/{kind}.md")
        found.append(reader.build(Provider, section, {**table, "type": kind, "name": name}))
    return tuple(found)


def _require_trusted_programs(config: Config) -> None:
    """ConfigError unless every program the configuration names is trusted (trust.py)."""
    for where, bindir in (("[source] pg_bin", config.source.pg_bin if config.source else None),
                          ("[drill] pg_bin", config.drill.pg_bin),
                          *(("[drill] installations", b) for b in config.drill.installations)):
        if bindir is not None:
            require_trusted_bindir(bindir, f"{config.path}: {where}")
    # procedures run with the drill's bin directory first on the caller's PATH (workspace.py)
    search = os.pathsep.join([*([str(config.drill.pg_bin)] if config.drill.pg_bin else []),
                              os.environ.get("PATH", os.defpath)])
    for proc in config.procedures:
        for key in ("backup", "restore", "archive_command", "restore_command"):
            require_trusted_command(getattr(proc, key),
                                    f"{config.path}: [[procedure]] {proc.name!r} {key}",
                                    search)
    for provider in config.providers:
        where = f"{config.path}: [provider.{provider.name}]"
        if provider.bin is not None:
            require_trusted_bindir(provider.bin, f"{where} bin")
        if provider.config is not None:  # the tool runs what its configuration says
            require_trusted(provider.config, f"{where} config")
        for key in ("list", "restore", "restore_command", "check", "verify"):
            require_trusted_command(getattr(provider, key), f"{where} {key}", search)
