"""Every example in every `--help` of the pgvdrill command is a command line its parser
accepts, and the ones that need no server run (archive_command and restore_command as
PostgreSQL runs them, %p and %f replaced)."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.segments import segment_bytes
from pgvdrill.cli.main import build_parser

SEGMENT = "000000010000000000000003"


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ("pgvdrill",)
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command and subcommand, walking the parser tree."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


def examples(help_text: str) -> list[list[str]]:
    """The pgvdrill command lines under `example:`/`examples:` (continuations joined,
    comments, environment assignments and what follows &&, | or > left out); a setting
    quoting one (archive_command = '...') gives the quoted command (up to a `;`)."""
    found: list[list[str]] = []
    match = re.search(r"^examples?:(.*?)(?=\n\S|\n\n|\Z)", help_text, re.M | re.S)
    if match is None:
        return found
    for line in match.group(1).replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 3 and words[1] == "=":  # a postgresql.conf setting (up to a ;)
            words = shlex.split(words[2].split(";")[0])
        while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
            words = words[1:]
        for stop in ("&&", "|", ">"):
            words = words[:words.index(stop)] if stop in words else words
        if words:
            found.append(words)
    return found


HELPS = {" ".join(path): parser.format_help() for path, parser in commands(build_parser())}
EXAMPLES = [(command, argv) for command, text in HELPS.items() for argv in examples(text)]


def test_the_commands_with_examples_are_found() -> None:
    assert {c for c, _ in EXAMPLES} >= {
        "pgvdrill drill", "pgvdrill archive-wal", "pgvdrill restore-wal", "pgvdrill backup",
        "pgvdrill restore logical", "pgvdrill restore physical", "pgvdrill restore pitr",
        "pgvdrill verify", "pgvdrill schedule", "pgvdrill retention", "pgvdrill sync",
        "pgvdrill bench", "pgvdrill procedures", "pgvdrill verify-backup"}


@pytest.mark.parametrize(("command", "argv"), EXAMPLES,
                         ids=[" ".join(argv) for _, argv in EXAMPLES])
def test_every_help_example_parses(command: str, argv: list[str],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert argv[0] == "pgvdrill" and " ".join(argv).startswith(command), \
        f"an example of `{command} --help` is not a {command} command: {argv}"
    try:
        args = build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        pytest.fail(f"`{command} --help` example rejected by the parser (exit {exc.code}): "
                    f"{shlex.join(argv)}\n{capsys.readouterr().err}")
    assert args.command == argv[1]


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pgvdrill.cli", *argv[1:]],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ})


def test_the_wal_command_examples_paste_and_run(tmp_path: Path) -> None:
    """Pasted into postgresql.conf, PostgreSQL replaces %p and %f and runs them: the
    segment is archived under its name and restored where asked."""
    for name in ("archive-wal", "restore-wal"):
        text = HELPS[f"pgvdrill {name}"]
        assert "%%" not in text, f"pgvdrill {name} --help prints %%: pasted, it is wrong"
    [archive] = examples(HELPS["pgvdrill archive-wal"])
    [restore] = examples(HELPS["pgvdrill restore-wal"])
    wal = tmp_path / "pg_wal"
    wal.mkdir()
    (wal / SEGMENT).write_bytes(segment_bytes())
    dest = tmp_path / "archive"
    dest.mkdir()

    def placed(argv: list[str], path: str) -> list[str]:
        """As PostgreSQL runs it: %p a path relative to the data directory, %f the name;
        the example's archive directory replaced by the test's."""
        words = [path if w == "%p" else SEGMENT if w == "%f" else w for w in argv]
        return [str(dest) if w == "/backup/wal" else w for w in words]

    stored = run(placed(archive, str(wal / SEGMENT)))
    assert stored.returncode == 0, stored.stderr
    assert (dest / SEGMENT).read_bytes() == (wal / SEGMENT).read_bytes()
    fetched = run(placed(restore, str(tmp_path / "RECOVERYXLOG")))
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "RECOVERYXLOG").read_bytes() == (wal / SEGMENT).read_bytes()
