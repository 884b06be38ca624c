"""Words and terms, and the lexical index built from them once, at index time.

`words` and `terms` are what every ranker means by a word; `Lexicon` holds the BM25 index of the
passages and the inverse document frequency of each term, saved in the index folder and opened
from it (memory-mapped), so start-up does not re-tokenise the corpus.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

WORD = re.compile(r"\w+(?:[-'’]\w+)*")  # a word, apostrophes and hyphens inside it kept
# Words that shape a question but say nothing about its subject.
FUNCTION_WORDS = frozenset(
    "how many much what which who whom whose when where why did does do is are was were has have "
    "had will would could should can say said tell told the a an of in on at to for from by with "
    "about and or not any there this that these those it its be been being as into than then "
    "according".split()
)
STEMMER = Stemmer.Stemmer("english")  # its calls hold the GIL, so threads may share it
_BM25_FOLDER = "bm25"
_IDF_FILE = "idf.json"


def words(text: str) -> list[str]:
    """Lower-cased words, apostrophes and hyphens inside words kept."""
    return [w.replace("’", "'") for w in WORD.findall(text.lower())]


def terms(text: str) -> list[str]:
    """Stemmed content words."""
    return list(STEMMER.stemWords([w for w in words(text) if w not in FUNCTION_WORDS]))


@dataclass
class Lexicon:
    """BM25 over the passages, and each term's inverse document frequency."""

    bm25: bm25s.BM25
    idf: dict[str, float]

    @classmethod
    def build(cls, passages: Sequence[str]) -> Lexicon:
        """Tokenise and index the passages (at index time)."""
        bm25 = bm25s.BM25()
        if passages:
            tokens = bm25s.tokenize(list(passages), stopwords="en", stemmer=STEMMER, show_progress=False)
            bm25.index(tokens, show_progress=False)
        counts: Counter[str] = Counter()
        for passage in passages:
            counts.update(set(terms(passage)))
        n = len(passages)
        idf = {t: math.log(1 + (n - df + 0.5) / (df + 0.5)) for t, df in counts.items()}
        return cls(bm25, idf)

    def save(self, folder: Path) -> None:
        """Write into an index version folder."""
        self.bm25.save(str(folder / _BM25_FOLDER), show_progress=False)
        (folder / _IDF_FILE).write_text(json.dumps(self.idf), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> Lexicon:
        """Open what `save` wrote; the BM25 matrix is memory-mapped."""
        bm25 = bm25s.BM25.load(str(folder / _BM25_FOLDER), mmap=True, show_progress=False)
        saved = json.loads((folder / _IDF_FILE).read_text(encoding="utf-8"))
        return cls(bm25, {str(t): float(v) for t, v in saved.items()})

    def scores(self, question: str, passages: int) -> np.ndarray:
        """BM25 score of every passage for a question."""
        query = bm25s.tokenize([question], stopwords="en", stemmer=STEMMER, return_ids=False,
                               show_progress=False)[0]
        if not query or passages == 0:
            return np.zeros(passages, dtype=np.float32)
        return np.asarray(self.bm25.get_scores(query), dtype=np.float32)
