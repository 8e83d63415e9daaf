"""The runbook's logical procedures, run verbatim on throw-away servers: its pg_dump commands
(section 2), its pg_restore commands (section 3) and its restore_test.sh (section 5).

Each dump is checked like pgvdrill's own: readable to the last data block, its table of
contents exactly the objects the command covers; a -t/-n dump is also restored the way the
runbook restores (`pg_restore -U postgres -d vector_db <dump>`, into a new database) and
the tables it covers verified. Each restore runs on the full -F c -Z 9 dump into the
database state the step names and is verified against the source.
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from pgvdrill.cluster.local import LocalCluster
from pgvdrill.drill.logical import drop_database
from pgvdrill.drill.source import SOURCE_DB
from pgvdrill.errors import ToolError
from pgvdrill.logical import diagnose
from pgvdrill.logical.archive import inspect
from pgvdrill.logical.dump import PARTIAL_DUMP_SETTINGS
from pgvdrill.logical.pairing import diverge
from pgvdrill.logical.restore import RESTORE_SETTINGS, create_database, restore
from pgvdrill.logical.selection import Selection, expected_toc, toc_problems
from pgvdrill.proc.runner import Result
from pgvdrill.procedures.pack import CONNECTION, PackRun
from pgvdrill.procedures.runbook_scripts import RESTORE_TEST_SH
from pgvdrill.procedures.steps import Outcome, exit_text, judge
from pgvdrill.procedures.template import render
from pgvdrill.procedures.verification import check_restored
from pgvdrill.procedures.workspace import Workspace
from pgvdrill.verify import Snapshot

DUMP, RESTORE, RESTORE_TEST = "pg_dump", "pg_restore", "restore_test.sh"
DUMP_ADAPTED = f"-f: a file in the drill's work directory; {CONNECTION}"
PLAIN_RESTORE = "pg_restore -U postgres -d vector_db {backup}"  # section 3, as written
PLAINLY = "`pg_restore -U postgres -d vector_db <dump>` into a new database"


@dataclass(frozen=True)
class DumpStep:
    step: str
    command: str  # the runbook's command; {backup} stands for its -f file
    selection: Selection


DUMPS = (
    DumpStep("full -F c -Z 9", "pg_dump -U postgres -d vector_db -F c -Z 9 -f {backup}",
             Selection()),
    DumpStep("one table -t documents",
             "pg_dump -U postgres -d vector_db -t documents -F c -Z 9 -f {backup}",
             PARTIAL_DUMP_SETTINGS["table"].selection),
    DumpStep("three tables -t -t -t",
             "pg_dump -U postgres -d vector_db -t documents -t account_behaviors "
             "-t product_embeddings -F c -Z 9 -f {backup}",
             PARTIAL_DUMP_SETTINGS["tables"].selection),
    DumpStep("pattern -t 'documents*'",
             "pg_dump -U postgres -d vector_db -t 'documents*' -F c -Z 9 -f {backup}",
             PARTIAL_DUMP_SETTINGS["pattern"].selection),
    DumpStep("--data-only", "pg_dump -U postgres -d vector_db --data-only -F c -Z 9 -f {backup}",
             PARTIAL_DUMP_SETTINGS["data-only"].selection),
    DumpStep("--schema-only", "pg_dump -U postgres -d vector_db --schema-only -F c -f {backup}",
             PARTIAL_DUMP_SETTINGS["schema-only"].selection),
    DumpStep("one schema -n public", "pg_dump -U postgres -d vector_db -n public -F c -f {backup}",
             PARTIAL_DUMP_SETTINGS["schema-public"].selection),
)


@dataclass(frozen=True)
class RestoreStep:
    step: str
    command: str  # the runbook's command; {backup} is the full dump
    prepare: str  # empty, diverged, extension or kept (the previous step's database)
    adapted: str
    tables: tuple[str, ...] | None = None
    content: bool = True


NEW_DB = "-d vector_db: a new, empty database on a scratch server"
RESTORES = (
    RestoreStep("--clean --if-exists (overwrite)",
                "pg_restore -U postgres -d vector_db -F c --clean --if-exists {backup}",
                "diverged", "-d vector_db: a copy of the dump restored, then changed (rows "
                "deleted, an index dropped), overwritten"),
    RestoreStep("without --clean (no overwrite)",
                "pg_restore -U postgres -d vector_db -F c {backup}", "empty", NEW_DB),
    RestoreStep("--schema-only", "pg_restore -U postgres -d vector_db -F c --schema-only {backup}",
                "empty", NEW_DB, content=False),
    RestoreStep("--data-only", "pg_restore -U postgres -d vector_db -F c --data-only {backup}",
                "kept", "-d vector_db: the database the --schema-only step restored (the "
                "runbook's partial restores of schema, then data)"),
    RestoreStep("-t documents", "pg_restore -U postgres -d vector_db -F c -t documents {backup}",
                "extension", "-d vector_db: a new database with CREATE EXTENSION vector "
                "(pg_restore -t restores no extension)", tables=("public.documents",)),
    RestoreStep("-j 4 (parallel)", "pg_restore -U postgres -d vector_db -F c -j 4 {backup}",
                "empty", NEW_DB),
)


def run_logical(pack: PackRun, source: LocalCluster, target: LocalCluster, ws: Workspace,
                snap: Snapshot) -> Path | None:
    """The pg_dump, pg_restore and restore_test.sh procedures the run asked for; returns
    the full dump (taken whenever any logical procedure runs) if it verified."""
    dumps = DUMPS if pack.wanted(DUMP) else DUMPS[:1]
    full = None
    for number, step in enumerate(dumps):
        path = _dump(pack, ws, source, target, snap, step, ws.root / f"dump-{number}.dump")
        if step is DUMPS[0]:
            full = path
    if pack.wanted(RESTORE):
        for rstep in RESTORES:
            _restore(pack, ws, source, target, snap, rstep, full)
    if pack.wanted(RESTORE_TEST):
        _restore_test(pack, ws, target, snap, full)
    return full


def _fresh(target: LocalCluster, *, extension: bool = False) -> None:
    drop_database(target, SOURCE_DB)
    create_database(target, SOURCE_DB, extension=extension)


def _dump(pack: PackRun, ws: Workspace, source: LocalCluster, target: LocalCluster,
          snap: Snapshot, step: DumpStep, path: Path) -> Path | None:
    """Run a dump step and check its archive; the archive if the step works."""
    command = render(step.command, {"backup": str(path)})
    with pack.recorder.step(DUMP, step.step, command, DUMP_ADAPTED) as out:
        result = ws.run(command, server=source.conninfo, dbname=SOURCE_DB)
        if result.returncode:
            out.error = exit_text(result)
            return None
        archive = inspect(pack.backend.tools(), path)
        with source.connect(SOURCE_DB) as conn:
            out.problems += toc_problems(expected_toc(conn, step.selection), archive.toc)
        out.evidence = (f"{archive.size_bytes} bytes, {len(archive.toc)} items, every data "
                        f"block readable, exactly the objects of "
                        f"{step.selection.describe()}")
        if step.selection.scoped:
            _fresh(target)
            restored = ws.run(render(PLAIN_RESTORE, {"backup": str(path)}),
                              server=target.conninfo, dbname=SOURCE_DB)
            if restored.returncode:
                out.error = (f"restored as the runbook restores ({PLAINLY}): "
                             f"{restore_failure(restored)}")
            dumped = out.evidence
            with target.connect(SOURCE_DB) as conn:
                check_restored(out, snap, conn, tables=[f"{s}.{t}" for s, t in archive.tables()])
            out.evidence = f"{dumped}; {PLAINLY}: {out.evidence}"
    return path if judge(out)[0] == "works" else None


def restore_failure(result: Result) -> str:
    """A failed pg_restore in one line, with what to do when it is a known pitfall."""
    explained = diagnose.explain(ToolError(result.argv, result.returncode, result.stderr))
    return exit_text(result) + (f" ({explained.hint})" if explained else "")


def _restore(pack: PackRun, ws: Workspace, source: LocalCluster, target: LocalCluster,
             snap: Snapshot, step: RestoreStep, full: Path | None) -> None:
    command = render(step.command, {"backup": str(full or ws.root / "missing.dump")})
    with pack.recorder.step(RESTORE, step.step, command, f"{step.adapted}; {CONNECTION}") \
            as out:
        if full is None:
            out.error = "not run: the full pg_dump failed"
            return
        if step.prepare != "kept":
            _fresh(target, extension=step.prepare == "extension")
        if step.prepare == "diverged":
            restore(target, inspect(pack.backend.tools(), full), SOURCE_DB,
                    RESTORE_SETTINGS["fresh"])
            with target.connect(SOURCE_DB) as conn:
                diverge(conn)
        result = ws.run(command, server=target.conninfo, dbname=SOURCE_DB)
        if result.returncode:
            out.error = restore_failure(result)
        with target.connect(SOURCE_DB) as conn, source.connect(SOURCE_DB) as src:
            check_restored(out, snap, conn, source_conn=src, tables=step.tables,
                           content=step.content)


def damaged_copy(dump: Path, dest: Path) -> Path:
    """A copy of `dump` with 4 KiB in the middle zeroed: a bad block or a torn copy, in the
    data (the table of contents is at the start)."""
    shutil.copyfile(dump, dest)
    with dest.open("r+b") as handle:
        handle.seek(dest.stat().st_size // 2)
        handle.write(bytes(4096))
    return dest


def _restore_test(pack: PackRun, ws: Workspace, target: LocalCluster, snap: Snapshot,
                  full: Path | None) -> None:
    script = ws.root / "restore_test.sh"
    script.write_text(render(RESTORE_TEST_SH, {}))
    script.chmod(0o755)
    cases = [("on the full dump", full), ("on a damaged copy of it",
                                          damaged_copy(full, ws.root / "damaged.dump")
                                          if full else None)]
    for name, dump in cases:
        command = f"./restore_test.sh {shlex.quote(str(dump))}"
        adapted = (f"the script written from the runbook's description; {CONNECTION}"
                   + ("; the damage: 4 KiB in the middle of the dump zeroed" if dump and
                      dump.name == "damaged.dump" else ""))
        with pack.recorder.step(RESTORE_TEST, name, command, adapted) as out:
            if dump is None:
                out.error = "not run: the full pg_dump failed"
                continue
            result = ws.run(command, server=target.conninfo, dbname="postgres")
            _judge_restore_test(out, result, snap, damaged=dump is not full)


def _judge_restore_test(out: Outcome, result: Result, snap: Snapshot, *, damaged: bool
                        ) -> None:
    """Compare what restore_test.sh printed with the source; on a damaged dump a zero exit
    status is a damaged backup passed as good."""
    base = [t for t in snap.schema.tables.values() if t.schema == "public" and t.kind in ("r", "p")]
    found = re.search(r"^\s*count\s*\n-+\n\s*(\d+)", result.stdout, re.M)
    wrong = [] if found and int(found.group(1)) == len(base) else [
        f"it counted {found.group(1) if found else 'no'} base tables in public, the source "
        f"has {len(base)}"]
    live = re.findall(r"^\s*(\w+)\s*\|\s*(\w+)\s*\|\s*(\d+)\s*$", result.stdout, re.M)
    wrong += [f"n_live_tup of {s}.{t} is {n}, the source has {snap.contents[f'{s}.{t}'].rows} "
              "rows" for s, t, n in live
              if f"{s}.{t}" in snap.contents and snap.contents[f"{s}.{t}"].rows != int(n)]
    failed = [line.strip() for line in result.stderr.splitlines() if "error:" in line][:2]
    if damaged:
        if result.returncode == 0:
            out.hazards.append("restore_test.sh exits 0 on a damaged dump: "
                               + "; ".join(failed + wrong or ["it printed its counts"])
                               + " (its steps run on after a failure and it judges nothing "
                               "it prints)")
        out.evidence = f"it rejected the damaged dump: {exit_text(result)}"
        return
    if result.returncode:
        out.error = exit_text(result)
    out.problems += wrong
    out.evidence = (f"exit 0; it counted {len(base)} base tables and listed n_live_tup of "
                    f"{len(live)} tables, each equal to the source's exact count (it checks "
                    "no content, index or vector)")
