"""Procedure templates: values shell-quoted, placeholders checked; no server."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from pgvdrill.errors import ConfigError
from pgvdrill.proc import runner
from pgvdrill.procedures.template import placeholders, render

HOSTILE = "it's a \"backup\" $(touch pwned); `touch pwned2` & rm -rf nothing\n|>x *"


def test_values_are_quoted_for_the_shell() -> None:
    command = render("pg_dump --file={backup} {dsn}",
                     {"backup": "/b/a b.dump", "dsn": "host=h port=1 dbname=d"})
    assert command == "pg_dump --file='/b/a b.dump' 'host=h port=1 dbname=d'"
    assert shlex.split(command) == ["pg_dump", "--file=/b/a b.dump", "host=h port=1 dbname=d"]


def test_a_hostile_path_stays_one_word_and_runs_nothing(tmp_path: Path) -> None:
    """A backup path with spaces, quotes, $(...), backticks, ; & | > * and a newline: the
    shell gets it as one argument and runs none of it."""
    work = tmp_path / "work dir"
    work.mkdir()
    backup = work / HOSTILE
    backup.write_text("payload")
    command = render("cat {backup} | tr a-z A-Z > {wal_dir}/copy && ls {wal_dir}",
                     {"backup": str(backup), "wal_dir": str(work)})

    result = runner.run(["sh", "-c", command], cwd=tmp_path)

    assert (work / "copy").read_text() == "PAYLOAD"
    assert sorted(p.name for p in work.iterdir()) == sorted(["copy", HOSTILE])
    assert not list(tmp_path.rglob("pwned*"))
    assert "copy" in result.stdout


@pytest.mark.parametrize(("template", "says"), [
    ("pg_dump -f '{backup}'", "stands inside 'quotes'"),
    ('pg_dump -f "{backup}"', 'stands inside "quotes"'),
    ("pg_dump -f {bakup}", "unknown placeholder {bakup}"),
    ("pg_dump -f {backup} 'unterminated", "unterminated 'quote'"),
])
def test_bad_templates_are_refused(template: str, says: str) -> None:
    with pytest.raises(ConfigError, match="my step") as caught:
        render(template, {"backup": "/b"}, "my step")
    assert says in caught.value.message
    with pytest.raises(ConfigError):
        placeholders(template)


def test_a_placeholder_without_a_value_here_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"placeholder \{pgdata\} has no value here") as caught:
        render("tar -xf {backup} -C {pgdata}", {"backup": "/b"})
    assert "available: backup" in caught.value.hint


def test_shell_syntax_is_left_alone() -> None:
    template = ("pg_dump {dsn} | gzip > ${HOME}/x.gz && awk '{print $1}' f "
                "&& echo \"{{n}}\" {{literal}} \\{backup} \"a\\\"{b}\"")
    rendered = render(template, {"dsn": "d b"})
    assert rendered == ("pg_dump 'd b' | gzip > ${HOME}/x.gz && awk '{print $1}' f "
                        "&& echo \"{n}\" {literal} \\{backup} \"a\\\"{b}\"")
    assert placeholders(template) == {"dsn"}


def test_placeholders_lists_what_a_template_uses() -> None:
    assert placeholders("test ! -f {wal_dir}/%f && cp %p {wal_dir}/%f") == {"wal_dir"}
    assert placeholders("pg_basebackup -d {dsn} -D {backup}") == {"dsn", "backup"}
    assert placeholders("true") == set()
