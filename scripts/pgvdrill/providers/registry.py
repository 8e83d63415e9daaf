"""The provider of a [provider.NAME] section, by its type."""

from __future__ import annotations

from collections.abc import Callable

from pgvdrill import config
from pgvdrill.errors import ConfigError
from pgvdrill.providers import barman, barman_cloud, pgbackrest
from pgvdrill.providers.base import Provider
from pgvdrill.providers.command import CommandProvider
from pgvdrill.providers.files import FilesProvider
from pgvdrill.providers.repository import RepositoryProvider

# each type's constructor; a provider module adds its own line
MAKERS: dict[str, Callable[[config.Provider], Provider]] = {
    "barman": barman.Barman,
    "barman-cloud": barman_cloud.BarmanCloud,
    "command": CommandProvider,
    "pgbackrest": pgbackrest.PgBackRest,
    "files": FilesProvider,
    "pgvdrill": RepositoryProvider,
}


def make(conf: config.Provider) -> Provider:
    """The provider `conf` configures; ConfigError when its type has none yet."""
    maker = MAKERS.get(conf.type)
    if maker is None:
        raise ConfigError(f"[provider.{conf.name}]: type {conf.type!r} is not available",
                          f"available: {', '.join(MAKERS) or 'none'}")
    return maker(conf)
