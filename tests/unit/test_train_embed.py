"""Distilled term embeddings: encoded once per term and cached, reduced, and folded into per-term weights that the
pure-Python classifier applies exactly as training fitted them. A small fake encoder stands in for the sentence
encoder (no torch here)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

# Training needs the `train` extra (numpy, scipy, scikit-learn); `make test` installs only `dev`.
pytest.importorskip("numpy")
pytest.importorskip("sklearn")

import numpy as np
from scipy import sparse
from sklearn.linear_model import Ridge

from llm_router.ml.embed import Features, encode_terms, fold, reduce, scaled, term_text, widen
from llm_router.ml.train import Head, Layer1, Vectorizer, export, fit_head
from llm_router.routing.classifier import Classifier

# Words the fake encoder knows to mean the same (its "world knowledge"), and others.
MEANINGS = {"car": 0, "automobile": 0, "vehicle": 0, "soup": 1, "broth": 1, "stew": 1}


class FakeEncoder:
    """One-hot meaning plus a little spelling noise; records what it was asked to encode."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            row = np.zeros(5)
            if text in MEANINGS:
                row[MEANINGS[text]] = 1.0
            row[2 + len(text) % 3] = 0.1
            rows.append(row)
        return np.array(rows)


def test_terms_are_encoded_once_and_read_back_from_the_cache(tmp_path: Path) -> None:
    vocab = ["car", "~automo", "car soup", "soup", "car"]
    encoder = FakeEncoder()
    first = encode_terms(vocab, encoder, "fake", tmp_path)
    assert encoder.calls == [["automo", "car", "soup"]]
    assert term_text("car soup") is None and term_text("car soup", bigrams=True) == "car soup"
    assert np.all(first[2] == 0)  # bigrams carry no embedding by default
    assert np.array_equal(first[0], first[4])
    again = encode_terms(vocab, encoder, "fake", tmp_path)
    assert len(encoder.calls) == 1  # the cache answered
    assert np.array_equal(first, again)
    encode_terms([*vocab, "stew"], encoder, "fake", tmp_path)
    assert len(encoder.calls) == 2  # another vocabulary, another key


def test_reduce_keeps_unembedded_rows_at_zero_and_fixes_signs() -> None:
    rng = np.random.default_rng(0)
    table = rng.normal(size=(40, 8))
    table[[3, 7]] = 0.0
    reduced = reduce(table, 3)
    assert reduced.shape == (40, 3)
    assert np.all(reduced[[3, 7]] == 0)
    assert np.allclose(reduce(-table, 3)[[0, 1, 2]], -reduced[[0, 1, 2]])  # same components, signs fixed


def test_folded_coefficients_score_exactly_like_the_widened_model() -> None:
    rng = np.random.default_rng(1)
    x = sparse.random(30, 12, density=0.3, random_state=2, format="csr")
    table = rng.normal(size=(12, 4))
    coef = rng.normal(size=(16, 3))
    wide = widen(x, table)
    assert wide.shape == (30, 16)
    assert np.allclose(wide @ coef, x @ fold(coef, table))
    assert np.allclose(wide @ coef[:, 0], x @ fold(coef[:, 0], table))
    assert fold(coef, None) is coef and widen(x, None) is x
    assert np.isclose(np.sqrt(np.mean(np.asarray(x @ scaled(table, x, 2.0)) ** 2)), 2.0)


def test_a_word_never_seen_with_a_label_inherits_the_label_of_words_meaning_the_same() -> None:
    fitted = ["car for sale", "a car to rent", "hot soup today", "soup of the day"] * 3
    others = ["automobile for sale", "stew of the day"] * 2  # in the vocabulary, never in a fitted prompt
    y = np.array([1.0, 1.0, 0.0, 0.0] * 3)
    vec = Vectorizer(fitted + others, min_df=1, max_terms=1000)
    encoder = FakeEncoder()
    table = scaled(encode_terms(vec.vocab, encoder, "fake", None), vec.transform(fitted), 1.0)

    def fit(feats: Features) -> np.ndarray:
        return feats.fold(Ridge(alpha=0.1).fit(feats.transform(fitted), y).coef_)

    bag = fit(Features(vec.transform, len(vec.vocab)))
    embedded = fit(Features(vec.transform, len(vec.vocab), table))
    automobile, stew = vec.index["automobile"], vec.index["stew"]
    assert bag[automobile] == 0 and bag[stew] == 0
    assert embedded[automobile] > 0 > embedded[stew]


def test_the_exported_classifier_reproduces_the_folded_layer() -> None:
    texts = ["car for sale", "a car to rent", "hot soup today", "soup of the day", "automobile ads", "stew"] * 4
    vec = Vectorizer(texts, min_df=1, max_terms=1000, prefix=4)
    feats = Features(
        vec.transform,
        len(vec.vocab),
        scaled(encode_terms(vec.vocab, FakeEncoder(), "fake", None), vec.transform(texts), 1.0),
    )
    y = np.array([1.0, 1.0, 0.0, 0.0, 1.0, 0.0] * 4)
    reg = Ridge(alpha=0.1).fit(feats.transform(texts), y)
    outputs = ["domain:" + d for d in ("code", "math", "medical", "legal", "science", "general")] + ["prior:gain"]
    coef = np.zeros((len(vec.vocab), len(outputs)))
    coef[:, -1] = feats.fold(reg.coef_)
    layer1 = Layer1(outputs, coef, np.r_[np.zeros(6), reg.intercept_])
    names = ["prior:gain"]
    values = layer1.apply(vec.transform(texts))
    head: Head = fit_head(names, values[:, [-1]], [0, 1, 2, 3] * 6, 1.0)
    clf = Classifier(export(vec, layer1, head, {}))
    expected = reg.predict(feats.transform(texts))
    scored = np.array([clf.linear_outputs(t)["prior:gain"] for t in texts])
    assert np.allclose(scored, expected, atol=1e-3)


def test_models_of_their_own_on_the_pooled_embeddings_fold_to_term_weights() -> None:
    texts = ["car for sale", "hot soup today", "automobile ads", "stew"]
    vec = Vectorizer(texts, min_df=1, max_terms=100)
    table = encode_terms(vec.vocab, FakeEncoder(), "fake", None)
    feats = Features(vec.transform, len(vec.vocab), table, joint=False)
    assert feats.transform(texts).shape == (4, len(vec.vocab))  # the sparse layer's own models see the terms only
    d = np.arange(table.shape[1], dtype=float)
    assert np.allclose(feats.pooled(texts) @ d, vec.transform(texts) @ (table @ d))
