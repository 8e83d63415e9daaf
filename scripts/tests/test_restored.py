"""A restored backup's configuration is untrusted input: read as PostgreSQL reads it, never
following anything outside the data directory, and replaced before a scratch copy starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pgvdrill.cluster.conffile import read_conf, unquote
from pgvdrill.cluster.restored import (
    SOURCE_CONFIG,
    control_limits,
    neutralise,
    refuse_symlinks,
)
from pgvdrill.errors import RestoreError

PRODUCTION_CONF = """\
# an operator's postgresql.conf
port = 6543
listen_addresses = '*'
Archive_Mode = on
archive_command = 'test ! -f /backup/wal/%f && cp %p /backup/wal/%f'
logging_collector = on
log_directory = '/var/log/postgresql'
TimeZone = 'Europe/Berlin'
shared_preload_libraries = 'pg_stat_statements,$libdir/not_installed, auto_explain'
max_connections = 300
primary_conninfo = 'host=primary user=replicator'
include_dir = 'conf.d'
include = '/etc/postgresql/secrets.conf'
"""


def test_values_unquote_as_postgresql_reads_them() -> None:
    assert unquote("'it''s'") == "it's"
    assert unquote(r"'a\tb\\c'") == "a\tb\\c"
    assert unquote("on") == "on"


def test_includes_inside_the_data_directory_are_read_the_rest_named(tmp_path: Path) -> None:
    (tmp_path / "postgresql.conf").write_text(PRODUCTION_CONF)
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "10-tuning.conf").write_text("work_mem = '64MB'\nport 7000\n")
    (tmp_path / "conf.d" / "notes.txt").write_text("port = 1\n")

    read = read_conf(tmp_path / "postgresql.conf", tmp_path)

    assert read.settings["archive_mode"].value == "on"  # names are case-insensitive
    assert read.settings["port"].value == "7000"  # the include came later: it wins
    assert read.settings["port"].where == "conf.d/10-tuning.conf:2"
    assert read.files == ["postgresql.conf", "conf.d/10-tuning.conf"]
    assert any("/etc/postgresql/secrets.conf" in p and "outside" in p for p in read.problems)


def test_symlinked_and_escaping_includes_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.conf"
    outside.write_text("archive_command = 'leak'\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "linked.conf").symlink_to(outside)
    (data / "postgresql.conf").write_text(
        "include = 'linked.conf'\ninclude = '../outside.conf'\ninclude_if_exists = 'gone'\n"
        "this is not a setting\n")

    read = read_conf(data / "postgresql.conf", data)

    assert "archive_command" not in read.settings
    assert [p.split(": ", 1)[0] for p in read.problems] == [
        "postgresql.conf:1", "postgresql.conf:2", "postgresql.conf:4"]
    assert "lies outside" in read.problems[0] and "not a setting" in read.problems[2]


def test_include_loops_stop_at_postgresqls_depth(tmp_path: Path) -> None:
    (tmp_path / "postgresql.conf").write_text("include = 'postgresql.conf'\n")
    read = read_conf(tmp_path / "postgresql.conf", tmp_path)
    assert any("nested deeper" in p for p in read.problems)


def _restored(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "postgresql.conf").write_text(PRODUCTION_CONF)
    (data / "conf.d").mkdir()
    (data / "conf.d" / "archive.conf").write_text("archive_timeout = 60\n")
    (data / "postgresql.auto.conf").write_text(
        "recovery_target_time = '2025-11-01 10:00:00+00'\nmax_wal_senders = 20\n")
    for name in ("standby.signal", "postmaster.pid", "pg_hba.conf"):
        (data / name).write_text("from the source\n")
    return data


def test_a_restored_copy_keeps_nothing_that_reaches_production(tmp_path: Path) -> None:
    data = _restored(tmp_path)
    control = control_limits("max_connections setting:              250\n"
                             "max_wal_senders setting:              10\n")

    done = neutralise(data, tmp_path / SOURCE_CONFIG, tmp_path / "socket",
                      has_library=lambda name: name != "not_installed", control=control)

    conf = (data / "postgresql.conf").read_text()
    assert "archive_mode = 'off'" in conf and "primary_conninfo = ''" in conf
    for leaked in ("6543", "archive_command", "/backup/wal", "logging_collector",
                   "listen_addresses", "host=primary", "conf.d"):
        assert leaked not in conf, leaked
    assert conf.rstrip().endswith("include_if_exists = 'pgvdrill.conf'")  # pgvdrill's last
    assert "recovery_target" not in (data / "postgresql.auto.conf").read_text()
    assert not (data / "standby.signal").exists() and not (data / "postmaster.pid").exists()
    assert (tmp_path / SOURCE_CONFIG / "standby.signal").read_text() == "from the source\n"
    hba = (data / "pg_hba.conf").read_text()
    assert [line.split()[0] for line in hba.splitlines()
            if line and not line.startswith("#")] == ["local", "local"]
    # what makes the copy behave like the source, and replay its WAL
    assert done.carried["timezone"] == "Europe/Berlin"
    assert done.carried["max_connections"] == 300  # the larger: config over control file
    assert done.carried["max_wal_senders"] == 20
    assert done.carried["shared_preload_libraries"] == "pg_stat_statements, auto_explain"
    assert any("not_installed" in w for w in done.warnings)
    assert {"archive_command", "port", "logging_collector", "recovery_target_time",
            "primary_conninfo"} <= set(done.dropped)
    assert oct(os.stat(data / "postgresql.conf").st_mode & 0o777) == "0o600"


def test_a_backup_without_postgresql_conf_is_said_to_run_on_pgvdrills_settings(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()  # Debian keeps postgresql.conf in /etc/postgresql/NN/main
    done = neutralise(data, tmp_path / SOURCE_CONFIG, tmp_path / "socket",
                      has_library=lambda name: True, control={})
    assert any("no postgresql.conf" in w for w in done.warnings)
    assert "archive_mode = 'off'" in (data / "postgresql.conf").read_text()


def test_a_backup_whose_files_point_elsewhere_is_refused(tmp_path: Path) -> None:
    data = _restored(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    (data / "pg_wal").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(RestoreError, match="pg_wal"):
        refuse_symlinks(data)
    (data / "pg_wal").unlink()
    (data / "tablespace_map").write_text("16384 /srv/tablespaces/fast\n")
    with pytest.raises(RestoreError, match="tablespace_map"):
        refuse_symlinks(data)
    (data / "tablespace_map").write_text("")  # tar backups carry an empty one
    refuse_symlinks(data)
