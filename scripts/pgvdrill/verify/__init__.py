"""Verification of a restored database against its source.

`snapshot()` reads one database (schema facts, exact row counts, content fingerprints,
vector-index recall baselines); `verify()` compares a target against a source or a
snapshot and returns a `Verification` of named checks whose problems name the table or
index that differs and how; `same_ann_answers()` checks that vector indexes answer
identically (physical restores).
"""

from pgvdrill.verify.compare import same_ann_answers, verify
from pgvdrill.verify.outcome import Check, Verification
from pgvdrill.verify.snapshot import Snapshot, snapshot

__all__ = ["Check", "Snapshot", "Verification", "same_ann_answers", "snapshot", "verify"]
