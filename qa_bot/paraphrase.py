"""Close words from the shipped model: "troops" finds "soldiers", "kids" finds "children".

The model's first layer gives every word of its vocabulary a vector, and words used alike lie near
each other. Only the corpus's own words are candidates, so a question's word is matched to the
words the articles actually use; nothing is downloaded and no list is written by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

CLOSE_WORD_SIMILARITY = 0.6  # troops/soldiers 0.69, kids/children 0.77; left/right 0.49 stays out


class CloseWords:
    """Finds the corpus words close to a question's word; read-only after start-up."""

    def __init__(self, vocabulary: dict[str, int], vectors: np.ndarray, corpus_words: Iterable[str],
                 normalise: Callable[[str], str]) -> None:
        self._vocabulary = vocabulary
        self._vectors = vectors
        self._normalise = normalise
        known = sorted({w for w in corpus_words if w in vocabulary})
        self._words = known
        self._matrix = _unit(vectors[[vocabulary[w] for w in known]]) if known \
            else np.zeros((0, vectors.shape[1]), dtype=np.float32)

    def of(self, word: str, threshold: float = CLOSE_WORD_SIMILARITY) -> dict[str, float]:
        """Normalised forms of the corpus words close to `word`, with their similarity."""
        row = self._vocabulary.get(word)
        if row is None or not self._words:
            return {}
        # Multiply and sum rather than a BLAS product: BLAS threads left spinning after a small
        # product slowed the next question's encoding by up to 100 ms (measured).
        similarity = (self._matrix * _unit(self._vectors[row][None, :])).sum(axis=1)
        own = self._normalise(word)
        close: dict[str, float] = {}
        for i in np.flatnonzero(similarity >= threshold):
            form = self._normalise(self._words[i])
            if form != own:
                close[form] = max(close.get(form, 0.0), float(similarity[i]))
        return close


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
