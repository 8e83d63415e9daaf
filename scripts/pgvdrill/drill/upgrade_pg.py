"""The pg_upgrade upgrade: the old cluster (archiving, as production does) is stopped, a
new cluster is initdb'd to match it (data checksums as pg_controldata reads them, the
old bootstrap superuser, encoding and locale), `pg_upgrade --check` then `pg_upgrade`
run as the server's OS user in a directory it owns, the new cluster starts on
pgvdrill's own settings only (no archive_command: pg_upgrade carries no configuration)
and restored.SAFE_START (no logical replication worker: a subscription pg_upgrade carried
enabled from 17+ cannot connect to its publisher),
the update_extensions.sql pg_upgrade wrote is applied, statistics gathered; then
verified against the old cluster's snapshot."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from pgvdrill import osuser
from pgvdrill.capabilities import server_capabilities
from pgvdrill.cluster.base import LIBPQ_VARIABLES
from pgvdrill.cluster.directory import publish_initdb
from pgvdrill.cluster.local import LocalBackend, LocalCluster
from pgvdrill.cluster.restored import SAFE_START
from pgvdrill.drill.record import Progress
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.drill.upgrade import UpgradeDrill, UpgradePlan
from pgvdrill.drill.upgrade_dump import analyze, timed
from pgvdrill.drill.upgrade_source import source_template
from pgvdrill.drill.upgrade_verify import baseline, verify_upgraded
from pgvdrill.errors import ConfigError, ToolError, cleanup
from pgvdrill.proc import runner
from pgvdrill.proc.runner import ToolCall
from pgvdrill.timing import Phase

UPDATE_SCRIPT = "update_extensions.sql"  # what pg_upgrade writes when extensions lag


def pg_upgrade_upgrade(source_backend: LocalBackend, target_backend: LocalBackend,
                       plan: UpgradePlan, progress: Progress) -> UpgradeDrill:
    """Upgrade a copy of the source template with pg_upgrade (see the module docstring)."""
    template = source_template(source_backend, plan.data)
    old = source_backend.create("upgrade-old", template=template)
    with cleanup(old.destroy, f"server {old.name}"):
        archive = old.directory / "production-archive"
        archive.mkdir(mode=0o700)
        osuser.chown_tree(archive, old.server_user)
        old.configure(archive_mode="on", archive_command=old.archive_command(archive))
        old.start()
        with old.connect(SOURCE_DB) as conn:
            before, planned = baseline(conn)
            source_facts = server_capabilities(conn).as_dict()
            row = conn.execute(
                "SELECT (SELECT rolname FROM pg_catalog.pg_authid WHERE oid = 10),"
                " pg_catalog.pg_encoding_to_char(encoding), datcollate, datctype,"
                " datlocprovider::text FROM pg_catalog.pg_database"
                " WHERE datname = 'template1'").fetchone()
        assert row is not None
        superuser, encoding, collate, ctype, provider = (str(v) for v in row)
        progress(f"  old cluster PostgreSQL {source_facts['postgresql']} + pgvector "
                 f"{source_facts['pgvector']}: snapshot taken")
        steps: list[Phase] = []
        timed(steps, "stop", old.stop)
        checksums = data_checksums(source_backend.installation.run_tool(
            ToolCall("pg_controldata", [old.datadir])).stdout)
        password = _password(old.directory)  # pg_upgrade carries the old one's over
        new = timed(steps, "initdb", lambda: _initdb(
            target_backend, superuser, password, encoding, collate, ctype, provider, checksums))
        with cleanup(new.destroy, f"server {new.name}"):
            work = new.directory / "pg_upgrade"
            work.mkdir(mode=0o700)
            passfile = work / "pgpass"
            passfile.write_text(f"*:*:*:{superuser}:{password}\n")
            passfile.chmod(0o600)
            osuser.chown_tree(work, new.server_user)
            args = ["--old-bindir", str(source_backend.installation.bindir),
                    "--new-bindir", str(target_backend.installation.bindir),
                    "--old-datadir", str(old.datadir), "--new-datadir", str(new.datadir),
                    "--username", superuser, "--old-port", str(old.port),
                    "--new-port", str(new.port), "--socketdir", str(work)]
            timed(steps, "check", lambda: _pg_upgrade(new, work, [*args, "--check"]))
            timed(steps, "pg_upgrade", lambda: _pg_upgrade(new, work, args))
            new.configure(**SAFE_START)  # a carried enabled subscription cannot start
            timed(steps, "start", new.start)
            script = work / UPDATE_SCRIPT
            note = (f"pg_upgrade wrote {UPDATE_SCRIPT}" if script.is_file()
                    else f"pg_upgrade wrote no {UPDATE_SCRIPT}: no extension lagged")
            if script.is_file() and plan.tamper.skip_extension_update:
                note += ": NOT applied (meta-drill)"
            elif script.is_file():
                timed(steps, "extension-update", lambda: new.run_tool(ToolCall(
                    "psql", ["--no-psqlrc", "--set", "ON_ERROR_STOP=1", "--quiet",
                             "--file", str(script)], dbname="postgres",
                    hint=f"applying {script} failed")))
                note += ": applied"
            timed(steps, "analyze", lambda: analyze(new))
            verification, target_facts = verify_upgraded(new, before, planned, plan,
                                                         same_answers=True)
    notes = [note, f"data checksums {'on' if checksums else 'off'} in both clusters (as the "
             "old one's pg_controldata says)"]
    return UpgradeDrill("pg_upgrade", source_facts, target_facts, steps, verification,
                        notes=notes)


def data_checksums(controldata: str) -> bool:
    """Whether pg_controldata's output says data checksums are on (version 1, not 0)."""
    match = re.search(r"^Data page checksum version:\s+(\d+)", controldata, re.M)
    if match is None:
        raise ConfigError("pg_controldata printed no 'Data page checksum version'",
                          "check that the old cluster's data directory is complete")
    return match.group(1) != "0"


def _initdb(backend: LocalBackend, superuser: str, password: str, encoding: str,
            collate: str, ctype: str, provider: str, checksums: bool) -> LocalCluster:
    """A new, stopped cluster of `backend`'s installation matching the old one (its
    superuser and that one's password: pg_upgrade copies the old roles over it)."""
    if provider != "c":
        raise ConfigError(f"the old cluster's locale provider is {provider!r}: this drill "
                          "matches libc locales only", "drill a cluster initialised with libc")
    inst = backend.installation
    build = Path(tempfile.mkdtemp(prefix="initdb-", dir=backend.workdir))
    (build / "pw").write_text(password + "\n")
    osuser.chown_tree(build, backend.server_user)
    flags = (["--data-checksums"] if checksums else
             ["--no-data-checksums"] if inst.major >= 18 else [])  # 18 turns them on
    runner.run([inst.tool("initdb"), "-D", build / "data", "-U", superuser, "--pwfile",
                build / "pw", "--auth", "scram-sha-256", "--encoding", encoding,
                "--lc-collate", collate, "--lc-ctype", ctype, "--locale-provider", "libc",
                *flags, "--no-instructions"],
               user=backend.server_user, cwd=build, timeout=300,
               hint="initdb of the new cluster failed")
    (build / "pw").unlink()
    directory = Path(tempfile.mkdtemp(prefix="upgrade-new-", dir=backend.workdir))
    publish_initdb(build, directory, password)
    (directory / "pgpass").write_text(f"*:*:*:{superuser}:{password}\n")
    osuser.chown_tree(directory, backend.server_user)
    if backend.server_user:
        os.chown(directory / "pgpass", 0, 0)  # read by root's clients only
    return LocalCluster("upgrade-new", directory, inst, backend.server_user,
                        superuser=superuser)


def _password(directory: Path) -> str:
    """The superuser's password from a cluster directory's pgpass line (host:port:db:user:pw)."""
    return (directory / "pgpass").read_text().splitlines()[0].split(":", 4)[4]


def _pg_upgrade(new: LocalCluster, work: Path, args: list[str]) -> None:
    """pg_upgrade as the server's OS user in `work` (it writes its scripts there); its
    report goes to stdout, so a failure's message carries both streams' tails."""
    result = runner.run([new.installation.tool("pg_upgrade"), *args], user=new.server_user,
                        cwd=work, env={**dict.fromkeys(LIBPQ_VARIABLES),
                                       "PGPASSFILE": str(work / "pgpass")}, check=False)
    if result.returncode != 0:
        raise ToolError(result.argv, result.returncode, f"{result.stdout}\n{result.stderr}",
                        "pg_upgrade's report is above; its checks name what to change in "
                        "the old cluster before the real upgrade")
