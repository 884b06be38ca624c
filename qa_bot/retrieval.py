"""Question -> ranked, de-duplicated passages: dense (FAISS) and lexical (BM25) rankings fused.

Three rankings of the passages are fused by reciprocal rank: the passage's cosine to the question,
its best sentence's score (cosine plus the share of the question's terms it holds), and BM25.
The fused score is then nudged by what the best sentence offers the question: an answer of the
expected type (a number for "how many", a date for "when") and the question's own phrases.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass

import bm25s
import numpy as np
import Stemmer

from qa_bot.index import Index

RRF_K = 60  # the usual reciprocal-rank-fusion constant: damps the weight of the very top ranks
CANDIDATES = 50  # passages taken from each ranking before fusion
SENTENCE_SIMILARITY_WEIGHT = 0.6  # a sentence's score: cosine and the question terms it covers
SENTENCE_COVERAGE_WEIGHT = 0.4
ANSWER_TYPE_BONUS = 0.1  # measured on the dev and extra question sets (see README)
PHRASE_BONUS = 0.2
QUOTE_NEIGHBOUR_RATIO = 0.7  # a neighbour scoring this share of the best sentence joins the quote
AUTHOR_BONUS = 1.0  # "who wrote it?" is answered by a byline, whatever else matches
SYNDICATION_SHINGLE = 5  # words per shingle when comparing passages across articles
SYNDICATION_OVERLAP = 0.6  # share of the shorter passage's shingles that makes it a copy

_WORD = re.compile(r"\w+(?:[-'’]\w+)*")
# Words that shape a question but say nothing about its subject.
_FUNCTION_WORDS = frozenset(
    "how many much what which who whom whose when where why did does do is are was were has have "
    "had will would could should can say said tell told the a an of in on at to for from by with "
    "about and or not any there this that these those it its be been being as into than then "
    "according".split()
)
_NUMBER = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                     r"dozens?|hundreds?|thousands?|millions?|billions?|decades?|several|half)\b",
                     re.IGNORECASE)
_DATE = re.compile(r"\b(?:\d{4}|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?|"
                   r"(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day|yesterday|today|tomorrow|"
                   r"(?:last|this|next) (?:week|month|year|weekend))\b")
_ASKS_NUMBER = re.compile(r"^\s*(?:\w+\s+)?how (?:many|much|long|old|far|big|large)\b", re.IGNORECASE)
_ASKS_AUTHOR = re.compile(r"\bwho (?:wrote|authored|filed|penned)\b|\bauthor\b|\bbyline\b|"
                          r"\bwritten by\b", re.IGNORECASE)
_ASKS_DATE = re.compile(r"^\s*(?:since |until |till )?when\b|"
                        r"\b(?:what|which|in which) (?:year|date|day|month)\b", re.IGNORECASE)
_ASKS_NAME = re.compile(r"^\s*(?:who|whom|which)\b", re.IGNORECASE)


def words(text: str) -> list[str]:
    """Lower-cased words, apostrophes and hyphens inside words kept."""
    return [w.replace("’", "'") for w in _WORD.findall(text.lower())]


@dataclass(frozen=True)
class Question:
    """A question as the rankers see it."""

    text: str
    vector: np.ndarray
    term_weights: dict[str, float]  # stemmed content words and their IDF (unknown words weigh most)
    phrases: frozenset[tuple[str, str]]  # adjacent word pairs that are not both function words
    answer_pattern: re.Pattern[str] | None  # what an answer must contain, when the question says
    asks_author: bool


@dataclass(frozen=True)
class ScoredSentence:
    """A sentence of a passage and what it offers the question."""

    row: int  # sentence row in the index
    similarity: float
    coverage: float  # IDF-weighted share of the question's terms it contains
    bonus: float  # expected answer type and shared phrases

    @property
    def match(self) -> float:
        """How well the sentence matches the question, without the bonuses (0..1)."""
        return SENTENCE_SIMILARITY_WEIGHT * self.similarity + SENTENCE_COVERAGE_WEIGHT * self.coverage


@dataclass(frozen=True)
class Candidate:
    """A passage ranked for a question."""

    chunk: int  # passage row
    score: float  # fused score, the best about 1
    passage_similarity: float
    best: ScoredSentence
    quote_rows: tuple[int, ...]  # the best sentence, and a neighbour that scores nearly as well
    also_in: tuple[str, ...]  # ids of other articles carrying the same passage


class Retriever:
    """Searches one loaded index; safe to share between threads (read-only after start-up)."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self._stemmer = Stemmer.Stemmer("english")
        self._bm25 = bm25s.BM25()
        tokens = bm25s.tokenize([c.text for c in index.chunks], stopwords="en",
                                stemmer=self._stemmer, show_progress=False)
        self._bm25.index(tokens, show_progress=False)
        self._sentence_vectors = index.sentence_vectors.vectors()
        self._sentence_terms = [set(self.terms(index.sentence_text(r)))
                                for r in range(len(index.sentences))]
        self._sentence_phrases = [_phrases(index.sentence_text(r))
                                  for r in range(len(index.sentences))]
        self._idf = _inverse_document_frequencies([self.terms(c.text) for c in index.chunks])
        self._unknown_idf = 1.5 * max(self._idf.values(), default=1.0)
        self._copies = _syndicated_copies(index)
        self._chunk_normal = [_normal(c.text) for c in index.chunks]
        self._sentence_chunk = {r: c for c, rows in enumerate(index.chunk_sentences) for r in rows}
        self._bylines = frozenset(
            r for r, (article_id, start, _) in enumerate(index.sentences)
            if (author := index.articles[article_id].info.author)
            and index.articles[article_id].text.startswith(author, start)
        )

    def terms(self, text: str) -> list[str]:
        """Stemmed content words."""
        return self._stemmer.stemWords([w for w in words(text) if w not in _FUNCTION_WORDS])

    def question(self, text: str, vector: np.ndarray) -> Question:
        """Analyse a question once for all the rankers."""
        pattern = _NUMBER if _ASKS_NUMBER.search(text) else _DATE if _ASKS_DATE.search(text) \
            else _new_name_pattern(text) if _ASKS_NAME.search(text) else None
        weights = {t: self._idf.get(t, self._unknown_idf) for t in self.terms(text)}
        return Question(text, vector, weights, _phrases(text), pattern,
                        bool(_ASKS_AUTHOR.search(text)))

    def search(self, question: Question, k: int) -> list[Candidate]:
        """The k best passages, a syndicated copy listed once with every article carrying it."""
        index = self.index
        n = len(index.chunks)
        if n == 0:
            return []
        scores, rows = index.passage_vectors.search(question.vector[None, :], min(CANDIDATES, n))
        dense = [r for r in rows[0].tolist() if r >= 0]
        passage_sim = dict(zip(rows[0].tolist(), scores[0].tolist(), strict=True))
        lexical_scores = self._lexical_scores(question.text)
        lexical = [c for c in _top(lexical_scores, CANDIDATES) if lexical_scores[c] > 0]
        sentence_sim = self._sentence_vectors @ question.vector
        near_sentences = _top(sentence_sim, 2 * CANDIDATES)
        pool = set(dense) | set(lexical) | {self._sentence_chunk[r] for r in near_sentences}
        best = {c: self._best_sentence(c, question, sentence_sim) for c in pool}
        rankings = [dense, sorted(pool, key=lambda c: -best[c].match)[:CANDIDATES], lexical]
        fused: dict[int, float] = defaultdict(float)
        for ranking in rankings:
            for rank, c in enumerate(ranking):
                fused[c] += 1.0 / (RRF_K + rank + 1)
        top = max(fused.values())
        final = {c: s / top + best[c].bonus for c, s in fused.items()}
        ranked = sorted(final, key=lambda c: -final[c])
        return [
            Candidate(c, round(final[c], 4), passage_sim.get(c, best[c].similarity), best[c],
                      self._quote_rows(c, question, sentence_sim, best[c]), also_in)
            for c, also_in in self._without_copies(ranked, best, k)
        ]

    def _best_sentence(self, chunk: int, question: Question, similarity: np.ndarray) -> ScoredSentence:
        scored = [
            ScoredSentence(row, float(similarity[row]), self._coverage(question, row),
                           self._bonus(question, row))
            for row in self.index.chunk_sentences[chunk]
        ]
        return max(scored, key=lambda s: s.match + s.bonus)

    def _quote_rows(self, chunk: int, question: Question, similarity: np.ndarray,
                    best: ScoredSentence) -> tuple[int, ...]:
        """The best sentence, joined by the better of its neighbours in the same paragraph when
        that one scores nearly as well: the fact asked for often sits next to the sentence that
        restates the question ("... reopened its embassy. Burhan Koroglu ... was named")."""
        if question.asks_author:
            return (best.row,)
        rows = self.index.chunk_sentences[chunk]
        at = rows.index(best.row)
        neighbours = [rows[i] for i in (at - 1, at + 1)
                      if 0 <= i < len(rows) and self._same_paragraph(rows[i], best.row)]
        if not neighbours:
            return (best.row,)
        scored = [ScoredSentence(r, float(similarity[r]), self._coverage(question, r),
                                 self._bonus(question, r)) for r in neighbours]
        runner_up = max(scored, key=lambda s: s.match + s.bonus)
        if runner_up.match + runner_up.bonus < QUOTE_NEIGHBOUR_RATIO * (best.match + best.bonus):
            return (best.row,)
        return tuple(sorted((best.row, runner_up.row)))

    def _same_paragraph(self, a: int, b: int) -> bool:
        article, start, end = self.index.sentences[min(a, b)]
        _, next_start, _ = self.index.sentences[max(a, b)]
        return "\n" not in self.index.articles[article].text[start:next_start]

    def _coverage(self, question: Question, row: int) -> float:
        weights = question.term_weights
        if not weights:
            return 0.0
        present = self._sentence_terms[row]
        return sum(w for t, w in weights.items() if t in present) / sum(weights.values())

    def _bonus(self, question: Question, row: int) -> float:
        if question.asks_author:
            return AUTHOR_BONUS if row in self._bylines else 0.0
        bonus = 0.0
        if question.answer_pattern is not None and question.answer_pattern.search(
                self.index.sentence_text(row)):
            bonus += ANSWER_TYPE_BONUS
        if question.phrases:
            shared = len(question.phrases & self._sentence_phrases[row])
            bonus += PHRASE_BONUS * shared / len(question.phrases)
        return bonus

    def _lexical_scores(self, question: str) -> np.ndarray:
        query = bm25s.tokenize([question], stopwords="en", stemmer=self._stemmer,
                               return_ids=False, show_progress=False)[0]
        if not query:
            return np.zeros(len(self.index.chunks), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(query), dtype=np.float32)

    def _without_copies(
        self, ranked: list[int], best: dict[int, ScoredSentence], k: int
    ) -> list[tuple[int, tuple[str, ...]]]:
        """Keep the best-ranked copy of each passage; name the articles whose copies were dropped.

        A passage is a copy when another article repeats most of it, or when its best sentence
        is already shown in a passage ranked above it (overlapping windows, syndicated sentences).
        """
        chunks = self.index.chunks
        chosen: list[int] = []
        also_in: dict[int, set[str]] = {}
        for c in ranked:
            sentence = _normal(self.index.sentence_text(best[c].row))
            original = next((o for o in chosen if c in self._copies[o]
                             or sentence in self._chunk_normal[o]), None)
            if original is not None:
                also_in[original].add(chunks[c].article_id)
                continue
            chosen.append(c)
            also_in[c] = {chunks[o].article_id for o in self._copies[c]}
            if len(chosen) == k:
                break
        return [(c, tuple(sorted(also_in[c] - {chunks[c].article_id}))) for c in chosen]


def _new_name_pattern(question: str) -> re.Pattern[str]:
    """For "who"/"which" questions: a capitalised word, not first in its sentence, that the
    question does not already use — the name that answers it."""
    asked = {w.lower() for w in _WORD.findall(question)}
    known = "|".join(re.escape(w) for w in sorted(asked, key=len, reverse=True)) or "(?!)"
    return re.compile(rf"(?<=\w[ ,(])(?!(?i:{known})\b)[A-Z][\w'’-]+")


def _top(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the k highest scores, best first, without sorting them all."""
    if len(scores) > k:
        part = np.argpartition(-scores, k)[:k]
        return part[np.argsort(-scores[part])].tolist()
    return np.argsort(-scores).tolist()


def _normal(text: str) -> str:
    return " ".join(words(text))


def _phrases(text: str) -> frozenset[tuple[str, str]]:
    w = words(text)
    return frozenset((a, b) for a, b in zip(w, w[1:], strict=False)
                     if not (a in _FUNCTION_WORDS and b in _FUNCTION_WORDS))


def _inverse_document_frequencies(documents: list[list[str]]) -> dict[str, float]:
    counts: Counter[str] = Counter()
    for doc in documents:
        counts.update(set(doc))
    n = len(documents)
    return {t: math.log(1 + (n - df + 0.5) / (df + 0.5)) for t, df in counts.items()}


def _syndicated_copies(index: Index) -> list[set[int]]:
    """For each passage, the passages of other articles that repeat most of it word for word."""
    shingles = [_shingles(c.text) for c in index.chunks]
    holders: dict[tuple[str, ...], set[int]] = defaultdict(set)
    for c, sh in enumerate(shingles):
        for s in sh:
            holders[s].add(c)
    copies: list[set[int]] = [set() for _ in index.chunks]
    for c, sh in enumerate(shingles):
        shared: Counter[int] = Counter()
        for s in sh:
            shared.update(o for o in holders[s]
                          if index.chunks[o].article_id != index.chunks[c].article_id)
        for other, n in shared.items():
            if n >= SYNDICATION_OVERLAP * min(len(sh), len(shingles[other])):
                copies[c].add(other)
    return copies


def _shingles(text: str) -> set[tuple[str, ...]]:
    w = words(text)
    n = SYNDICATION_SHINGLE
    return {tuple(w[i: i + n]) for i in range(max(len(w) - n + 1, 1))}
