"""Attacks on the providers of issue 16 that need no server: what a tool prints (a `command`
provider's list, barman-cloud's catalog output) read as the untrusted input it is, and the
choice and age of the newest backup. Each test names its finding in
/work/helpers/attack-findings-16.md (B<n>); a strict xfail is a finding not fixed yet."""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from fixtures.backup_tools import tool_or_skip
from fixtures.production import ensure_os_user
from fixtures.provider_barman import BARMAN_BIN, BARMAN_USER
from pgvdrill import config
from pgvdrill.backends import default_workdir
from pgvdrill.cli.main import main
from pgvdrill.config import load_config
from pgvdrill.drill.provider import backup_point
from pgvdrill.drill.provider_choose import newest
from pgvdrill.errors import ConfigError, DrillError
from pgvdrill.providers import barman_cloud_catalog, command
from pgvdrill.providers.base import ProviderBackup
from pgvdrill.providers.registry import make
from pgvdrill.wal.pitr import Target

DEEP = "[" * 100_000 + "]" * 100_000  # valid JSON nesting Python's json cannot parse


def _config(tmp_path: Path, lines: list[dict[str, object]] | str) -> Path:
    """A config with one command provider whose list prints `lines` (from a file)."""
    listing = tmp_path / "list.jsonl"
    listing.write_text(lines if isinstance(lines, str)
                       else "".join(json.dumps(line) + "\n" for line in lines))
    path = tmp_path / "pgvdrill.toml"
    path.write_text(f'[provider.team]\ntype = "command"\nlist = "cat {listing}"\n'
                    'restore = "true"\ncheck = "true"\nverify = "true"\n')
    path.chmod(0o600)
    return path


def _providers(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, str, str]:
    code = main(["providers", "--config", str(config), "--json"])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_command_list_nested_too_deep_is_a_tool_error() -> None:
    with pytest.raises(DrillError, match="line 1"):
        command.parse_list(DEEP + "\n", "physical")


def test_providers_on_a_list_nested_too_deep_says_so_without_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _providers(capsys, _config(tmp_path, DEEP + "\n"))
    assert code not in (0, 1), (out, err)
    assert "line 1" in out + err


@pytest.mark.parametrize("parse", [barman_cloud_catalog.parse_backups,
                                   barman_cloud_catalog.parse_wal_names,
                                   barman_cloud_catalog.parse_missing])
def test_barman_cloud_output_nested_too_deep_is_a_drill_error(parse: object) -> None:
    assert callable(parse)
    with pytest.raises(DrillError):
        parse(DEEP)


def test_providers_never_pass_the_age_of_a_backup_finished_in_the_future(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The clock of the host that wrote it is wrong, or the listing is garbage: its age is
    not known, so its target is not met (exit 0 would tell the operator all is well)."""
    future = datetime.now(UTC) + timedelta(days=400)
    code, out, _ = _providers(capsys, _config(tmp_path, [
        {"id": "b1", "finished": future.isoformat()}]))
    (team,) = json.loads(out)["providers"]
    assert team["newest"]["physical"]["status"] != "pass", team
    assert code != 0


def test_the_newest_backup_is_not_one_finished_in_the_future() -> None:
    now = datetime.now(UTC)
    listed = command.parse_list(
        json.dumps({"id": "stale", "finished": (now + timedelta(days=400)).isoformat()}) + "\n"
        + json.dumps({"id": "last", "finished": (now - timedelta(hours=1)).isoformat()})
        + "\n", "physical")
    try:
        chosen = newest(listed, "physical", Target("end"), "team")
    except DrillError:
        return  # refusing a listing it cannot place in time is fine
    assert chosen is not None and chosen.id == "last"


def test_a_command_list_naming_an_id_twice_is_refused() -> None:
    now = datetime.now(UTC)
    text = "".join(json.dumps({"id": "b1", "finished": (now - timedelta(hours=h)).isoformat(),
                               "start_lsn": lsn, "timeline": 1}) + "\n"
                   for h, lsn in ((2, "0/2000028"), (1, "0/9000028")))
    with pytest.raises(DrillError, match="b1"):
        command.parse_list(text, "physical")


def test_a_command_list_timeline_beyond_32_bits_is_refused() -> None:
    with pytest.raises(DrillError, match="timeline"):
        command.parse_list(json.dumps({"id": "b1", "timeline": 2**32}) + "\n", "physical")


@pytest.mark.parametrize("loose", ["server configuration", "its directory"])
def test_a_barman_server_configuration_others_can_write_is_refused(
        tmp_path: Path, loose: str) -> None:
    """Barman reads every barman.d/*.conf its barman.conf names; a server's section sets
    pre_recovery_script / post_recovery_script (run by `barman recover`) and path_prefix
    (where `barman verify-backup` finds pg_verifybackup): whoever can write them chooses
    what the drill runs."""
    etc = tmp_path / "etc"
    servers = etc / "barman.d"
    servers.mkdir(parents=True)
    server = servers / "prod.conf"
    server.write_text("[prod]\nconninfo = host=127.0.0.1\nbackup_method = postgres\n")
    server.chmod(0o666 if loose == "server configuration" else 0o600)
    servers.chmod(0o777 if loose == "its directory" else 0o755)
    barman_conf = etc / "barman.conf"
    barman_conf.write_text(f"[barman]\nbarman_user = barman\nbarman_home = {tmp_path}/home\n"
                           f"configuration_files_directory = {servers}\n")
    barman_conf.chmod(0o600)
    path = tmp_path / "pgvdrill.toml"
    path.write_text(f'[provider.barman]\ntype = "barman"\nserver = "prod"\n'
                    f'config = "{barman_conf}"\nbin = "{BARMAN_BIN}"\n')
    path.chmod(0o600)

    with pytest.raises(ConfigError, match=r"barman\.d"):  # when the provider is made
        make(load_config(path).provider("barman"))


def test_a_barman_cloud_timeline_beyond_32_bits_is_refused() -> None:
    data = json.loads((Path(__file__).parent / "data" / "barman_cloud_backup_list.json")
                      .read_text())
    data["backups_list"][0]["timeline"] = 2**32
    with pytest.raises(DrillError, match="timeline"):
        barman_cloud_catalog.parse_backups(json.dumps(data))


def _cron_dump(tmp_path: Path, capsys: pytest.CaptureFixture[str], stamp: str
               ) -> tuple[int, str]:
    """`pgvdrill providers --json` of a files provider holding full_backup_<stamp>.dump."""
    backups = tmp_path / "backup"
    backups.mkdir(mode=0o700)
    dump = backups / f"full_backup_{stamp}.dump"
    dump.write_bytes(b"PGDMP")
    dump.chmod(0o600)
    path = tmp_path / "pgvdrill.toml"
    path.write_text(f'[provider.cron]\ntype = "files"\ndumps = "{backups}/full_backup_*.dump"\n')
    path.chmod(0o600)
    code, out, _ = _providers(capsys, path)
    return code, out


def test_a_dump_named_with_a_utc_offset_is_judged_by_its_real_age(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`pg_dump -Fc -f full_backup_$(date -Iseconds).dump` on a host at +14:00, 30 hours
    ago: the name says the wall clock there. Read without its offset, the dump looks 16
    hours old and passes the 24 hour logical target it misses."""
    there = timezone(timedelta(hours=14))
    taken = (datetime.now(UTC) - timedelta(hours=30)).astimezone(there)
    code, out = _cron_dump(tmp_path, capsys, taken.replace(microsecond=0).isoformat())

    (cron,) = json.loads(out)["providers"]
    newest_dump = cron["newest"]["logical"]
    assert newest_dump["status"] != "pass", newest_dump
    assert newest_dump["age_seconds"] is None or newest_dump["age_seconds"] > 29 * 3600
    assert code != 0


@pytest.mark.parametrize("stamp", ["2025-11-01", "20251101_0200"])
def test_a_dump_named_with_an_old_date_is_not_aged_by_its_mtime(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], stamp: str) -> None:
    """`full_backup_$(date +%F).dump` from last year, copied back with `cp` (a new mtime):
    its name says how old it is; its mtime says now."""
    code, out = _cron_dump(tmp_path, capsys, stamp)

    (cron,) = json.loads(out)["providers"]
    assert cron["newest"]["logical"]["status"] != "pass", cron["newest"]
    assert code != 0


def _base_backup(tmp_path: Path, manifest: str) -> Path:
    """A config with one files provider whose one base backup has `manifest` as its
    backup_manifest (what a damaged or hostile backup directory holds)."""
    root = tmp_path / "backup"
    backup = root / "physical_backup_20261207_220000"
    backup.mkdir(parents=True)
    root.chmod(0o700)
    (backup / "PG_VERSION").write_text("18\n")
    (backup / "backup_manifest").write_text(manifest)
    path = tmp_path / "pgvdrill.toml"
    path.write_text(f'[provider.cron]\ntype = "files"\n'
                    f'base_backups = "{root}/physical_backup_*"\n')
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("manifest", [json.dumps({"WAL-Ranges": []}), DEEP],
                         ids=["no WAL range", "nested too deep"])
def test_providers_on_a_damaged_backup_manifest_say_so_without_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], manifest: str) -> None:
    code, out, err = _providers(capsys, _base_backup(tmp_path, manifest))
    assert "backup_manifest" in out + err, (code, out, err)


def test_a_backup_manifest_lsn_that_is_no_lsn_is_not_listed_as_one(tmp_path: Path) -> None:
    config_path = _base_backup(tmp_path, json.dumps(
        {"WAL-Ranges": [{"Timeline": 1, "Start-LSN": "zz", "End-LSN": "0/1"}]}))
    (backup,) = make(load_config(config_path).provider("cron")).backups()
    try:
        point = backup_point(backup, tmp_path / "backup" / backup.id)
    except DrillError:
        return  # refused, naming the manifest: fine
    assert backup.start_lsn is None, (backup, point)


def test_a_barman_restore_reaches_no_other_server_barman_manages() -> None:
    """A central Barman host backs up many productions; the drill of one must not connect to
    the others. `barman diagnose` (how restore() learns barman_user) runs each server's
    ssh_command and connects to each conninfo. Here another server's ssh_command leaves a
    mark instead of opening an SSH session to its production host."""
    tool_or_skip((BARMAN_BIN / "barman").is_file(), "Barman")
    ensure_os_user(BARMAN_USER)
    root = Path(tempfile.mkdtemp(prefix="attack-barman-", dir=default_workdir()))
    try:
        root.chmod(0o755)
        home, servers = root / "home", root / "barman.d"
        home.mkdir()
        servers.mkdir()
        shutil.chown(home, BARMAN_USER, BARMAN_USER)
        mark = home / "ssh-into-another-production"
        (root / "barman.conf").write_text(
            f"[barman]\nbarman_user = {BARMAN_USER}\nbarman_home = {home}\n"
            f"configuration_files_directory = {servers}\nlog_file = {home}/barman.log\n")
        closed = "host=127.0.0.1 port=1 user=x dbname=postgres connect_timeout=2"
        (servers / "prod.conf").write_text(
            f"[prod]\nconninfo = {closed}\nbackup_method = postgres\n"
            "streaming_archiver = on\nslot_name = barman\n")
        (servers / "other.conf").write_text(
            f"[other]\nssh_command = touch {mark};\nconninfo = {closed}\n"
            "backup_method = rsync\narchiver = on\n")
        tool = make(config.Provider(name="barman", type="barman", bin=BARMAN_BIN,
                                    config=root / "barman.conf", server="prod"))
        into = root / "data"
        into.mkdir(mode=0o700)
        with pytest.raises(DrillError):  # Barman has no such backup
            tool.restore(ProviderBackup("20261207T000000", "physical"), into)
        assert not mark.exists(), "the drill of prod ran other's ssh_command"
    finally:
        shutil.rmtree(root, ignore_errors=True)
