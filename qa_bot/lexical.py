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
from typing import Any, Protocol

import bm25s
import numpy as np
import Stemmer

from qa_bot.arrays import Ragged, mapped, save_ragged, select_in
from qa_bot.vectors import best_first

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


def build_lexicon(passages: Sequence[str], sentences: Sequence[str],
                  base: Lexicon | None = None) -> BuiltLexicon:
    """Tokenise and index the passages, and number the words of every sentence (at index time).

    With a `base`, the lexicon of a tail appended to it: words and terms the base knows keep its
    numbers (and IDF), new ones are numbered on from its, with an IDF over both sets of passages."""
    bm25 = bm25s.BM25()
    if passages:
        tokens = bm25s.tokenize(list(passages), stopwords="en", stemmer=STEMMER, show_progress=False)
        bm25.index(tokens, show_progress=False)
    counts: Counter[str] = Counter()
    for passage in passages:
        counts.update(set(terms(passage)))
    sentence_tokens = [words(sentence) for sentence in sentences]
    distinct_words = list({w for ws in sentence_tokens for w in ws})
    known_words = base.word_numbers(distinct_words) if base is not None else {}
    first_word = len(base.term_of) if base is not None else 0
    word_ids: dict[str, int] = {}
    sentence_words = []
    for tokens_of_sentence in sentence_tokens:
        sentence_words.append(np.array(
            [known_words[w] if w in known_words else word_ids.setdefault(w, first_word + len(word_ids))
             for w in tokens_of_sentence], dtype=np.int32))
    vocabulary = list(word_ids)
    stems = STEMMER.stemWords(vocabulary)
    known_terms = base.term_numbers(list(counts.keys() | set(stems))) if base is not None else {}
    n = len(passages) + (base.passage_count if base is not None else 0)
    first_term = base.term_count if base is not None else 0
    term_ids: dict[str, tuple[int, float | None]] = {}
    for t, df in counts.items():
        if t not in known_terms:
            term_ids[t] = (first_term + len(term_ids), math.log(1 + (n - df + 0.5) / (df + 0.5)))
    term_of = np.full(len(vocabulary), -1, dtype=np.int32)
    for number, (word, stem) in enumerate(zip(vocabulary, stems, strict=True)):
        if word not in FUNCTION_WORDS:
            # A term only a sentence holds (no passage does) has no IDF of its own.
            term_of[number] = known_terms[stem] if stem in known_terms else \
                term_ids.setdefault(stem, (first_term + len(term_ids), None))[0]
    return BuiltLexicon(bm25, word_ids, term_of, term_ids, sentence_words)


def question_tokens(question: str) -> list[str]:
    """A question as BM25 tokens."""
    return list(bm25s.tokenize([question], stopwords="en", stemmer=STEMMER, return_ids=False,
                               show_progress=False)[0])


class LexicalIndex(Protocol):
    """What the answer layer asks of an index's lexical side, whichever store holds it (`Lexicon`,
    or PostgreSQL: `postgres.PgLexicon`)."""

    def top(self, question: str, k: int) -> list[int]: ...
    def term_weights(self, question_terms: Sequence[str]) -> dict[str, float]: ...
    def term_numbers(self, question_terms: Sequence[str]) -> dict[str, int]: ...
    def word_numbers(self, question_words: Sequence[str]) -> dict[str, int]: ...
    def sentence_terms(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
    def close(self) -> None: ...


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
            top_idf, top_term = self._db.execute("SELECT max(idf), max(id) FROM terms").fetchone()
        # A term the passages never use is rarer than any they do.
        self.unknown_idf = 1.5 * (top_idf if top_idf is not None else 1.0)
        self.term_count = (top_term + 1) if top_term is not None else 0
        self.passage_count = int(self.bm25.scores["num_docs"]) if self.bm25.scores else 0
        self.sentence_count = len(self._sentence_words)

    def top(self, question: str, k: int) -> list[int]:
        """The rows of the k passages BM25 scores highest for a question (above zero), best first."""
        scores = self.scores(question, self.passage_count)
        return [c for c in best_first(scores, k).tolist() if scores[c] > 0]

    def scores(self, question: str, passages: int) -> np.ndarray:
        """BM25 score of every passage for a question."""
        query = question_tokens(question)
        if not query or passages == 0:
            return np.zeros(passages, dtype=np.float32)
        return np.asarray(self.bm25.get_scores(query), dtype=np.float32)

    def term_weights(self, question_terms: Sequence[str]) -> dict[str, float]:
        """Each distinct term of a question, in order, with its IDF (a term the passages never
        use weighs most)."""
        known = self._terms(question_terms)
        return {t: (known[t][1] if t in known else None) or self.unknown_idf for t in question_terms}

    def term_numbers(self, question_terms: Sequence[str]) -> dict[str, int]:
        """The numbers of the terms the sentences use."""
        return {t: number for t, (number, _) in self._terms(question_terms).items()}

    def word_numbers(self, question_words: Sequence[str]) -> dict[str, int]:
        """The numbers of the words the sentences use."""
        return {w: number for w, number in self._lookup("words", "word", question_words)}

    def sentence_words(self, rows: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The numbers of the words of sentence rows, in order and end to end, and how many each has."""
        return self._sentence_words.many(rows)

    def sentence_terms(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`sentence_words`, with each word's term number beside it (-1 for a function word)."""
        found, lengths = self.sentence_words(rows)
        return found, self.term_of[found], lengths

    def _terms(self, question_terms: Sequence[str]) -> dict[str, tuple[int, float | None]]:
        return {t: (number, idf) for t, number, idf in self._lookup("terms", "term", question_terms)}

    def _lookup(self, table: str, key: str, values: Sequence[str]) -> list[tuple[Any, ...]]:
        with self._lock:
            return select_in(self._db, f"SELECT * FROM {table}", key, values)

    def close(self) -> None:
        self._db.close()


class StackedLexicon(Lexicon):
    """A base's lexicon with an appended tail's (see `build_lexicon`). A tail passage's BM25
    score weighs each term by the base's IDF, as the base's passages are scored; its length is
    normalised by the tail's own mean length."""

    def __init__(self, base: Lexicon, tail: Lexicon) -> None:  # opened parts, not a folder
        self.base, self.tail = base, tail
        self.term_of = np.concatenate([base.term_of, tail.term_of])
        self.unknown_idf = max(base.unknown_idf, tail.unknown_idf)
        self.term_count = max(base.term_count, tail.term_count)
        self.passage_count = base.passage_count + tail.passage_count
        self.sentence_count = base.sentence_count + tail.sentence_count

    def scores(self, question: str, passages: int) -> np.ndarray:
        query = question_tokens(question)
        if not query or passages == 0:
            return np.zeros(passages, dtype=np.float32)
        base = self.base.scores(question, self.base.passage_count)
        tail = np.zeros(self.tail.passage_count, dtype=np.float32)
        for token, times in Counter(query).items():
            tail_id = self.tail.bm25.vocab_dict.get(token)
            if tail_id is None:
                continue
            in_tail = _idf(self.tail.bm25, tail_id, self.tail.passage_count)
            base_id = self.base.bm25.vocab_dict.get(token)
            weight = (_idf(self.base.bm25, base_id, self.base.passage_count) if base_id is not None
                      else _idf(self.tail.bm25, tail_id, self.passage_count))
            tail += times * (weight / in_tail) * self.tail.bm25.get_scores_from_ids([tail_id])
        return np.concatenate([base, tail])

    def word_numbers(self, question_words: Sequence[str]) -> dict[str, int]:
        return self.tail.word_numbers(question_words) | self.base.word_numbers(question_words)

    def sentence_words(self, rows: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        wanted = np.asarray(rows, dtype=np.int64)
        in_tail = wanted >= self.base.sentence_count
        if not in_tail.any():
            return self.base.sentence_words(wanted)
        base_words, base_lengths = self.base.sentence_words(wanted[~in_tail])
        tail_words, tail_lengths = self.tail.sentence_words(wanted[in_tail] - self.base.sentence_count)
        lengths = np.empty(len(wanted), dtype=np.int64)
        lengths[~in_tail], lengths[in_tail] = base_lengths, tail_lengths
        base_parts = iter(np.split(base_words, np.cumsum(base_lengths)[:-1]))
        tail_parts = iter(np.split(tail_words, np.cumsum(tail_lengths)[:-1]))
        parts = [next(tail_parts) if t else next(base_parts) for t in in_tail.tolist()]
        return np.concatenate(parts), lengths

    def _terms(self, question_terms: Sequence[str]) -> dict[str, tuple[int, float | None]]:
        return self.tail._terms(question_terms) | self.base._terms(question_terms)

    def close(self) -> None:
        self.base.close()
        self.tail.close()


def _idf(bm25: bm25s.BM25, token: int, passages: int) -> float:
    """BM25's (Lucene's) IDF of a token over `passages`, from how many of the index's passages
    hold it."""
    indptr = bm25.scores["indptr"]
    df = int(indptr[token + 1] - indptr[token])
    return math.log(1 + (passages - df + 0.5) / (df + 0.5))
