"""The configuration files Barman 3 reads, found as Barman finds them (barman/config.py
Config, barman/cli.py global_config), so that pgvdrill can refuse those another user can
change and learn Barman's `barman_user` without running Barman.

Barman reads `-c FILE`, else $BARMAN_CONFIG_FILE, else the first of SEARCH that exists
and opens; then every `*.conf` of that file's [barman] `configuration_files_directory`
(server sections: their pre/post_recovery_script and path_prefix decide what `barman
recover` and `verify-backup` run). Only the [barman] section of the main file is read here,
with Barman's own parser rules (ConfigParser, strict off, %-interpolation, quotes around a
value dropped, "None" for nothing); a server file cannot change [barman] (Barman refuses).
"""

from __future__ import annotations

import configparser
import glob
import os
import re
from pathlib import Path

from pgvdrill.errors import ConfigError
from pgvdrill.files.trust import require_trusted

SEARCH = ("~/.barman.conf", "/etc/barman.conf", "/etc/barman/barman.conf")
QUOTED = re.compile(r"""^(["'])(.*)\1$""")
USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}\$?")
STAKE = "chooses what Barman runs (recovery hook scripts, path_prefix) as its barman_user"


def main_file(config: Path | None) -> Path:
    """The file Barman reads first: `config`, else $BARMAN_CONFIG_FILE, else SEARCH's
    first; ConfigError when there is none."""
    if config is not None:
        return config
    named = os.environ.get("BARMAN_CONFIG_FILE")
    if named:
        return Path(named)
    for candidate in SEARCH:
        path = Path(os.path.expanduser(candidate))
        try:
            with path.open("rb"):
                return path
        except OSError:
            continue
    raise ConfigError(f"Barman finds no configuration file: none of {', '.join(SEARCH)} "
                      "exists (and BARMAN_CONFIG_FILE is unset)",
                      "set [provider] config to your barman.conf")


def _global(path: Path, key: str) -> str | None:
    """[barman] `key` of the file at `path` as Barman reads it; None when unset."""
    parser = configparser.ConfigParser(strict=False)
    try:
        parser.read_string(path.read_text(encoding="utf-8", errors="replace"), str(path))
        value = parser.get("barman", key, fallback=None)
    except OSError as exc:
        raise ConfigError(f"cannot read Barman's configuration {path}: "
                          f"{exc.strerror or exc}", "make it readable by root") from None
    except (configparser.Error, ValueError) as exc:
        raise ConfigError(f"Barman's configuration {path} cannot be read: "
                          f"{str(exc).splitlines()[0][:200]}",
                          "run `barman -c FILE diagnose` by hand and fix the file") from None
    if value is None or value == "None":
        return None
    return QUOTED.sub(lambda m: m.group(2), value)


def require_trusted_files(config: Path | None, where: str) -> Path:
    """ConfigError unless root and the caller alone can change every configuration file
    Barman reads (the main one, its configuration_files_directory and each *.conf there;
    files/trust.py); the main file."""
    main = main_file(config)
    require_trusted(main, f"{where}: Barman's configuration", stake=STAKE)
    directory = _global(main, "configuration_files_directory")
    if directory:
        servers = Path(os.path.expanduser(directory))
        require_trusted(servers, f"{where}: Barman's configuration_files_directory "
                        f"(in {main})", stake=STAKE)
        for path in sorted(glob.glob(os.path.join(servers, "*.conf"))):  # as Barman globs
            if os.path.isfile(path):
                require_trusted(Path(path), f"{where}: Barman's server configuration",
                                stake=STAKE)
    return main


def barman_user(main: Path) -> str:
    """The OS user Barman drops to (`barman_user` of [barman], "barman" by default)."""
    user = _global(main, "barman_user") or "barman"
    if not USER_NAME.fullmatch(user):
        raise ConfigError(f"{main}: barman_user = {user[:40]!r} is not a user name",
                          "fix barman_user in Barman's configuration")
    return user
