"""What `pgvdrill verify --all` says about the archive's timelines, given the source's
current timeline (or why it is unknown): pure logic over a hand-made wal/ directory."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pgvdrill.ops.verify_repo import timeline_findings
from pgvdrill.repository import Repository

TWO = b"1\t0/5000060\tno recovery target specified\n"


def archive(tmp_path: Path, *segments: str, **histories: bytes) -> Repository:
    repo = Repository(tmp_path / "repo")
    repo.wal.mkdir(parents=True)
    for name in segments:
        (repo.wal / name).write_bytes(b"")
    for name, data in histories.items():
        (repo.wal / f"{name}.history").write_bytes(data)
    return repo


def forked(tmp_path: Path) -> Repository:
    """Timeline 2 branched off 1 in segment 5; 1 went on to segment 6."""
    return archive(tmp_path, "000000010000000000000005", "000000010000000000000006",
                   "000000020000000000000005", **{"00000002": TWO})


def test_a_branch_the_source_does_not_descend_from_is_a_problem_with_a_command(
        tmp_path: Path) -> None:
    repo = forked(tmp_path)

    found = timeline_findings(repo, 1, "its current WAL file")

    assert found.notes[0] == (f"timelines in {repo.wal}: 1 (the first; 2 WAL file(s)); 2 "
                              "(00000002.history: from 1 at 0/5000060: no recovery target "
                              "specified; 1 WAL file(s))")
    [problem] = found.problems
    assert "timeline 2 (00000002.history" in problem and \
        "is a branch the source's current timeline 1 does not descend from" in problem
    assert problem.endswith(f"mkdir -p {repo.root}/set-aside/timeline-2 && mv -n "
                            f"{repo.wal}/00000002.history {repo.wal}/000000020000000000000005 "
                            f"{repo.root}/set-aside/timeline-2/")
    assert not found.warnings
    command = problem[problem.index("mkdir -p"):]
    subprocess.run(["sh", "-c", command], check=True)  # as the operator pastes it
    assert (repo.root / "set-aside" / "timeline-2" / "00000002.history").read_bytes() == TWO
    assert not timeline_findings(repo, 1, "its current WAL file").problems


def test_a_parent_that_went_on_after_the_sources_branch_is_a_problem(tmp_path: Path) -> None:
    [problem] = timeline_findings(forked(tmp_path), 2, "its current WAL file").problems

    assert "timeline 1 went on after the source's timeline 2 branched off it" in problem
    assert ": 000000010000000000000006. restore pitr follows it only when asked " \
           "(--target-timeline 1)" in problem


def test_an_unknown_source_makes_a_fork_a_warning_and_says_why(tmp_path: Path) -> None:
    found = timeline_findings(forked(tmp_path), None, "x.toml has no [source]")

    assert not found.problems
    assert "the source's current timeline is unknown (x.toml has no [source])" in found.notes[1]
    [warning] = found.warnings
    assert "the timelines fork (1, 2)" in warning and "--target-timeline N" in warning


def test_one_lineage_is_quiet_and_a_missing_history_of_the_current_timeline_is_named(
        tmp_path: Path) -> None:
    repo = archive(tmp_path, "000000010000000000000005", "000000020000000000000005",
                   "000000030000000000000007", **{"00000002": TWO})

    [missing] = timeline_findings(repo, 3, "x").problems
    assert "the history file of the source's timeline 3 is missing" in missing
    [elsewhere] = timeline_findings(repo, 4, "x").problems
    assert "holds no file of the source's current timeline 4" in elsewhere
    (repo.wal / "00000003.history").write_bytes(TWO + b"2\t0/7000000\tpromoted\n")
    assert not timeline_findings(repo, 3, "x").problems
