"""Who the servers run as: PostgreSQL refuses root, so root runs them as `pgvdrill`."""

from __future__ import annotations

import os
import pwd

from pgvdrill.errors import ConfigError, DrillError
from pgvdrill.proc import runner

SERVER_USER = "pgvdrill"


def server_user() -> str | None:
    """The OS user to run servers as, or None to run them as ourselves (not root)."""
    if os.geteuid() != 0:
        return None
    if not _exists(SERVER_USER):
        try:
            runner.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                 SERVER_USER],
                timeout=60,
            )
        except DrillError as exc:
            if _exists(SERVER_USER):  # another worker created it meanwhile
                return SERVER_USER
            raise ConfigError(
                f"running as root and there is no OS user {SERVER_USER!r} to run servers as",
                f"create it: useradd --system {SERVER_USER}",
            ) from exc
    return SERVER_USER


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def chown_tree(path: os.PathLike[str], user: str | None) -> None:
    """Give `path` and everything below it to `user` (no-op when None)."""
    if user is None:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)
