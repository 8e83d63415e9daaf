"""Documented targets, user overrides and fail-closed verdicts (pure logic, no server)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import pytest

from pgvdrill.errors import ConfigError
from pgvdrill.policy import targets as targets_module
from pgvdrill.policy.targets import (
    GIB,
    MIB,
    Production,
    Targets,
    load_targets,
    parse_size,
    targets_from_mapping,
)
from pgvdrill.policy.verdicts import (
    backup_age_verdict,
    evaluate,
    projected_seconds,
    rpo_verdict,
    rto_verdict,
    throughput_verdict,
)

DEFAULT_TOML = Path(targets_module.__file__).with_name("targets_default.toml")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_targets(path)
    message = str(caught.value)
    assert str(path) in message
    return message


# --- defaults -------------------------------------------------------------------------


def test_defaults_are_the_runbook_figures() -> None:
    t = load_targets(None)
    assert (t.rto.logical, t.rto.physical, t.rto.pitr) == (1800, 900, 600)
    assert (t.rpo.wal_archiving, t.rpo.daily_backup) == (60, 86400)
    assert (t.backup_age.logical, t.backup_age.physical) == (24 * 3600, 7 * 24 * 3600)
    assert t.production.size is None


def test_default_throughput_floors_are_the_slowest_rate_of_each_size_table() -> None:
    t = load_targets(None).throughput
    # (size in GB, upper time bound in seconds) rows of the runbook's tables
    logical_backup = [(1, 5 * 60), (10, 50 * 60), (100, 8 * 3600)]
    physical_backup = [(1, 2 * 60), (10, 20 * 60), (100, 3 * 3600)]
    logical_restore = [(1, 8 * 60), (10, 80 * 60), (100, 13 * 3600)]
    for rows, floor in [
        (logical_backup, t.logical_backup),
        (physical_backup, t.physical_backup),
        (logical_restore, t.logical_restore),
    ]:
        assert floor == pytest.approx(min(gb * GIB / s for gb, s in rows))
    assert t.logical_backup / MIB == pytest.approx(3.41, abs=0.01)
    assert t.physical_backup / MIB == pytest.approx(8.53, abs=0.01)
    assert t.logical_restore / MIB == pytest.approx(2.13, abs=0.01)
    # 1000 WAL segments of 16 MiB in 15 min
    assert t.wal_replay == pytest.approx(1000 * 16 * MIB / 900)


def test_reference_toml_matches_the_built_in_defaults() -> None:
    loaded = load_targets(DEFAULT_TOML)
    assert replace(loaded, source="x") == replace(Targets(), source="x")


def test_targets_are_frozen() -> None:
    t = Targets()
    with pytest.raises(FrozenInstanceError):
        t.rto.logical = 1  # type: ignore[misc]


# --- overrides ------------------------------------------------------------------------


def test_overrides_replace_only_the_keys_given(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[rto]\nlogical = 3600\n[rpo]\nwal_archiving = 30.5\n"
        '[throughput]\nlogical_restore = "4MB/s"\nwal_replay = 1000\n'
        '[backup_age]\nphysical = 86400\n[production]\nsize = "50GB"\n',
    )
    t = load_targets(path)
    assert t.rto.logical == 3600 and t.rto.physical == 900 and t.rto.pitr == 600
    assert t.rpo.wal_archiving == 30.5 and t.rpo.daily_backup == 86400
    assert t.throughput.logical_restore == 4 * MIB and t.throughput.wal_replay == 1000
    assert t.throughput.logical_backup == Targets().throughput.logical_backup
    assert t.backup_age.physical == 86400 and t.backup_age.logical == 86400
    assert t.production.size == 50 * GIB
    assert t.source == str(path)


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert replace(load_targets(write(tmp_path, "")), source="") == replace(Targets(), source="")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("512B", 512),
        ("8kB", 8192),
        ("1.5 MB", 1536 * 1024),
        ("50GB", 50 * GIB),
        ("2GiB", 2 * GIB),
        ("1TB", 1024 * GIB),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_production_size_as_integer_bytes(tmp_path: Path) -> None:
    assert load_targets(write(tmp_path, "[production]\nsize = 1000\n")).production.size == 1000


# --- bad input: each names the file, the key and what is allowed ----------------------


def test_unknown_section(tmp_path: Path) -> None:
    message = config_error(tmp_path, "[rtos]\nlogical = 1\n")
    assert "unknown section [rtos]" in message
    assert "[rto], [rpo], [throughput], [backup_age], [production]" in message


def test_unknown_key(tmp_path: Path) -> None:
    message = config_error(tmp_path, "[rto]\nphysicl = 1\n")
    assert "unknown key [rto] physicl" in message
    assert "allowed keys in [rto]: logical, physical, pitr" in message


def test_top_level_value_instead_of_a_table(tmp_path: Path) -> None:
    message = config_error(tmp_path, "rto = 5\n")
    assert "rto must be a table" in message


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('[rto]\nlogical = "30 min"\n', "wrong type (str)"),
        ("[rto]\nlogical = true\n", "wrong type (bool)"),
        ("[rpo]\nwal_archiving = [60]\n", "wrong type (list)"),
        ("[backup_age]\nlogical = -1\n", "negative"),
        ("[rto]\npitr = -0.5\n", "negative"),
        ("[rto]\npitr = nan\n", "not a finite number"),
        ("[throughput]\nwal_replay = inf\n", "not a finite number"),
        ("[throughput]\nwal_replay = -3\n", "negative"),
    ],
)
def test_bad_values(tmp_path: Path, text: str, why: str) -> None:
    message = config_error(tmp_path, text)
    section, key = text.split("\n")[0].strip("[]"), text.split("\n")[1].split(" ")[0]
    assert f"[{section}] {key} = " in message
    assert why in message
    assert "hint: use a non-negative number of" in message


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ('"50XB"', "unknown unit 'XB'"),
        ('"50 gigs"', "unknown unit 'gigs'"),
        ('"fifty GB"', "is not a number followed by a unit"),
        ('"-5GB"', "is not a number followed by a unit"),
        ("0", "zero"),
        ("-1", "negative"),
        ("1.5", "not a whole number of bytes"),
        ("true", "wrong type (bool)"),
    ],
)
def test_bad_production_size(tmp_path: Path, value: str, why: str) -> None:
    message = config_error(tmp_path, f"[production]\nsize = {value}\n")
    assert "[production] size = " in message
    assert why in message
    assert 'a positive number of bytes, or a string such as "50GB"' in message
    assert "kB, KB, KiB, MB, MiB, GB, GiB, TB, TiB" in message


def test_bad_throughput_unit(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[throughput]\nlogical_backup = "3 furlongs/s"\n')
    assert "[throughput] logical_backup" in message and "unknown unit 'furlongs'" in message
    assert "bytes per second" in message


def test_invalid_toml(tmp_path: Path) -> None:
    message = config_error(tmp_path, "[rto\nlogical = 1\n")
    assert "not valid TOML" in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_targets(path)
    assert str(path) in str(caught.value) and "cannot read targets file" in str(caught.value)


# --- verdicts -------------------------------------------------------------------------

T = Targets()


@pytest.mark.parametrize("evidence", [None, -1.0, float("nan"), float("inf"), True, "12"])
def test_missing_or_unusable_evidence_is_unknown_never_pass(evidence: object) -> None:
    for verdict in [
        rto_verdict(T, "logical", evidence),  # type: ignore[arg-type]
        rpo_verdict(T, "wal_archiving", evidence),  # type: ignore[arg-type]
        backup_age_verdict(T, "physical", evidence),  # type: ignore[arg-type]
        throughput_verdict(T, "logical_backup", evidence, 10.0),  # type: ignore[arg-type]
        throughput_verdict(T, "logical_backup", GIB, evidence),  # type: ignore[arg-type]
    ]:
        assert verdict.status == "unknown"
        assert verdict.measured is None
        assert ("no evidence" if evidence is None else "unusable evidence") in verdict.detail


def test_zero_second_throughput_is_unknown() -> None:
    verdict = throughput_verdict(T, "logical_restore", GIB, 0)
    assert verdict.status == "unknown" and "too fast to time" in verdict.detail


def test_rto_boundaries() -> None:
    assert rto_verdict(T, "logical", 1800).status == "pass"
    assert rto_verdict(T, "logical", 1800.001).status == "fail"
    assert rto_verdict(T, "physical", 900).status == "pass"
    assert rto_verdict(T, "physical", 901).status == "fail"
    assert rto_verdict(T, "pitr", 0).status == "pass"
    assert rto_verdict(T, "pitr", 600.5).status == "fail"
    verdict = rto_verdict(T, "pitr", 601)
    assert (verdict.name, verdict.measured, verdict.target, verdict.unit) == (
        "rto.pitr",
        601.0,
        600,
        "s",
    )
    assert "> target 600 s (10.0 min)" in verdict.detail


def test_rpo_and_backup_age_boundaries() -> None:
    assert rpo_verdict(T, "wal_archiving", 60).status == "pass"
    assert rpo_verdict(T, "wal_archiving", 61).status == "fail"
    assert rpo_verdict(T, "daily_backup", 86400).status == "pass"
    assert rpo_verdict(T, "daily_backup", 86401).status == "fail"
    assert backup_age_verdict(T, "logical", 86400).status == "pass"
    assert backup_age_verdict(T, "logical", 86401).status == "fail"
    assert backup_age_verdict(T, "physical", 7 * 86400).status == "pass"
    assert backup_age_verdict(T, "physical", 7 * 86400 + 1).status == "fail"


def test_throughput_boundary() -> None:
    # exactly the floor: 1 GiB in 300 s for a logical backup
    assert throughput_verdict(T, "logical_backup", GIB, 300).status == "pass"
    assert throughput_verdict(T, "logical_backup", GIB, 300.01).status == "fail"
    verdict = throughput_verdict(T, "physical_backup", 100 * MIB, 10)
    assert verdict.status == "pass"
    assert verdict.measured == pytest.approx(10 * MIB)
    assert verdict.unit == "B/s" and verdict.target == T.throughput.physical_backup


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="allowed: logical, physical, pitr"):
        rto_verdict(T, "incremental", 1)
    with pytest.raises(ValueError, match="allowed: logical_backup"):
        throughput_verdict(T, "physical_restore", 1, 1)


def test_without_a_production_size_there_is_no_projection() -> None:
    verdict = throughput_verdict(T, "logical_restore", GIB, 100)
    assert verdict.projected_seconds is None
    assert "no production size declared" in verdict.detail


def test_projection_to_production_size_against_the_rto() -> None:
    t = replace(T, production=Production(size=50 * GIB))
    # 1 GiB of dump restored in 60 s -> 50 GiB in 3000 s > the 1800 s logical RTO,
    # though the measured rate passes the floor (a small dataset cannot hide this).
    verdict = throughput_verdict(t, "logical_restore", GIB, 60)
    assert verdict.status == "pass"
    assert verdict.projected_seconds == pytest.approx(3000)
    assert "at production size 50.0 GiB: 3000 s (50.0 min)" in verdict.detail
    assert "exceeds the logical RTO 1800 s" in verdict.detail
    # 1 GiB in 30 s -> 1500 s: within the RTO
    verdict = throughput_verdict(t, "logical_restore", GIB, 30)
    assert verdict.projected_seconds == pytest.approx(1500)
    assert "within the logical RTO" in verdict.detail
    # WAL replay is held against the PITR RTO: 160 MiB in 5 s = 32 MiB/s -> 1600 s
    verdict = throughput_verdict(t, "wal_replay", 160 * MIB, 5)
    assert verdict.projected_seconds == pytest.approx(50 * 1024 / 32)
    assert "exceeds the pitr RTO 600 s" in verdict.detail


def test_projection_for_a_backup_compares_with_what_the_floor_allows() -> None:
    t = replace(T, production=Production(size=10 * GIB))
    verdict = throughput_verdict(t, "logical_backup", GIB, 600)
    assert verdict.status == "fail"
    assert verdict.projected_seconds == pytest.approx(6000)
    assert "the floor allows 3000 s" in verdict.detail
    assert "RTO" not in verdict.detail


def test_projected_seconds_arithmetic() -> None:
    assert projected_seconds(50 * GIB, 10 * MIB) == pytest.approx(5120)
    assert projected_seconds(1000, 250.0) == 4.0


def test_evaluate_and_as_dict() -> None:
    assert evaluate(T, None) == []
    verdicts = evaluate(
        T,
        {
            "restore": {"kind": "physical", "seconds": 120.0},
            "rpo": {"kind": "wal_archiving", "seconds": None},
            "throughput": [{"kind": "logical_backup", "bytes": GIB, "seconds": 600}],
            "backup_age": {"kind": "logical", "seconds": 90000},
        },
    )
    assert [(v.name, v.status) for v in verdicts] == [
        ("rto.physical", "pass"),
        ("rpo.wal_archiving", "unknown"),
        ("throughput.logical_backup", "fail"),
        ("backup_age.logical", "fail"),
    ]
    as_dict = verdicts[0].as_dict()
    assert set(as_dict) == {
        "name",
        "status",
        "measured",
        "target",
        "unit",
        "detail",
        "projected_seconds",
    }
    assert as_dict["status"] == "pass" and as_dict["measured"] == 120.0
    assert Targets().as_dict()["rto"] == {"logical": 1800, "physical": 900, "pitr": 600}


def test_throughput_on_too_little_data_is_unknown_not_pass() -> None:
    verdict = throughput_verdict(T, "logical_backup", 2 * MIB, 0.01)  # 200 MiB/s

    assert verdict.status == "unknown"
    assert "too little data" in verdict.detail and "64 MiB" in verdict.detail
    lowered = targets_from_mapping({"evidence": {"min_throughput_bytes": 0}}, "test")
    assert throughput_verdict(lowered, "logical_backup", 2 * MIB, 0.01).status == "pass"
