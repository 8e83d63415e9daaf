"""The configuration Barman reads, found and read as Barman does (no Barman run): its
barman_user, and the refusal of files another user can change (more in
test_attack_providers.py, B10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgvdrill.errors import ConfigError
from pgvdrill.providers import barman_config


def _conf(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "barman.conf"
    path.write_text(text)
    path.chmod(0o644)
    return path


@pytest.mark.parametrize(("line", "user"), [
    ("barman_user = pgvbarman", "pgvbarman"), ("barman_user = 'pgvbarman'", "pgvbarman"),
    ("barman_user = None", "barman"), ("", "barman"),
    ("barman_home = /b\nbarman_user = %(barman_home)s", None)])
def test_barman_user_is_read_as_barman_reads_it(tmp_path: Path, line: str,
                                                 user: str | None) -> None:
    path = _conf(tmp_path, f"[barman]\nlog_level = INFO\n{line}\n")
    if user is None:  # "/b" after interpolation: no user name
        with pytest.raises(ConfigError, match="not a user name"):
            barman_config.barman_user(path)
    else:
        assert barman_config.barman_user(path) == user


@pytest.mark.parametrize("text", ["barman_user = x\n", "[barman]\nbarman_user = %(nope)s\n",
                                  "[barman]\nbarman_user = root; id\n"])
def test_a_configuration_barman_cannot_read_is_a_config_error(tmp_path: Path,
                                                             text: str) -> None:
    with pytest.raises(ConfigError):
        barman_config.barman_user(_conf(tmp_path, text))


def test_without_config_barman_config_file_is_the_one_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _conf(tmp_path, "[barman]\nbarman_user = pgvbarman\n")
    monkeypatch.setenv("BARMAN_CONFIG_FILE", str(path))
    assert barman_config.main_file(None) == path
    assert barman_config.main_file(tmp_path / "given.conf") == tmp_path / "given.conf"
    monkeypatch.delenv("BARMAN_CONFIG_FILE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    if not any(Path(p).exists() for p in barman_config.SEARCH[1:]):
        with pytest.raises(ConfigError, match="finds no configuration file"):
            barman_config.main_file(None)
    (tmp_path / "home" / ".barman.conf").write_text("[barman]\n")
    assert barman_config.main_file(None) == tmp_path / "home" / ".barman.conf"


def test_a_missing_configuration_files_directory_is_judged_by_who_could_create_it(
        tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    path = _conf(tmp_path, f"[barman]\nconfiguration_files_directory = {loose}/barman.d\n")
    with pytest.raises(ConfigError, match="configuration_files_directory"):
        barman_config.require_trusted_files(path, "[provider.b]")
    loose.chmod(0o755)
    assert barman_config.require_trusted_files(path, "[provider.b]") == path
