"""Passages -> Answer: the sentence that answers, quoted verbatim, its sources, a confidence.

The one core API the front ends use: `Answerer.open(settings)` then `answerer.ask(question)`.
"""

from __future__ import annotations

import re

from qa_bot.config import Settings
from qa_bot.encoder import Encoder
from qa_bot.errors import QuestionError
from qa_bot.index import Index, IndexUpdate, Progress, Report, open_index
from qa_bot.retrieval import (
    SENTENCE_COVERAGE_WEIGHT,
    SENTENCE_SIMILARITY_WEIGHT,
    Candidate,
    Question,
    Retriever,
    words,
)
from qa_bot.types import Answer, ArticleInfo, Passage

# A name or number the question insists on ("Iranian soldiers", "in 2011").
_NAMED = re.compile(r"(?<!^)(?<![.?!] )\b(?:[A-Z][\w'’-]+|\d[\d,.]*)")
_HOW_MANY = re.compile(r"^\s*how many (?P<what>(?:[\w'’-]+\s+){0,3}?[\w'’-]+?)\s+"
                       r"(?:did|do|does|are|were|is|was|have|has|had|will|would|can|could|may|might|"
                       r"went|left|in|from|at|on|of)\b", re.IGNORECASE)
_COUNT = re.compile(r"(?:\d[\d,.]*|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|"
                    r"twelve|dozens?|hundreds?|thousands?|millions?|several|few)\b)"
                    r"(?P<after>(?:\s+[\w'’,.-]+){1,4})", re.IGNORECASE)
_HOW_MUCH = re.compile(r"^\s*how much\b", re.IGNORECASE)
_AMOUNT = re.compile(r"[$€£¥₽]\s?\d|\d[\d,.]*\s*(?:%|per ?cent|percent)|\b(?:dollars?|euros?|pounds?|"
                     r"roubles?|rubles?|lira|million|billion|trillion|tonnes?|tons?|barrels?)\b",
                     re.IGNORECASE)
_WHAT_SAID = re.compile(r"^\s*what (?:did|does|do|has|have|had) (?P<who>.+?) "
                        r"(?:say|said|tell|told|announce|claim|report|write|think|comment)\b",
                        re.IGNORECASE)
_SPEECH = re.compile(r"\b(?:said|says|saying|say|told|tells|stated|states|announced|reported|reports|"
                     r"wrote|writes|added|warned|claimed|claims|quoted|according to|urged|insisted|"
                     r"argued|maintained|noted|stressed|confirmed|denied|promised|declared|replied|"
                     r"commented|described|called)\b|[“\"]", re.IGNORECASE)
# A quote of the wrong kind: "100 officials" for "how many soldiers", a number without an amount
# for "how much", a sentence where X is not speaking for "what did X say".
WRONG_KIND_PENALTY = 0.5
MISSING_NAME_PENALTY = 0.5  # confidence lost when none of the question's names is in the article
SHARED_PREFIX = 4  # "Syrian" matches "Syria", "Turkish" matches "Turkey"


class Answerer:
    """Answers questions from one corpus; load once, then ask from any thread."""

    def __init__(self, settings: Settings, encoder: Encoder, index: Index, update: IndexUpdate):
        self.settings = settings
        self.encoder = encoder
        self.index = index
        self.update = update
        self.retriever = Retriever(index)
        self._article_words = {a: set(words(article.text)) for a, article in index.articles.items()}

    @classmethod
    def open(
        cls, settings: Settings, report: Report = lambda _: None, progress: Progress | None = None,
        rebuild: bool = False, encoder: Encoder | None = None,
    ) -> Answerer:
        """Load the model (unless given one) and the index, building or updating it when needed."""
        encoder = encoder or Encoder()
        index, update = open_index(settings, encoder, report, progress, force=rebuild)
        return cls(settings, encoder, index, update)

    @property
    def articles(self) -> tuple[ArticleInfo, ...]:
        """The articles of the corpus, in file-name order."""
        return tuple(a.info for a in sorted(self.index.articles.values(), key=lambda a: a.info.id))

    def ask(self, question: str, top_k: int | None = None) -> Answer:
        """Answer a question with a verbatim quote, or say the corpus does not answer it."""
        question = self._checked(question)
        analysed = self.retriever.question(question, self.encoder.encode([question])[0])
        candidates = self.retriever.search(analysed, top_k or self.settings.top_k)
        if not candidates:
            return Answer(question, False, None, 0.0, (), len(self.index.articles))
        passages = tuple(self._passage(c) for c in candidates)
        confidence = self._confidence(analysed, candidates[0])
        answered = confidence >= self.settings.min_confidence
        return Answer(question, answered, passages[0].quote if answered else None,
                      round(confidence, 3), passages, len(self.index.articles))

    def _checked(self, question: str) -> str:
        question = " ".join(question.split())
        if not question:
            raise QuestionError("the question is empty",
                                hint='ask something like "how many soldiers left Damascus?"')
        if len(question) > self.settings.max_question_chars:
            raise QuestionError(
                f"the question is {len(question)} characters long; the limit is "
                f"{self.settings.max_question_chars}",
                hint="ask a shorter question",
            )
        return question

    def _confidence(self, analysed: Question, top: Candidate) -> float:
        """How sure the quote answers: its match, less when the article lacks a name asked about."""
        article = self.index.chunks[top.chunk].article_id
        names = set(words(" ".join(_NAMED.findall(analysed.text))))
        missing = [n for n in names if not self._mentions(article, n)]
        penalty = MISSING_NAME_PENALTY * len(missing) / len(names) if names else 0.0
        best = top.best
        # The passage as a whole may say it better than its best sentence ("think tank").
        similarity = max(best.similarity, top.passage_similarity)
        match = SENTENCE_SIMILARITY_WEIGHT * similarity + SENTENCE_COVERAGE_WEIGHT * best.coverage
        if analysed.asks_author:
            match += best.bonus / 2
        quote = self.index.sentence_text(best.row)
        if not (self._counts_what_was_asked(analysed.text, quote)
                and self._quotes_who_was_asked(analysed.text, quote)
                and (_HOW_MUCH.match(analysed.text) is None or _AMOUNT.search(quote))):
            penalty = max(penalty, WRONG_KIND_PENALTY)
        return max(0.0, min(1.0, match)) * (1 - penalty)

    def _quotes_who_was_asked(self, question: str, sentence: str) -> bool:
        """For "what did X say", the quote must be X speaking (or reported as speaking)."""
        asked = _WHAT_SAID.match(question)
        if asked is None:
            return True
        speaker = set(self.retriever.terms(asked["who"]))
        return bool(speaker & set(self.retriever.terms(sentence))) and bool(_SPEECH.search(sentence))

    def _counts_what_was_asked(self, question: str, sentence: str) -> bool:
        """For "how many X", a number in the quote must count X: "400 soldiers", not "100 officials"."""
        asked = _HOW_MANY.match(question)
        if asked is None:
            return True
        counted = set(self.retriever.terms(asked["what"]))
        following = (self.retriever.terms(m["after"]) for m in _COUNT.finditer(sentence))
        return any(counted & set(after) for after in following)

    def _mentions(self, article: str, name: str) -> bool:
        known = self._article_words[article]
        if name in known:
            return True
        stem = name[:SHARED_PREFIX]
        return len(name) > SHARED_PREFIX and any(
            w.startswith(stem) and abs(len(w) - len(name)) <= 3 for w in known)

    def _passage(self, candidate: Candidate) -> Passage:
        chunk = self.index.chunks[candidate.chunk]
        start = self.index.sentences[candidate.quote_rows[0]][1]
        end = self.index.sentences[candidate.quote_rows[-1]][2]
        return Passage(
            text=chunk.text,
            source=self.index.articles[chunk.article_id].info,
            score=candidate.score,
            start=chunk.start,
            end=chunk.end,
            quote=chunk.text[start - chunk.start: end - chunk.start],
            also_in=tuple(self.index.articles[a].info for a in candidate.also_in),
        )
