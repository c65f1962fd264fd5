"""Train the routing classifiers from the shared outcome data and write the weights file the layer reads.

Two layers, mirrored in pure Python by `llm_router.routing.classifier`:
1. A sparse linear layer over the prompt's unigrams, bigrams and word prefixes (the first `word_prefix` letters of
   longer words; binary TF x IDF, L2-normalised) with outputs:
   - `domain:<label>`: logits of code, math, medical, legal, science, general (MMLU subjects, dcrouter tasks,
     MT-Bench categories mapped to these): ridge classifiers of the fine-grained group, mapped to the domains by a
     multinomial logistic regression fitted on their out-of-fold scores, folded into one linear map, plus per-domain
     offsets chosen for macro-F1 on out-of-fold domain logits;
   - `prior:<w|s|gain>`: ridge regressions onto the smoothed per-subject rates of the weak model being right, the
     strong model being right and the strong model's gain, so that a prompt inherits the record of the subject it
     reads like (the subject itself is never an input);
   - `outcome:<w0s0|w0s1|w1s0|w1s1>`: multinomial logistic regression on the joint outcome of the two models;
   - `dc:<small|gap>`: ridge regressions onto dcrouter's mean score of its small (7-9B) models and the gain of its
     large (49-70B) models over them, a second opinion on difficulty from other model families;
   - `embed:<w|s>`: ridge regressions onto the weak and the strong model being right, on the prompt's pooled term
     embeddings distilled from all-MiniLM-L6-v2 (`llm_router.ml.embed`), folded into per-term weights.
2. The difficulty head: a multinomial logistic regression over the layer-1 outputs and a few shape features
   (length, digits, lines, lettered choices; for open questions also sentences, percentages, decimals, fractions
   and money) predicting the joint outcome of the two models; difficulty is the strong model's win rate
   (1 + P(w0s1) - P(w1s0)) / 2, which ranks prompts by the expected gain.
   It is fitted on out-of-fold layer-1 outputs, so it learns how far to trust them on prompts they have not seen
   (dcrouter questions that repeat a held-out fold's prompt are left out of that fold's layer too).

Only training portions are used: RouteLLM's SHA-256-odd halves (MMLU, GSM8K, MT-Bench) and dcrouter's train file,
minus any dcrouter question that also appears in a RouteLLM held-out half. Model selection uses cross-validation
on the training portion; the held-out figures are computed once, for the record.
"""

from __future__ import annotations

import array
import base64
import hashlib
import json
import math
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression, Ridge, RidgeClassifier
from sklearn.metrics import f1_score
from sklearn.model_selection import KFold, StratifiedKFold

from llm_router.ml import metrics
from llm_router.ml.datasets import (
    DOMAINS,
    ROUTELLM_STRONG,
    ROUTELLM_WEAK,
    Example,
    overlap_key,
    read_dcrouter,
    read_routellm_gsm8k,
    read_routellm_mmlu,
    read_routellm_mt_bench,
)
from llm_router.ml.embed import MINILM, Encoder, Features, encode_terms, lazy_minilm_encoder, reduce, scaled
from llm_router.routing.classifier import WEIGHTS_FORMAT, Classifier, dense_features, terms

OUTCOMES = ("w0s0", "w0s1", "w1s0", "w1s1")
POSITIVE = OUTCOMES.index("w0s1")
NEGATIVE = OUTCOMES.index("w1s0")
PRIOR_TARGETS = ("w", "s", "gain")
DC_SMALL = (
    "qwen2.5-7b-instruct",
    "gemma-2-9b-it",
    "llama-3.1-8b-instruct",
    "mistral-7b-instruct-v0.3",
    "llama3-chatqa-1.5-8b",
    "codegemma-7b",
)
DC_LARGE = ("llama-3.3-nemotron-super-49b-v1", "llama-3.1-nemotron-51b-instruct", "llama3-chatqa-1.5-70b")
DENSE = ("log_chars", "log_digits", "log_lines", "choices")
# Shape features of open questions (word problems), seen by the head only when the prompt offers no choices.
OPEN_DENSE = ("log_sentences", "percent", "decimal", "fraction", "money")
QUANT = 32767


@dataclass(frozen=True)
class TrainConfig:
    data_dir: Path
    out: Path
    seed: int = 0
    folds: int = 5
    min_df: int = 2
    max_terms: int = 75_000
    word_prefix: int = 6
    domain_alpha: float = 0.5
    domain_calibration_c: float = 3.0
    domain_dcrouter_weight: float = 0.25
    domain_offsets: bool = True
    domain_offset_dcrouter_weight: float = 450 / 5015
    outcome_c: float = 1.0
    prior_alpha: float = 0.3
    dc_alpha: float = 1.0
    head_c: float = 1.0
    prior_shrink: float = 20.0
    # Static term embeddings distilled from the sentence encoder (0 dimensions: none), folded into the sparse layer.
    embed_dims: int = 384
    embed_scale: float = 1.0
    embed_bigrams: bool = False
    # "outputs": ridge regressions on the pooled embeddings as extra outputs the difficulty head reads; "joint": the
    # pooled embeddings fitted alongside the terms by every output's model.
    embed_mode: str = "outputs"
    embed_alpha: float = 10.0
    embed_cache: Path | None = Path("build/embeddings")
    # Stop after the cross-validated figures (model selection): no final fit, no held-out figures, no file.
    cv_only: bool = False


@dataclass
class Corpus:
    """Training and held-out examples by role."""

    routellm_train: list[Example]
    routellm_test: list[Example]
    domain_train: list[Example]
    domain_test: list[Example]
    dc_train: list[Example]
    dropped_overlaps: int
    files: dict[str, str] = field(default_factory=dict)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def load_corpus(data_dir: Path) -> Corpus:
    """Every example the training reads, split as the module docstring says."""
    routellm, dcrouter = data_dir / "routellm", data_dir / "dcrouter"
    mmlu = list(read_routellm_mmlu(routellm))
    gsm8k = list(read_routellm_gsm8k(routellm))
    mt_bench = list(read_routellm_mt_bench(routellm))
    dc = list(read_dcrouter(dcrouter))
    heldout_keys = {overlap_key(e.prompt) for e in mmlu + gsm8k + mt_bench if e.split == "test"}
    dc_train = [e for e in dc if e.split == "train" and overlap_key(e.prompt) not in heldout_keys]
    dropped = sum(1 for e in dc if e.split == "train") - len(dc_train)
    routellm_all = mmlu + gsm8k
    files = {
        str(p.relative_to(data_dir)): _digest(p)
        for p in sorted([*routellm.rglob("*.csv"), *routellm.rglob("*.jsonl"), *dcrouter.glob("*.json*")])
    }
    return Corpus(
        routellm_train=[e for e in routellm_all if e.split == "train"],
        routellm_test=[e for e in routellm_all if e.split == "test"],
        domain_train=[e for e in mmlu + gsm8k + mt_bench if e.split == "train"]
        + [e for e in dc_train if e.domain is not None],
        domain_test=[e for e in mmlu + gsm8k + mt_bench + dc if e.split == "test" and e.domain is not None],
        dc_train=dc_train,
        dropped_overlaps=dropped,
        files=files,
    )


class Vectorizer:
    """Binary TF x IDF over a fixed vocabulary, L2-normalised: exactly what the pure-Python classifier computes."""

    def __init__(self, texts: Sequence[str], min_df: int, max_terms: int, prefix: int = 0) -> None:
        self.prefix = prefix
        df: Counter[str] = Counter()
        for text in texts:
            df.update(terms(text, prefix))
        kept = [t for t, c in df.items() if c >= min_df and "\n" not in t]
        kept.sort(key=lambda t: (-df[t], t))
        self.vocab = kept[:max_terms]
        self.index = {t: i for i, t in enumerate(self.vocab)}
        n = len(texts)
        self.idf = np.array([math.log((1 + n) / (1 + df[t])) + 1 for t in self.vocab])

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        rows, cols = [], []
        for r, text in enumerate(texts):
            for c in sorted(self.index[t] for t in terms(text, self.prefix) if t in self.index):
                rows.append(r)
                cols.append(c)
        values = self.idf[cols] if cols else np.zeros(0)
        x = sparse.csr_matrix((values, (rows, cols)), shape=(len(texts), len(self.vocab)))
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sparse.csr_matrix(sparse.diags(1 / norms) @ x)


@dataclass
class Layer1:
    """Coefficients (terms x outputs) and biases of the sparse layer."""

    outputs: list[str]
    coef: np.ndarray
    bias: np.ndarray
    domain_cv_f1: float | None = None

    def apply(self, x: sparse.csr_matrix) -> np.ndarray:
        return np.asarray(x @ self.coef) + self.bias


def outcome_class(e: Example) -> int:
    w = e.outcomes[ROUTELLM_WEAK] >= 0.5
    s = e.outcomes[ROUTELLM_STRONG] >= 0.5
    return OUTCOMES.index(f"w{int(w)}s{int(s)}")


def subject_priors(examples: Sequence[Example], shrink: float) -> dict[str, dict[str, float]]:
    """Per-group rates of the weak model right, the strong model right and the strong model's gain, shrunk
    towards the overall rate by `shrink` pseudo-prompts so that small subjects do not get extreme priors."""
    values = {
        "w": [e.outcomes[ROUTELLM_WEAK] for e in examples],
        "s": [e.outcomes[ROUTELLM_STRONG] for e in examples],
    }
    values["gain"] = [s - w for w, s in zip(values["w"], values["s"], strict=True)]
    overall = {k: float(np.mean(v)) for k, v in values.items()}
    groups: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(examples):
        groups[e.group].append(i)
    return {
        g: {k: (sum(values[k][i] for i in idx) + shrink * overall[k]) / (len(idx) + shrink) for k in values}
        for g, idx in groups.items()
    }


def dc_targets(e: Example) -> tuple[float, float]:
    small = float(np.mean([e.outcomes[m] for m in DC_SMALL if m in e.outcomes]))
    large = float(np.mean([e.outcomes[m] for m in DC_LARGE if m in e.outcomes]))
    return small, large - small


def fit_domain(
    domain: Sequence[Example], x: sparse.csr_matrix, cfg: TrainConfig
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Domain logits as one linear map (terms x labels, and biases). Ridge classifiers (balanced classes) score each
    fine-grained group (MMLU subject, dcrouter task, MT-Bench category, GSM8K), and a multinomial logistic
    regression fitted on their out-of-fold scores maps the group scores to calibrated domain logits; both are
    linear, so they fold into one map. dcrouter's training questions weigh `domain_dcrouter_weight` each.
    Chosen by cross-validation on the training portions over a multinomial logistic regression on the domains.
    Also returns the weighted macro-F1 of the out-of-fold domain logits before the offsets (cross-validation's
    figure for model selection), when the offsets are on."""
    y = np.array([DOMAINS.index(e.domain or "general") for e in domain])
    names = sorted({f"{e.source}/{e.group}" for e in domain})
    groups = np.array([names.index(f"{e.source}/{e.group}") for e in domain])
    weight = np.array([cfg.domain_dcrouter_weight if e.source == "dcrouter" else 1.0 for e in domain])

    def ridge(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        model = RidgeClassifier(alpha=cfg.domain_alpha, class_weight="balanced")
        model.fit(x[rows], groups[rows], sample_weight=weight[rows])
        coef, bias = np.zeros((x.shape[1], len(names))), np.zeros(len(names))
        coef[:, model.classes_] = model.coef_.T
        bias[model.classes_] = model.intercept_
        return coef, bias

    def calibrate(rows: np.ndarray) -> LogisticRegression:
        model = LogisticRegression(C=cfg.domain_calibration_c, max_iter=3000).fit(oof[rows], y[rows])
        assert list(model.classes_) == list(range(len(DOMAINS)))
        return model

    splits = list(StratifiedKFold(cfg.folds, shuffle=True, random_state=cfg.seed).split(x, y))
    oof = np.zeros((len(y), len(names)))
    for fit_idx, held_idx in splits:
        coef, bias = ridge(fit_idx)
        oof[held_idx] = np.asarray(x[held_idx] @ coef) + bias
    calibration = calibrate(np.arange(len(y)))
    coef, bias = ridge(np.arange(len(y)))
    offsets = np.zeros(len(DOMAINS))
    cv_f1: float | None = None
    if cfg.domain_offsets:
        # Out-of-fold domain logits: the group scores are out of fold already, and the calibration of each fold is
        # fitted on the other folds' scores.
        logits = np.zeros((len(y), len(DOMAINS)))
        for fit_idx, held_idx in splits:
            logits[held_idx] = calibrate(fit_idx).decision_function(oof[held_idx])
        score_weight = np.array([cfg.domain_offset_dcrouter_weight if e.source == "dcrouter" else 1.0 for e in domain])
        cv_f1 = weighted_macro_f1(y, logits.argmax(axis=1), score_weight)
        offsets = domain_offsets(logits, y, score_weight)
    return coef @ calibration.coef_.T, bias @ calibration.coef_.T + calibration.intercept_ + offsets, cv_f1


def weighted_macro_f1(y: np.ndarray, pred: np.ndarray, weight: np.ndarray) -> float:
    return float(f1_score(y, pred, labels=range(len(DOMAINS)), average="macro", sample_weight=weight, zero_division=0))


def domain_offsets(
    logits: np.ndarray,
    y: np.ndarray,
    weight: np.ndarray,
    grid: Sequence[float] = tuple(np.round(np.arange(-1.0, 1.0001, 0.05), 2)),
    rounds: int = 5,
) -> np.ndarray:
    """Per-domain offsets added to the logits, chosen by coordinate ascent over `grid` to maximise the weighted
    macro-F1 of out-of-fold logits (one label at a time, a change kept only if it strictly improves the score),
    centred to sum to zero (which leaves every decision unchanged)."""
    offsets = np.zeros(logits.shape[1])
    best = weighted_macro_f1(y, logits.argmax(axis=1), weight)
    for _ in range(rounds):
        improved = False
        for k in range(logits.shape[1]):
            for value in grid:
                trial = offsets.copy()
                trial[k] = value
                score = weighted_macro_f1(y, (logits + trial).argmax(axis=1), weight)
                if score > best + 1e-9:
                    best, offsets, improved = score, trial, True
        if not improved:
            break
    return offsets - offsets.mean()


def fit_layer1(
    feats: Features,
    cfg: TrainConfig,
    routellm: Sequence[Example],
    domain: Sequence[Example],
    dc: Sequence[Example],
    with_domain: bool = True,
) -> Layer1:
    """Fit every sparse-layer output on the given examples (the domain outputs left at zero without
    `with_domain`: the difficulty head does not read them). Each model is fitted on the features of `feats` and its
    coefficients folded back to one weight per term."""
    outputs: list[str] = []
    coefs: list[np.ndarray] = []
    biases: list[float] = []

    domain_cv_f1: float | None = None
    if with_domain:
        coef, bias, domain_cv_f1 = fit_domain(domain, feats.transform([e.prompt for e in domain]), cfg)
        coef = feats.fold(coef)
    else:
        coef, bias = np.zeros((feats.terms, len(DOMAINS))), np.zeros(len(DOMAINS))
    for k, label in enumerate(DOMAINS):
        outputs.append(f"domain:{label}")
        coefs.append(coef[:, k])
        biases.append(float(bias[k]))

    xr = feats.transform([e.prompt for e in routellm])
    priors = subject_priors(routellm, cfg.prior_shrink)
    for target in PRIOR_TARGETS:
        reg = Ridge(alpha=cfg.prior_alpha).fit(xr, [priors[e.group][target] for e in routellm])
        outputs.append(f"prior:{target}")
        coefs.append(feats.fold(reg.coef_))
        biases.append(float(reg.intercept_))

    out = LogisticRegression(C=cfg.outcome_c, max_iter=3000)
    out.fit(xr, [outcome_class(e) for e in routellm])
    for k, name in enumerate(OUTCOMES):
        outputs.append(f"outcome:{name}")
        coefs.append(feats.fold(out.coef_[list(out.classes_).index(k)]))
        biases.append(float(out.intercept_[list(out.classes_).index(k)]))

    xc = feats.transform([e.prompt for e in dc])
    targets = np.array([dc_targets(e) for e in dc])
    for j, name in enumerate(("small", "gap")):
        reg = Ridge(alpha=cfg.dc_alpha).fit(xc, targets[:, j])
        outputs.append(f"dc:{name}")
        coefs.append(feats.fold(reg.coef_))
        biases.append(float(reg.intercept_))
    if feats.table is not None and not feats.joint:
        pooled = feats.pooled([e.prompt for e in routellm])
        for name, model in (("w", ROUTELLM_WEAK), ("s", ROUTELLM_STRONG)):
            reg = Ridge(alpha=cfg.embed_alpha).fit(pooled, [e.outcomes[model] for e in routellm])
            outputs.append(f"embed:{name}")
            coefs.append(feats.table @ reg.coef_)
            biases.append(float(reg.intercept_))
    return Layer1(outputs, np.column_stack(coefs), np.array(biases), domain_cv_f1)


def head_inputs(layer1: Layer1, values: np.ndarray, texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The difficulty head's inputs: every layer-1 output except the domain logits, shape features, each of them
    times the multiple-choice indicator (one head serves both kinds of prompt), and the shape features of open
    questions times the open-question indicator."""
    keep = [i for i, name in enumerate(layer1.outputs) if not name.startswith("domain:")]
    dense = [dense_features(t) for t in texts]
    shape = np.array([[d[k] for k in DENSE] for d in dense])
    names = [layer1.outputs[i] for i in keep] + list(DENSE)
    base = np.column_stack([values[:, keep], shape])
    choices = shape[:, DENSE.index("choices")][:, None]
    crossed = [n for n in names if n != "choices"]
    open_shape = np.array([[d[k] * d["open"] for k in OPEN_DENSE] for d in dense])
    x = np.column_stack([base, base[:, [names.index(n) for n in crossed]] * choices, open_shape])
    return names + [f"{n}*choices" for n in crossed] + [f"{n}*open" for n in OPEN_DENSE], x


@dataclass
class Head:
    inputs: list[str]
    mean: np.ndarray
    std: np.ndarray
    model: LogisticRegression

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Difficulty as the classifier computes it: (1 + P(w0s1) - P(w1s0)) / 2."""
        proba = self.model.predict_proba((x - self.mean) / self.std)
        classes = list(self.model.classes_)
        gain = proba[:, classes.index(POSITIVE)] - proba[:, classes.index(NEGATIVE)]
        return np.asarray((1 + gain) / 2)


def fit_head(names: list[str], x: np.ndarray, y: Sequence[int], c: float) -> Head:
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / std, y)
    return Head(names, mean, std, model)


def routellm_outcomes(examples: Sequence[Example]) -> list[metrics.Outcome]:
    return [metrics.Outcome(e.outcomes[ROUTELLM_WEAK], e.outcomes[ROUTELLM_STRONG], 0.0, 1.0) for e in examples]


def benchmark(examples: Sequence[Example], scores: Sequence[float]) -> dict[str, dict[str, float | None]]:
    """APGR and CPT per RouteLLM source (strong-call share as the cost)."""
    result: dict[str, dict[str, float | None]] = {}
    for source in sorted({e.source for e in examples}):
        idx = [i for i, e in enumerate(examples) if e.source == source]
        outs = routellm_outcomes([examples[i] for i in idx])
        curve = metrics.router_curve(outs, [scores[i] for i in idx])
        weak, strong = metrics.model_quality(outs)
        result[source] = {
            "n": len(idx),
            "apgr": _r(metrics.apgr(curve, weak, strong)),
            "cpt50": _r(metrics.cpt(curve, weak, strong, 0.5)),
            "cpt80": _r(metrics.cpt(curve, weak, strong, 0.8)),
        }
    return result


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def domain_report(true: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    labels = list(DOMAINS)
    f1 = f1_score(true, pred, labels=labels, average=None, zero_division=0)
    per_label = {}
    for label, score in zip(labels, f1, strict=True):
        idx = [i for i, t in enumerate(true) if t == label]
        accuracy = sum(pred[i] == label for i in idx) / len(idx) if idx else None
        per_label[label] = {"n": len(idx), "accuracy": _r(accuracy), "f1": _r(float(score))}
    return {
        "n": len(true),
        "accuracy": _r(sum(t == p for t, p in zip(true, pred, strict=True)) / len(true)),
        "macro_f1": _r(float(np.mean(f1))),
        "per_label": per_label,
    }


def embedding_metadata(cfg: TrainConfig, feats: Features, encoder_name: str) -> dict[str, Any] | None:
    if feats.table is None:
        return None
    return {
        "encoder": encoder_name,
        "terms_embedded": int((np.abs(feats.table).sum(axis=1) > 0).sum()),
        "dims": int(feats.table.shape[1]),
        "scale": cfg.embed_scale,
        "pooling": "binary TF x IDF, L2-normalised (the sparse layer's own weighting), folded into its weights",
    }


def _quantise(values: np.ndarray) -> tuple[np.ndarray, float]:
    top = float(np.max(np.abs(values))) or 1.0
    scale = top / QUANT
    return np.rint(values / scale).astype(np.int32), scale


def export(vec: Vectorizer, layer1: Layer1, head: Head, metadata: dict[str, Any]) -> dict[str, Any]:
    """The weights document: quantised layer 1 with IDF folded in, the head in floats, and the metadata."""
    folded = layer1.coef * vec.idf[:, None]
    columns, scales = [], []
    for k in range(folded.shape[1]):
        q, scale = _quantise(folded[:, k])
        columns.append(q)
        scales.append(scale)
    q_norm, norm_scale = _quantise(vec.idf**2)
    packed = np.column_stack([*columns, q_norm]) + (1 << 15)
    data = array.array("H", packed.astype(np.uint16).ravel().tolist())
    if sys.byteorder != "little":
        data.byteswap()
    return {
        "format": WEIGHTS_FORMAT,
        "metadata": metadata,
        "linear": {
            "outputs": layer1.outputs,
            "scales": [float(f"{s:.9g}") for s in scales],
            "bias": [round(float(b), 7) for b in layer1.bias],
            "norm_scale": float(f"{norm_scale:.9g}"),
            "word_prefix": vec.prefix,
            "vocab": "\n".join(vec.vocab),
            "weights": base64.b64encode(data.tobytes()).decode("ascii"),
        },
        "domain": {"labels": list(DOMAINS), "outputs": [f"domain:{d}" for d in DOMAINS]},
        "difficulty": {
            "inputs": head.inputs,
            "mean": [round(float(v), 7) for v in head.mean],
            "std": [round(float(v), 7) for v in head.std],
            "classes": [OUTCOMES[int(c)] for c in head.model.classes_],
            "coef": [[round(float(v), 7) for v in row] for row in head.model.coef_],
            "intercept": [round(float(v), 7) for v in head.model.intercept_],
        },
    }


def term_features(
    vec: Vectorizer, texts: Sequence[str], cfg: TrainConfig, encoder: Encoder | None, encoder_name: str, log: Any
) -> Features:
    """The vectoriser's features, widened by pooled term embeddings when `embed_dims` asks for them (`encoder`:
    all-MiniLM-L6-v2 unless given; its raw vectors are cached under `embed_cache`)."""
    if not cfg.embed_dims:
        return Features(vec.transform, len(vec.vocab))
    started = time.monotonic()
    raw = encode_terms(vec.vocab, encoder or lazy_minilm_encoder(), encoder_name, cfg.embed_cache, cfg.embed_bigrams)
    table = scaled(reduce(raw, cfg.embed_dims), vec.transform(texts), cfg.embed_scale)
    embedded = int((np.abs(table).sum(axis=1) > 0).sum())
    log(f"term embeddings: {embedded} terms, {table.shape[1]} dimensions ({time.monotonic() - started:.0f} s)")
    return Features(vec.transform, len(vec.vocab), table, joint=cfg.embed_mode == "joint")


def train(
    cfg: TrainConfig, log: Any = print, encoder: Encoder | None = None, encoder_name: str = MINILM
) -> dict[str, Any]:
    """Fit, cross-validate, measure on the held-out halves, and write the weights file; returns its metadata.
    `encoder` replaces the sentence encoder the term embeddings are distilled from (tests pass a small fake)."""
    started = time.monotonic()
    np.random.seed(cfg.seed)
    corpus = load_corpus(cfg.data_dir)
    log(
        f"training prompts: routellm {len(corpus.routellm_train)}, domain {len(corpus.domain_train)}, "
        f"dcrouter {len(corpus.dc_train)} ({corpus.dropped_overlaps} dropped: also in a RouteLLM held-out half)"
    )
    vocab_texts = sorted({e.prompt for e in corpus.routellm_train + corpus.domain_train + corpus.dc_train})
    vec = Vectorizer(vocab_texts, cfg.min_df, cfg.max_terms, cfg.word_prefix)
    log(f"vocabulary: {len(vec.vocab)} terms")
    feats = term_features(vec, vocab_texts, cfg, encoder, encoder_name, log)

    # Out-of-fold layer-1 outputs for every RouteLLM training prompt: the head learns from outputs on prompts the
    # layer did not see, as it will meet them in production.
    train_rl = corpus.routellm_train
    texts = [e.prompt for e in train_rl]
    x_rl = vec.transform(texts)
    train_keys = {e.prompt for e in train_rl}
    other_domain = [e for e in corpus.domain_train if e.prompt not in train_keys]
    folds = KFold(cfg.folds, shuffle=True, random_state=cfg.seed)
    oof: np.ndarray | None = None
    layer1: Layer1 | None = None
    for fold, (fit_idx, held_idx) in enumerate(folds.split(texts)):
        fit_rl = [train_rl[i] for i in fit_idx]
        fit_keys = {e.prompt for e in fit_rl}
        domain = other_domain + [e for e in corpus.domain_train if e.prompt in fit_keys]
        # dcrouter questions that are also held-out prompts of this fold (GSM8K items among its agentverse-mgsm
        # task) are left out too: otherwise their dc outputs are in-sample here but never on new prompts, and the
        # head would learn to trust them too much.
        held_keys = {overlap_key(train_rl[i].prompt) for i in held_idx}
        dc = [e for e in corpus.dc_train if overlap_key(e.prompt) not in held_keys]
        layer1 = fit_layer1(feats, cfg, fit_rl, domain, dc, with_domain=False)
        values = layer1.apply(x_rl[held_idx])
        if oof is None:
            oof = np.zeros((len(texts), values.shape[1]))
        oof[held_idx] = values
        log(f"fold {fold + 1}/{cfg.folds} done")
    assert oof is not None and layer1 is not None
    names, head_x = head_inputs(layer1, oof, texts)
    y = [outcome_class(e) for e in train_rl]

    # Cross-validated benchmark of the whole model on the training half (what model selection looks at).
    cv_scores = np.zeros(len(texts))
    for fit_idx, held_idx in KFold(cfg.folds, shuffle=True, random_state=cfg.seed + 1).split(texts):
        head = fit_head(names, head_x[fit_idx], [y[i] for i in fit_idx], cfg.head_c)
        cv_scores[held_idx] = head.predict(head_x[held_idx])
    cv = benchmark(train_rl, cv_scores.tolist())
    log(f"cross-validation on the training halves: {json.dumps(cv)}")

    if cfg.cv_only:
        *_, domain_cv = fit_domain(corpus.domain_train, feats.transform([e.prompt for e in corpus.domain_train]), cfg)
        log(f"cross-validated domain macro-F1 (weighted, before offsets): {_r(domain_cv)}")
        return {"metrics": {"cv_train": cv, "domain_cv_macro_f1": domain_cv}}
    final = fit_layer1(feats, cfg, train_rl, corpus.domain_train, corpus.dc_train)
    log(f"cross-validated domain macro-F1 (weighted, before offsets): {_r(final.domain_cv_f1)}")
    head = fit_head(names, head_x, y, cfg.head_c)
    metadata: dict[str, Any] = {
        "created_by": "llm-router train",
        "seed": cfg.seed,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.__dict__.items() if k != "out"},
        "data": {
            "routellm": "github.com/lm-sys/RouteLLM@0b64fdafe049e596a3f5657c219329f24af24198 routellm/evals "
            "(Apache-2.0)",
            "dcrouter": "github.com/ulab-uiuc/LLMRouter@4e7a796942ce26e9d5f2b93191c7c2585c99c2e3 (MIT)",
            "files_sha256_16": corpus.files,
            "strong": ROUTELLM_STRONG,
            "weak": ROUTELLM_WEAK,
        },
        "split": {
            "routellm": "held out (never trained on): prompts whose sha256(utf-8 text) is even; "
            "RouteLLM's contaminated prompts dropped",
            "dcrouter": "its own train file for training (questions also in a RouteLLM held-out half dropped), "
            "its test file for evaluation",
            "counts": {
                "routellm_train": len(train_rl),
                "routellm_test": len(corpus.routellm_test),
                "domain_train": len(corpus.domain_train),
                "domain_test": len(corpus.domain_test),
                "dcrouter_train": len(corpus.dc_train),
                "dcrouter_dropped_overlaps": corpus.dropped_overlaps,
            },
        },
        "vocabulary": len(vec.vocab),
        "embeddings": embedding_metadata(cfg, feats, encoder_name),
        "metrics": {"cv_train": cv, "domain_cv_macro_f1": _r(final.domain_cv_f1)},
    }
    weights = export(vec, final, head, metadata)

    # Held-out figures, computed once with the exported (quantised) classifier, exactly as the layer will score.
    clf = Classifier(weights)
    test_scores = [clf.difficulty(e.prompt) for e in corpus.routellm_test]
    heldout = benchmark(corpus.routellm_test, test_scores)
    predicted = []
    for e in corpus.domain_test:
        scores = clf.domain_scores(e.prompt)
        predicted.append(max(scores, key=lambda k: scores[k]))
    domain_heldout = domain_report([e.domain or "general" for e in corpus.domain_test], predicted)
    metadata["metrics"]["heldout"] = heldout
    metadata["metrics"]["domain_heldout"] = domain_heldout
    metadata["train_seconds"] = round(time.monotonic() - started, 1)
    log(f"held-out halves: {json.dumps(heldout)}")
    log(
        f"domain on held-out data: macro-F1 {domain_heldout['macro_f1']}, "
        f"per label {json.dumps(domain_heldout['per_label'])}"
    )

    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text(json.dumps(weights, separators=(",", ":")) + "\n", encoding="utf-8")
    log(f"wrote {cfg.out} ({cfg.out.stat().st_size / 1e6:.2f} MB)")
    return metadata
