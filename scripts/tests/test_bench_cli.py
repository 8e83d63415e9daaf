"""`pgvdrill bench`'s options: defaults, and every bad value refused by argparse with the
reason (exit 2) before anything runs."""

from __future__ import annotations

import argparse

import pytest

from pgvdrill.bench.modes import MODES, parse_modes
from pgvdrill.bench.sizes import Size
from pgvdrill.cli.bench import add_bench_parser, repeats
from pgvdrill.errors import ConfigError


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="pgvdrill")
    sub = root.add_subparsers(dest="command", required=True)
    add_bench_parser(sub, lambda p: p.add_argument("--backend", default="embedded"))
    return root


def test_defaults_are_small_every_mode_once() -> None:
    args = parser().parse_args(["bench"])
    assert args.sizes == [Size(2000, 64), Size(20000, 128)]
    assert (args.modes, args.repeat, args.backend) == (["all"], 1, "embedded")


def test_options_parsed() -> None:
    args = parser().parse_args(["bench", "--sizes", "500x16", "--modes", "dump,restore:psql",
                                "--repeat", "3"])
    assert (args.sizes, args.modes, args.repeat) == ([Size(500, 16)], ["dump", "restore:psql"], 3)


@pytest.mark.parametrize(("option", "value", "words"), [
    ("--sizes", "2000x64,big", "'big' is not ROWSxDIM"),
    ("--sizes", "10x5000", "outside 1..2000"),
    ("--modes", "dump,restore:fast", "unknown mode restore:fast"),
    ("--repeat", "0", "1 or more"),
])
def test_bad_values_refused_with_the_reason(option: str, value: str, words: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(["bench", option, value])
    assert exited.value.code == 2
    assert words in capsys.readouterr().err


def test_help_lists_every_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["bench", "--help"])
    out = capsys.readouterr().out
    assert all(f"  {name} " in out for name in MODES)
    assert "pgvdrill bench --sizes" in out


def test_mode_names_and_groups() -> None:
    assert parse_modes(" all ") == ["all"]
    assert parse_modes("basebackup,restore:fresh") == ["basebackup", "restore:fresh"]
    with pytest.raises(ConfigError, match=r"\(none\)"):
        parse_modes(",")


@pytest.mark.parametrize("text", ["0", "-1", "two", "1.5", ""])
def test_repeat_is_a_whole_number_from_one(text: str) -> None:
    with pytest.raises(ConfigError):
        repeats(text)
    assert repeats("7") == 7
