"""The operator's configuration file: the example loads, mistakes are named (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgvdrill.config import load_config
from pgvdrill.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "pgvdrill.example.toml"


def test_example_configuration_loads() -> None:
    config = load_config(EXAMPLE)

    source = config.require_source()
    assert source.conninfo == {"host": "db1.example.internal", "port": "5432",
                               "dbname": "vector_db", "user": "backup"}
    assert config.repository == Path("/backup/pgvdrill")
    assert config.wal_dir == Path("/backup/pgvdrill/wal")
    assert config.retention.physical_days == 30 and config.retention.monthly_months == 12
    assert config.rsync is not None and config.s3 is not None
    assert config.s3.storage_class == "STANDARD_IA" and config.procedures == ()


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "pgvdrill.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    return message


REPO = '[repository]\npath = "repo"\n'


@pytest.mark.parametrize(("text", "expected"), [
    (REPO + '[source]\nconninfo = "host=db password=secret"\n', "holds a password"),
    (REPO + '[source]\nconninfo = "host=db sslmod=require"\n', "sslmod"),
    (REPO + '[source]\nconninfo = "host=db port"\n', "not a libpq connection string"),
    (REPO + "[retention]\nlogical_days = -1\n", "not a number >= 0"),
    (REPO + "[retention]\nweekly = 3\n", "unknown key(s) weekly"),
    (REPO + '[physical]\ncheckpoint = "slow"\n', "choose one of: fast, spread"),
    (REPO + "[backups]\n", "unknown section"),
    (REPO + '[sync.ftp]\nhost = "x"\n', "unknown target(s) ftp"),
    (REPO + '[[procedure]]\nbackup = "pg_dump"\n', "missing key(s) name"),
    ('[source]\nconninfo = "host=db"\n', "[repository]"),
    (REPO + "[logical\n", "not valid TOML"),
    (REPO + '[physical]\ncompress = "server-zstd"\n', "not a compression pgvdrill can"),
    (REPO + '[logical]\ncompress = "lz4:3"\n', "lz4 and zstd are not supported yet"),
    (REPO + '[logical]\ncompress = "server-gzip"\n', "not a compression pgvdrill can"),
    (REPO + '[logical]\ncompress = "gzip:12"\n', "not a compression pgvdrill can"),
    (REPO + '[drill]\ninstallations = "/usr/lib/postgresql/16/bin"\n', "not a list of paths"),
    (REPO + '[drill]\ninstallations = ["/a", 16]\n', "not a list of paths"),
    (REPO + '[drill]\ntarget_version = "eighteen"\n', "not a PostgreSQL version"),
    (REPO + '[drill]\ntarget_version = 18\n', "wrong type (int)"),
    ('[provider.barman]\nconfig = "/etc/barman.conf"\n', "missing key(s) server"),
    ('[provider.b]\ntype = "wal-g"\n', "not a provider type"),
    ('[provider.barman]\nserver = "pg"\nstanza = "x"\n', "stanza are not barman's"),
    ('[provider.files]\nwal = "/wal"\n', "missing key(s) dumps or base_backups"),
    ('[provider.pgbackrest]\nstanza = "main"\nrepo = 0\n', "not a whole number >= 1"),
    ('[provider."a b"]\nserver = "pg"\n', "not a provider name"),
    ('[provider]\nbarman = 3\n', "must be a table"),
    ('[provider.command]\nrestore = "cp -a /b {datadir}"\nkind = "diff"\n', "choose one of"),
])
def test_configuration_mistakes_are_named(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _error(tmp_path, text)


@pytest.mark.parametrize(("section", "value"), [
    ("logical", "gzip:1"), ("logical", "9"), ("logical", "none"), ("logical", "gzip:level=5"),
    ("physical", "server-gzip"), ("physical", "client-gzip:1"), ("physical", "none"),
    ("physical", "0"), ("physical", "gzip"),
])
def test_compression_pgvdrill_reads_back_is_accepted(tmp_path: Path, section: str,
                                                     value: str) -> None:
    path = tmp_path / "pgvdrill.toml"
    path.write_text(f'{REPO}[{section}]\ncompress = "{value}"\n')
    assert getattr(load_config(path), section).compress == value


def test_relative_repository_is_beside_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pgvdrill.toml"
    path.write_text(REPO)

    config = load_config(path)

    assert config.repository == tmp_path / "repo" and config.source is None
    with pytest.raises(ConfigError, match="no \\[source\\] section"):
        config.require_source()


def test_providers_replace_the_repository(tmp_path: Path) -> None:
    path = tmp_path / "pgvdrill.toml"
    path.write_text('[provider.nightly]\ntype = "pgbackrest"\nstanza = "main"\nrepo = 2\n'
                    '[provider.barman]\nserver = "pg"\n')

    config = load_config(path)

    assert [(p.name, p.type) for p in config.providers] == [
        ("nightly", "pgbackrest"), ("barman", "barman")]
    assert config.provider("nightly").repo == 2 and config.repository is None
    with pytest.raises(ConfigError, match="no \\[repository\\] section"):
        config.require_repository()
    with pytest.raises(ConfigError, match="configured: nightly, barman"):
        config.provider("wal-g")


def test_installations_and_target_version(tmp_path: Path) -> None:
    for name in ("pg16/bin", "pg17/bin"):
        (tmp_path / name).mkdir(parents=True)
    path = tmp_path / "pgvdrill.toml"
    path.write_text(REPO + '[drill]\ninstallations = ["pg16/bin", "%s"]\n'
                           'target_version = "18.3"\n' % (tmp_path / "pg17/bin"))

    drill = load_config(path).drill

    assert drill.installations == (tmp_path / "pg16/bin", tmp_path / "pg17/bin")
    assert drill.target_version == "18.3"


def test_an_installation_others_can_change_is_refused(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir(mode=0o777)
    (tmp_path / "shared").chmod(0o777)
    message = _error(tmp_path, REPO + '[drill]\ninstallations = ["shared"]\n')
    assert "[drill] installations" in message
