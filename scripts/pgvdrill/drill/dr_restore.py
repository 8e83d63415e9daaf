"""What the DR drill of pgvdrill's own repository (drill.dr) and of a provider's backups
(drill.provider) share: what a drill of one backup may fail with, the role a restored copy
is entered as, and the restore and verification of a dump."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import cast

import psycopg

from pgvdrill.cluster import Backend
from pgvdrill.drill.logical import restore_dump_and_verify
from pgvdrill.drill.record import DrillResult
from pgvdrill.errors import DrillError
from pgvdrill.logical.archive import inspect
from pgvdrill.logical.dump import DumpResult, DumpSetting, Format
from pgvdrill.logical.globals import dump_globals, restore_globals, withheld
from pgvdrill.logical.restore import RESTORE_SETTINGS, make_room
from pgvdrill.server import ExternalServer
from pgvdrill.verify import Snapshot

Say = Callable[[str], None]

# what a drill of one backup may fail with: pgvdrill's own errors, a scratch server or the
# source lost mid-way (psycopg), a file the machine would not give (OSError)
FAILURES = (DrillError, psycopg.Error, OSError)


def bootstrap_superuser(source: ExternalServer) -> str:
    """The source's bootstrap superuser (initdb -U), the only role a restored copy is
    sure to have: the role pgvdrill logs into the copy as."""
    return str(source.query("SELECT rolname FROM pg_roles WHERE oid = 10")[0][0])


def restore_dump(backend: Backend, dump: Path, name: str, seconds: float,
                 source: ExternalServer, source_snapshot: Snapshot, *, recall_threshold: float,
                 say: Say, finished: datetime | None = None, source_bytes: int | None = None,
                 kept: Path | None = None) -> DrillResult:
    """Restore the dump `dump` (backup `name`, taken in `seconds`) into a scratch server,
    after its roles (from `kept`, the backup's own globals.sql; without one, a live
    pg_dumpall --globals-only of the source), and verify it against `source_snapshot`."""
    archive = inspect(backend.tools(), dump)
    dumped = DumpResult(DumpSetting(name, cast(Format, archive.format),
                                    description=f"backup {name}"),
                        archive, seconds, finished=finished, source_bytes=source_bytes)
    with backend.cluster("dr-logical") as target, \
            tempfile.TemporaryDirectory(prefix="pgvdrill-globals-") as tmp:
        roles = kept or dump_globals(source, Path(tmp))
        created = restore_globals(target, roles)
        left = withheld(roles.read_text(), set(created))
        say(f"  roles {', '.join(created) or '(none)'} created from "
            + (f"the backup's {kept.name}" if kept else
               f"a live pg_dumpall --globals-only of {source.describe()} (backup "
               f"{name} has no globals.sql)")
            + (f", without {', '.join(left)}" if left else ""))
        make_room(target, source.dbname)
        return restore_dump_and_verify(dumped, target, source.dbname,
                                       RESTORE_SETTINGS["parallel-j2"], source_snapshot,
                                       recall_threshold=recall_threshold)
