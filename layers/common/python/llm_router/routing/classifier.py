"""Learned routing scores in pure Python: the request's domain and the probability that the strong model is needed.

Inference is a sparse linear layer over word unigrams, bigrams and (when the weights say so) word prefixes (TF-IDF
weighting, L2-normalised) followed by a small dense layer; `llm-router train` fits both offline with scikit-learn
and writes them to one JSON weights file. Nothing here imports numpy or scikit-learn: the file is read once per
process and a prompt costs about a hundred microseconds, so the Lambda pays for ML only when a condition or
strategy asks for a score.
"""

from __future__ import annotations

import array
import base64
import itertools
import json
import math
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

WEIGHTS_FORMAT = "llm-router-classifier/1"
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "router-classifier.json"

# Long prompts are scored on their beginning and end (the instruction and the question usually sit there),
# which bounds the cost of a prompt whatever its size.
HEAD_CHARS = 1500
TAIL_CHARS = 500

_DIGITS = str.maketrans("123456789", "000000000")
_TOKEN = re.compile(r"[^\W\d_]+|0+|_|[^\w\s]")
_CHOICES = re.compile(r"(?m)^\(?A[.)].*\n\(?B[.)]")
_SENTENCE_END = re.compile(r"[.?!](?:\s|$)")
_DECIMAL = re.compile(r"\d\.\d")
_FRACTION = re.compile(r"\d/\d")
_FIELD_BITS = 32
_FIELD_MASK = (1 << _FIELD_BITS) - 1
_OFFSET = 1 << 15


def clip_text(text: str) -> str:
    """The part of a prompt the classifier reads."""
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]


def tokenize(text: str) -> list[str]:
    """Lower-cased words, runs of digits (all digits read as 0) and single punctuation marks."""
    return _TOKEN.findall(clip_text(text).lower().translate(_DIGITS))


def terms(text: str, prefix: int = 0) -> set[str]:
    """The distinct unigrams and bigrams of a prompt: the sparse features, shared by training and inference. With
    `prefix`, each longer word also yields its first `prefix` letters as `~` + prefix (a crude stem, so that
    `anatomy` and `anatomical` share one at 6); no unigram or bigram can look like one."""
    tokens = tokenize(text)
    found = set(tokens)
    found.update(map(" ".join, itertools.pairwise(tokens)))
    if prefix:
        found.update(["~" + t[:prefix] for t in tokens if len(t) > prefix])
    return found


def dense_features(text: str) -> dict[str, float]:
    """Shape features the difficulty head sees besides the linear outputs: length, digits, lines, whether the
    prompt offers lettered choices (the other outputs mean different things for multiple-choice questions), and for
    open questions such as word problems the number of sentences and whether it involves percentages, decimals,
    fractions or money."""
    clipped = clip_text(text)
    lowered = clipped.lower()
    digits = sum(clipped.count(d) for d in "0123456789")
    choices = 1.0 if _CHOICES.search(clipped) else 0.0
    return {
        "log_chars": math.log1p(len(text)),
        "log_digits": math.log1p(digits),
        "log_lines": math.log1p(text.count("\n")),
        "choices": choices,
        "open": 1.0 - choices,
        "log_sentences": math.log1p(len(_SENTENCE_END.findall(clipped))),
        "percent": 1.0 if "%" in clipped or "percent" in lowered else 0.0,
        "decimal": 1.0 if _DECIMAL.search(clipped) else 0.0,
        "fraction": 1.0 if _FRACTION.search(clipped) else 0.0,
        "money": 1.0 if "$" in clipped else 0.0,
    }


def head_value(values: dict[str, float], name: str) -> float:
    """An input of the difficulty head: a named value, or `a*b` for the product of two."""
    left, star, right = name.partition("*")
    return values[left] * values[right] if star else values[name]


def _softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(z - top) for z in logits]
    total = sum(exps)
    return [e / total for e in exps]


class Classifier:
    """Scores prompts with the weights of one file; the last prompt's scores are kept, since a request usually
    asks for its domain and its difficulty in turn."""

    def __init__(self, weights: dict[str, Any]) -> None:
        if weights.get("format") != WEIGHTS_FORMAT:
            raise ValueError(f"unsupported classifier weights format {weights.get('format')!r}")
        self.metadata: dict[str, Any] = weights.get("metadata", {})
        linear = weights["linear"]
        self.outputs: list[str] = list(linear["outputs"])
        self._scales: list[float] = [float(s) for s in linear["scales"]]
        self._bias: list[float] = [float(b) for b in linear["bias"]]
        self._norm_scale = float(linear["norm_scale"])
        self._prefix = int(linear.get("word_prefix", 0))
        vocab = linear["vocab"].split("\n")
        width = len(self.outputs) + 1  # the last field holds idf^2, for the L2 norm
        packed = array.array("H", base64.b64decode(linear["weights"]))
        if sys.byteorder != "little":
            packed.byteswap()
        if len(packed) != len(vocab) * width:
            raise ValueError("classifier weights do not match the vocabulary")
        # Each term's quantised weights become one integer with a 32-bit field per output, so scoring a prompt
        # is one big-integer addition per term instead of one float addition per term and output.
        wide = array.array("I", packed)
        if sys.byteorder != "little":
            wide.byteswap()
        raw = wide.tobytes()
        step = 4 * width
        self._width = width
        self._rows: dict[str, int] = {
            term: int.from_bytes(raw[i * step : (i + 1) * step], "little") for i, term in enumerate(vocab)
        }
        self._index = {name: i for i, name in enumerate(self.outputs)}
        domain = weights["domain"]
        self.domains: list[str] = list(domain["labels"])
        self._domain_outputs = [self._index[name] for name in domain["outputs"]]
        head = weights["difficulty"]
        self._inputs: list[str] = list(head["inputs"])
        self._mean: list[float] = [float(v) for v in head["mean"]]
        self._std: list[float] = [float(v) for v in head["std"]]
        self._coef: list[list[float]] = [[float(v) for v in row] for row in head["coef"]]
        self._intercept: list[float] = [float(v) for v in head["intercept"]]
        self._classes: list[str] = list(head["classes"])
        self._last: tuple[str, dict[str, float]] | None = None

    def linear_outputs(self, text: str) -> dict[str, float]:
        """The sparse layer's outputs for a prompt (domain logits and the auxiliary difficulty signals)."""
        last = self._last
        if last is not None and last[0] == text:
            return last[1]
        rows = self._rows
        found = [rows[t] for t in terms(text, self._prefix) if t in rows]
        total = sum(found)
        count = len(found)
        width = self._width
        fields = [((total >> (_FIELD_BITS * k)) & _FIELD_MASK) - count * _OFFSET for k in range(width)]
        norm = math.sqrt(max(fields[-1], 0) * self._norm_scale) or 1.0
        out = {name: fields[k] * self._scales[k] / norm + self._bias[k] for k, name in enumerate(self.outputs)}
        out.update(dense_features(text))
        self._last = (text, out)
        return out

    def domain_scores(self, text: str) -> dict[str, float]:
        """Probability per domain label (they sum to 1)."""
        out = self.linear_outputs(text)
        probs = _softmax([out[self.outputs[k]] for k in self._domain_outputs])
        return dict(zip(self.domains, probs, strict=True))

    def outcome_probabilities(self, text: str) -> dict[str, float]:
        """The head's probabilities of the joint outcomes: w0s1 = weak wrong and strong right, and so on."""
        out = self.linear_outputs(text)
        x = [(head_value(out, name) - m) / s for name, m, s in zip(self._inputs, self._mean, self._std, strict=True)]
        logits = [
            b + sum(c * v for c, v in zip(row, x, strict=True))
            for row, b in zip(self._coef, self._intercept, strict=True)
        ]
        return dict(zip(self._classes, _softmax(logits), strict=True))

    def difficulty(self, text: str) -> float:
        """Probability that the strong model is needed, in [0, 1]: P(only the strong model is right) plus half of
        P(both alike), i.e. the strong model's win rate against the weak one.

        Ranking by it is ranking by the expected gain P(w0s1) - P(w1s0): a prompt on which both models are
        unreliable gains nothing from the strong model, and cross-validation confirms the gain ranks better.
        """
        p = self.outcome_probabilities(text)
        return (1.0 + p["w0s1"] - p["w1s0"]) / 2


def load_classifier(path: str | Path) -> Classifier:
    """A classifier from a weights file written by `llm-router train`."""
    with open(path, encoding="utf-8") as handle:
        return Classifier(json.load(handle))


@cache
def default_classifier() -> Classifier | None:
    """The classifier shipped with the library (read once per process), or None when no weights are installed."""
    if not DEFAULT_WEIGHTS.exists():
        return None
    return load_classifier(DEFAULT_WEIGHTS)
