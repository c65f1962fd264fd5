"""Per-domain logit offsets of the training: chosen on out-of-fold logits, centred, and never worse than none."""

from __future__ import annotations

import pytest

# Training needs the `train` extra (numpy, scikit-learn); `make test` installs only `dev`.
pytest.importorskip("numpy")
pytest.importorskip("sklearn")

import numpy as np

from llm_router.ml.train import domain_offsets, weighted_macro_f1


def test_offsets_fix_a_biased_decision_and_sum_to_zero() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 600)
    logits = rng.normal(0.0, 1.0, (600, 6))
    logits[np.arange(600), y] += 2.0
    logits[:, 5] += 1.5  # every prompt leans towards the last label
    weight = np.ones(600)
    before = weighted_macro_f1(y, logits.argmax(axis=1), weight)
    offsets = domain_offsets(logits, y, weight)
    after = weighted_macro_f1(y, (logits + offsets).argmax(axis=1), weight)
    assert after > before
    assert offsets[5] < offsets[:5].min()
    assert abs(offsets.sum()) < 1e-9


def test_no_offsets_when_nothing_improves() -> None:
    y = np.array([0, 1, 2, 3, 4, 5] * 10)
    logits = np.eye(6)[y] * 5.0
    assert np.allclose(domain_offsets(logits, y, np.ones(len(y))), 0.0)
