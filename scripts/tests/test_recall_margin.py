"""How far recall may drop after an index rebuild before verification calls it a loss."""

from __future__ import annotations

import pytest

from pgvdrill.verify.compare import noise_margin


def test_high_recall_keeps_the_fixed_tolerance() -> None:
    assert noise_margin(0.99, 200, 0.05) == 0.05


@pytest.mark.parametrize(("recall", "at_least"), [(0.19, 0.11), (0.5, 0.14)])
def test_noisy_low_recall_widens_the_margin(recall: float, at_least: float) -> None:
    """At 200 neighbours a rebuilt graph's recall of 0.12 against 0.19 is noise."""
    assert noise_margin(recall, 200, 0.05) >= at_least


def test_a_collapse_stays_far_outside_the_margin() -> None:
    """The IVFFlat-before-data collapse (about 0.97 -> 0.55) is still caught."""
    assert 0.97 - noise_margin(0.97, 200, 0.05) > 0.55 + 0.3


def test_more_samples_narrow_the_margin() -> None:
    assert noise_margin(0.5, 2000, 0.05) < noise_margin(0.5, 200, 0.05)
