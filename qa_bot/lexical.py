"""Words and terms, and the lexical index built from them once, at index time.

`words` and `terms` are what every ranker means by a word. At index time `build_lexicon` makes the
BM25 index of the passages, numbers every word and term (a term is a stemmed content word) with the
term's inverse document frequency, and stores each sentence as its word numbers; `Lexicon` opens
what was saved (memory-mapped and SQLite), so neither start-up nor a question re-tokenises the corpus.

Files of a version folder: bm25/ (bm25s), words.sqlite3 (words and terms with their numbers, and
each term's IDF), words.term.npy (per word number, its term's), sentence_words.npy and
sentence_words.offsets.npy (per sentence row, its word numbers).
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import Stemmer

from qa_bot.arrays import Ragged, mapped, save_ragged

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
_WORDS_DB = "words.sqlite3"
_TERMS_FILE = "words.term.npy"
_SENTENCE_WORDS = "sentence_words"


def words(text: str) -> list[str]:
    """Lower-cased words, apostrophes and hyphens inside words kept."""
    return [w.replace("’", "'") for w in WORD.findall(text.lower())]


def terms(text: str) -> list[str]:
    """Stemmed content words."""
    return list(STEMMER.stemWords([w for w in words(text) if w not in FUNCTION_WORDS]))


@dataclass
class BuiltLexicon:
    """The lexical index as built at index time, before it is written."""

    bm25: bm25s.BM25
    words: dict[str, int]  # every lower-cased word of the sentences -> its number
    term_of: np.ndarray  # per word number, its term's number (-1 for a function word)
    terms: dict[str, tuple[int, float | None]]  # term -> its number, IDF over the passages
    sentence_words: list[np.ndarray]  # per sentence row, its words' numbers in order

    def save(self, folder: Path) -> None:
        """Write into an index version folder."""
        self.bm25.save(str(folder / _BM25_FOLDER), show_progress=False)
        np.save(folder / _TERMS_FILE, self.term_of)
        save_ragged(folder / _SENTENCE_WORDS, self.sentence_words, width=None, dtype=np.int32)
        with sqlite3.connect(folder / _WORDS_DB) as db:
            db.executescript("""
                CREATE TABLE words (word TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE terms (term TEXT PRIMARY KEY, id INTEGER NOT NULL, idf REAL) WITHOUT ROWID;
            """)
            db.executemany("INSERT INTO words VALUES (?, ?)", sorted(self.words.items()))
            db.executemany("INSERT INTO terms VALUES (?, ?, ?)",
                           sorted((t, i, idf) for t, (i, idf) in self.terms.items()))
        db.close()


def build_lexicon(passages: Sequence[str], sentences: Sequence[str]) -> BuiltLexicon:
    """Tokenise and index the passages, and number the words of every sentence (at index time)."""
    bm25 = bm25s.BM25()
    if passages:
        tokens = bm25s.tokenize(list(passages), stopwords="en", stemmer=STEMMER, show_progress=False)
        bm25.index(tokens, show_progress=False)
    counts: Counter[str] = Counter()
    for passage in passages:
        counts.update(set(terms(passage)))
    n = len(passages)
    term_ids: dict[str, tuple[int, float | None]] = {
        t: (i, math.log(1 + (n - df + 0.5) / (df + 0.5))) for i, (t, df) in enumerate(counts.items())}
    word_ids: dict[str, int] = {}
    sentence_words = []
    for sentence in sentences:
        sentence_words.append(np.array([word_ids.setdefault(w, len(word_ids)) for w in words(sentence)],
                                       dtype=np.int32))
    vocabulary = list(word_ids)
    stems = STEMMER.stemWords(vocabulary)
    term_of = np.full(len(vocabulary), -1, dtype=np.int32)
    for number, (word, stem) in enumerate(zip(vocabulary, stems, strict=True)):
        if word not in FUNCTION_WORDS:
            # A term only a sentence holds (no passage does) has no IDF of its own.
            term_of[number] = term_ids.setdefault(stem, (len(term_ids), None))[0]
    return BuiltLexicon(bm25, word_ids, term_of, term_ids, sentence_words)


class Lexicon:
    """An index's lexical side, opened from its folder: BM25 over the passages (memory-mapped),
    the IDF of each term and the words of each sentence, looked up as questions need them.
    Safe to share between threads."""

    def __init__(self, folder: Path) -> None:
        self.bm25 = bm25s.BM25.load(str(folder / _BM25_FOLDER), mmap=True, show_progress=False)
        self.term_of = mapped(folder / _TERMS_FILE)
        self._sentence_words = Ragged(folder / _SENTENCE_WORDS)
        self._db = sqlite3.connect(f"file:{folder / _WORDS_DB}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            found = self._db.execute("SELECT max(idf) FROM terms").fetchone()[0]
        # A term the passages never use is rarer than any they do.
        self.unknown_idf = 1.5 * (found if found is not None else 1.0)

    def scores(self, question: str, passages: int) -> np.ndarray:
        """BM25 score of every passage for a question."""
        query = bm25s.tokenize([question], stopwords="en", stemmer=STEMMER, return_ids=False,
                               show_progress=False)[0]
        if not query or passages == 0:
            return np.zeros(passages, dtype=np.float32)
        return np.asarray(self.bm25.get_scores(query), dtype=np.float32)

    def term_weights(self, question_terms: Sequence[str]) -> dict[str, float]:
        """Each distinct term of a question, in order, with its IDF (a term the passages never
        use weighs most)."""
        known = {t: idf for t, _, idf in self._lookup("terms", "term", question_terms)}
        return {t: known.get(t) or self.unknown_idf for t in question_terms}

    def term_numbers(self, question_terms: Sequence[str]) -> dict[str, int]:
        """The numbers of the terms the sentences use."""
        return {t: number for t, number, _ in self._lookup("terms", "term", question_terms)}

    def word_numbers(self, question_words: Sequence[str]) -> dict[str, int]:
        """The numbers of the words the sentences use."""
        return {w: number for w, number in self._lookup("words", "word", question_words)}

    def sentence_words(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The numbers of the words of sentence rows, in order and end to end, and how many each has."""
        return self._sentence_words.many(rows)

    def _lookup(self, table: str, key: str, values: Sequence[str]) -> list[tuple[Any, ...]]:
        distinct = sorted(set(values))
        if not distinct:
            return []
        with self._lock:
            return self._db.execute(f"SELECT * FROM {table} WHERE {key} IN "  # noqa: S608 (fixed names)
                                    f"({', '.join('?' * len(distinct))})", distinct).fetchall()

    def close(self) -> None:
        self._db.close()
