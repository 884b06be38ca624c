"""Passages -> Answer: the sentence that answers, quoted verbatim, its sources, a confidence.

The one core API the front ends use: `Answerer.open(settings)` then `answerer.ask(question)`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace

import numpy as np
from bm25s.stopwords import STOPWORDS_EN_PLUS

from qa_bot.answer_types import NAMES, SPEECH, speaker_asked
from qa_bot.config import Settings
from qa_bot.encoder import Encoder
from qa_bot.entities import EntityTagger
from qa_bot.errors import QuestionError
from qa_bot.index import Index, IndexUpdate, Progress, Report, open_index
from qa_bot.retrieval import (
    COUNTED_WITHIN,
    FUNCTION_WORDS,
    SENTENCE_COVERAGE_WEIGHT,
    SENTENCE_SIMILARITY_WEIGHT,
    SPEAKER_NAMED_BEFORE,
    Candidate,
    Question,
    Retriever,
    words,
)
from qa_bot.retrieval import RULES as RETRIEVAL_RULES
from qa_bot.types import Answer, ArticleInfo, Passage

_LETTER = re.compile(r"[^\W\d_]")
_SMALL_WORDS = FUNCTION_WORDS | frozenset(STOPWORDS_EN_PLUS)
_NAME_WORD = r"(?:[A-Z][\w'’.-]*|al-\w+|de|von|van|bin)"
_ONLY_A_NAME = re.compile(rf"^{_NAME_WORD}(?: {_NAME_WORD}){{0,3}}\s*[?!.]*$")
# A name or number the question insists on ("Iranian soldiers", "in 2011").
_NAMED = re.compile(r"(?<!^)(?<![.?!] )(?<![\w'’-])(?:(?:[a-z]+-)?[A-Z][\w'’-]+|\d[\d,.]*)")
# A quote of the wrong kind: no new item of the kind asked for (no town for "which town"),
# "100 officials" for "how many soldiers", a sentence where X is not speaking for "what did X say".
WRONG_KIND_PENALTY = 0.5
# "how many staff" quoted with "280 employees": a count of something the model reads as alike
# costs only this share of the penalty ("130 miles" or "9,800 trucks" the whole of it).
OTHER_COUNT_SHARE = 0.3
OTHER_COUNT_SIMILARITY = 0.45  # staff/employees 0.72, homes/households 0.70; workers/miles 0.15
MISSING_NAME_PENALTY = 0.5  # confidence lost when none of the question's names is in the article
RULES = RETRIEVAL_RULES | {
    "wrong-kind",  # a quote of the wrong kind loses confidence
    "speaker-before-conf",  # '"…," the newspaper said' speaks for the paper the sentence before names
    "quote-coverage",  # the confidence reads the question's terms the whole quote holds
    "other-count",  # a count of something alike ("280 employees" for "how many staff") costs less
    "missing-name",  # so does one from an article that lacks a name the question asks about
}
SHARED_PREFIX = 4  # "Syrian" matches "Syria", "Turkish" matches "Turkey"
_SAYS = re.compile(r"\b(?:said|says|told|tells|stated|announced|reported|reports|wrote|writes|added|warned|"
                   r"claimed|claims|according to|declared|confirmed|insisted|noted|stressed|citing|cited|"
                   r"quoted|quoting|sources)\b",
                   re.IGNORECASE)
RESTATEMENT_CANDIDATES = 10  # passages looked at for "is that confirmed elsewhere?"
RESTATEMENT_SIMILARITY = 0.5  # cosine to the quote above which another passage's quote restates it
FOLLOW_UP_REACH = 3  # sentences from the quote seen last where a follow-up's answer is looked for first
FOLLOW_UP_MARGIN = 0.1  # and how much less than the best passage it may score


def visible(text: str) -> str:
    """The text without format characters (zero-width spaces, soft hyphens: Unicode Cf), spacing tidied."""
    return " ".join("".join(c for c in text if unicodedata.category(c) != "Cf").split())


class Answerer:
    """Answers questions from one corpus; load once, then ask from any thread."""

    def __init__(self, settings: Settings, encoder: Encoder, index: Index, update: IndexUpdate,
                 rules: frozenset[str] = RULES):
        self.settings = settings
        self.encoder = encoder
        self.index = index
        self.update = update
        self.rules = rules
        self.retriever = Retriever(index, rules, encoder.word_vectors())

    @classmethod
    def open(
        cls, settings: Settings, report: Report = lambda _: None, progress: Progress | None = None,
        rebuild: bool = False, encoder: Encoder | None = None, tagger: EntityTagger | None = None,
        update_store: bool = False,
    ) -> Answerer:
        """Load the model (unless given one) and the index, building or updating it when needed.
        With a shared store (`settings.database_url`) only `update_store` writes to it: readers read."""
        encoder = encoder or Encoder()
        if settings.database_url:
            from qa_bot.postgres import Database, open_pg_index

            index, update = open_pg_index(Database.of(settings), settings, encoder, report, progress,
                                          write=update_store or rebuild, rebuild=rebuild, tagger=tagger)
        else:
            index, update = open_index(settings, encoder, report, progress, force=rebuild, tagger=tagger)
        return cls(settings, encoder, index, update)

    def with_rules(self, rules: frozenset[str]) -> Answerer:
        """The same answerer with only these rules on (for measuring what each rule is worth)."""
        return Answerer(self.settings, self.encoder, self.index, self.update, rules)

    @property
    def articles(self) -> tuple[ArticleInfo, ...]:
        """The articles of the corpus, in file-name order."""
        return tuple(a.info for a in sorted(self.index.articles.values(), key=lambda a: a.info.id))

    def ask(self, question: str, top_k: int | None = None, stress: str | None = None,
            near: Passage | None = None) -> Answer:
        """Answer a question with a verbatim quote, or say the corpus does not answer it. With
        `stress`, passages whose quote holds its words come first; with `near` (the passage a
        follow-up leans on), a passage a few sentences from its quote that scores nearly as well
        as the best comes first, the nearest first: "what caused the sanctions?" is answered next
        to the quote that named them."""
        question = self._checked(question)
        vector = self.encoder.encode_questions([question])[0]
        with self.index.reading():
            return self._answer(question, vector, top_k, stress, near)

    def _answer(self, question: str, vector: np.ndarray, top_k: int | None, stress: str | None,
                near: Passage | None) -> Answer:
        analysed = self.retriever.question(question, vector)
        candidates = self.retriever.search(analysed, top_k or self.settings.top_k)
        if near is not None and candidates:
            shown = self._quote_rows(near)
            top = candidates[0].score
            candidates.sort(key=lambda c: self._distance(c, shown) if c.score >= top - FOLLOW_UP_MARGIN
                            else FOLLOW_UP_REACH + 2)
        named = False
        if stress and candidates:
            # A follow-up about another thing ("and from Latakia?"): a quote must name that thing,
            # and the rest of the question is context, not a condition ("and on 10 December?").
            stressed = set(self.retriever.terms(stress))
            candidates.sort(key=lambda c: not _all_held(stressed, self._quote_terms(c)))
            named = bool(stressed) and _all_held(stressed, self._quote_terms(candidates[0]))
        if not candidates:
            return Answer(question, False, None, 0.0, (), len(self.index.articles))
        passages = self._credited([self._passage(c) for c in candidates])
        confidence = self._confidence(analysed, candidates[0], conditions=not named)
        answered = confidence >= self.settings.min_confidence
        return Answer(question, answered, passages[0].quote if answered else None,
                      round(confidence, 3), passages, len(self.index.articles))

    def _distance(self, candidate: Candidate, rows: list[int]) -> int:
        """How many sentences a candidate's quote is from these rows of one article, when it is a few
        (FOLLOW_UP_REACH) and not on them; FOLLOW_UP_REACH + 1 otherwise, and one more for the quote
        on them that holds no new item of the kind asked for: the user has read it."""
        far = FOLLOW_UP_REACH + 1
        if not rows or self.index.sentences[rows[0]][0] != self.index.chunks[candidate.chunk].article_id:
            return far
        quote = candidate.quote_rows
        if set(quote) & set(rows):
            return far if candidate.best.typed else far + 1
        distance = min(abs(q - r) for q in quote for r in rows)
        return far if distance > FOLLOW_UP_REACH else distance

    def _quote_terms(self, candidate: Candidate) -> set[str]:
        return {t for r in candidate.quote_rows for t in self.retriever.terms(self.index.sentence_text(r))}

    def name_labels(self, word: str) -> frozenset[str]:
        """The entity labels a lower-cased name word carries in the corpus ("putin": PERSON)."""
        return self.retriever.name_labels(word)

    def closeness(self, anchor: Passage, passages: list[Passage]) -> list[float]:
        """Cosine of each passage's quote to the anchor's quote (the mean of its sentences' vectors).
        The sentences are encoded afresh: the index leans each toward its headline, which makes
        any two sentences of one article look close."""
        quotes = [[self.index.sentence_text(r) for r in self._quote_rows(p)] for p in (anchor, *passages)]
        texts = [t for quote in quotes for t in quote]
        encoded = iter(self.encoder.encode_questions(texts) if texts else ())

        def vector(quote: list[str]) -> np.ndarray:
            if not quote:
                return np.zeros(self.encoder.dim, dtype=np.float32)
            mean = np.mean([next(encoded) for _ in quote], axis=0)
            return mean / max(float(np.linalg.norm(mean)), 1e-12)

        target, *others = [vector(q) for q in quotes]
        return [float(v @ target) for v in others]

    def _quote_rows(self, passage: Passage) -> list[int]:
        quote = passage.quote or passage.text
        start = passage.start + max(0, passage.text.find(quote))
        end = start + len(quote)
        return [r for r in self.index.rows.article_sentences(passage.source.id)
                if self.index.sentences[r][1] < end and start < self.index.sentences[r][2]]

    def restatements(self, quote: str, question: str) -> list[Passage]:
        """Passages that say what `quote` says: of the best passages for the question, then for the
        quote itself, those whose quote is close in meaning to it, in that order (the quote's own
        article included)."""
        found: dict[tuple[str, int], Passage] = {}
        for asked in (question, quote[:self.settings.max_question_chars]):
            for p in self.ask(asked, RESTATEMENT_CANDIDATES).passages:
                if p.quote:
                    found.setdefault((p.source.id, p.start), p)
        passages = list(found.values())
        if not passages:
            return []
        vectors = self.encoder.encode_questions([quote, *(p.quote or "" for p in passages)])
        closeness = [float(v @ vectors[0]) for v in vectors[1:]]
        return [p for p, c in zip(passages, closeness, strict=True) if c >= RESTATEMENT_SIMILARITY]

    def entities(self, passage: Passage) -> list[tuple[str, str]]:
        """(text, label) of the names, dates and numbers the tagger found in a passage's quote."""
        return [(self.index.sentence_text(row)[e.start:e.end], e.label)
                for row in self._quote_rows(passage) for e in self.index.sentence_entities[row]]

    def attribution(self, passage: Passage) -> Passage | None:
        """The sentence that says who is speaking in a passage's quote: the quote itself when it
        names a speaker, else the sentence before or after it ("…, the newspaper said")."""
        rows = self.index.rows.article_sentences(passage.source.id)
        quoted = self._quote_rows(passage)
        if not quoted:
            return None
        first, last = quoted[0], quoted[-1]
        around = [*quoted, first - 1, last + 1, first - 2]
        for row in around:
            if row in rows and self._names_speaker(row):
                if SPEAKER_NAMED_BEFORE.search(self.index.sentence_text(row)):
                    # "The channel also reported that…": from the sentence that names the channel
                    named = next((r for r in (row - 1, row - 2) if r in rows and self._names_speaker(r)
                                  and not SPEAKER_NAMED_BEFORE.search(self.index.sentence_text(r))), None)
                    if named is not None:
                        return self._sentence_passage(named, passage.score, through=row)
                return self._sentence_passage(row, passage.score)
        return None

    def is_heading(self, passage: Passage) -> bool:
        """Whether a passage's quote is only a headline or crosshead (nothing to read on from)."""
        return all(self.retriever.is_heading(r) for r in self._quote_rows(passage))

    def surroundings(self, passage: Passage, sentences: int) -> list[Passage]:
        """The sentences just before and after a passage's quote in its article, a passage each,
        the nearest first; not headlines or crossheads, which say nothing more."""
        rows = self.index.rows.article_sentences(passage.source.id)
        quoted = self._quote_rows(passage)
        if not quoted:
            return []
        around = [r for step in range(1, sentences + 1) for r in (quoted[-1] + step, quoted[0] - step)]
        return [self._sentence_passage(r, passage.score) for r in around
                if r in rows and not self.retriever.is_heading(r)]

    def _names_speaker(self, row: int) -> bool:
        text = self.index.sentence_text(row)
        return bool(_SAYS.search(text)) and any(e.label in NAMES for e in self.index.sentence_entities[row])

    def _sentence_passage(self, row: int, score: float, through: int | None = None) -> Passage:
        """One sentence as a passage quoted whole (or the sentences from it through another row)."""
        article_id, start, end = self.index.sentences[row]
        end = self.index.sentences[through][2] if through is not None else end
        article = self.index.articles[article_id]
        text = article.text[start:end]
        return Passage(text=text, source=article.info, score=round(score, 3), start=start, end=end,
                       quote=text, also_in=())

    def _checked(self, question: str) -> str:
        """The question with its spacing tidied, or a QuestionError saying why it cannot be searched."""
        question = visible(question)
        example = "how many soldiers left Damascus?"
        if not question:
            raise QuestionError("the question is empty", hint=f'ask something like "{example}"')
        if len(question) > self.settings.max_question_chars:
            raise QuestionError(
                f"the question is {len(question)} characters long; the limit is "
                f"{self.settings.max_question_chars}",
                hint="ask a shorter question",
            )
        shown = question if len(question) <= 60 else question[:57] + "…"
        if not _LETTER.search(question):
            raise QuestionError(f"“{shown}” has no words to search for",
                                hint=f'ask in words, like "{example}"')
        if not [w for w in words(question) if w not in _SMALL_WORDS]:
            raise QuestionError(f"“{shown}” has only small words like “what” and “the”: nothing to search",
                                hint=f'say what you want to know, like "{example}"')
        if _ONLY_A_NAME.match(question):
            name = question.rstrip("?!. ")
            raise QuestionError(f"“{shown}” is only a name: what do you want to know about it?",
                                hint=f'ask a whole question, like "what happened to {name}?"')
        return question

    def _confidence(self, analysed: Question, top: Candidate, conditions: bool = True) -> float:
        """How sure the quote answers: its match, less when the article lacks a name asked about."""
        article = self.index.chunks[top.chunk].article_id
        names = set(words(" ".join(_NAMED.findall(analysed.text))))
        missing = [n for n in names if not self._mentions(article, n)]
        penalty = MISSING_NAME_PENALTY * len(missing) / len(names) \
            if names and "missing-name" in self.rules else 0.0
        best = top.best
        # The passage as a whole may say it better than its best sentence ("think tank").
        similarity = max(best.similarity, top.passage_similarity)
        coverage = max(best.coverage, top.quote_coverage) if "quote-coverage" in self.rules else best.coverage
        match = SENTENCE_SIMILARITY_WEIGHT * similarity + SENTENCE_COVERAGE_WEIGHT * coverage
        if analysed.asks_author:
            match += best.bonus / 2
        quote = " ".join(self.index.sentence_text(r) for r in top.quote_rows)
        holds_kind = analysed.expected is None or not analysed.expected.certain or any(
            self.retriever.new_items(analysed, r) for r in top.quote_rows)
        speaks = self._quotes_who_was_asked(analysed.text, quote) or self._spoken_before(analysed, top, quote)
        if "wrong-kind" in self.rules and not (holds_kind and speaks):
            wrong = WRONG_KIND_PENALTY
            if speaks and analysed.expected is not None and analysed.expected.counted \
                    and "other-count" in self.rules and self._counts_alike(analysed, top.quote_rows):
                wrong *= OTHER_COUNT_SHARE
            penalty = max(penalty, wrong)
        if not conditions:
            penalty = 0.0
        return max(0.0, min(1.0, match)) * (1 - penalty)

    def _counts_alike(self, analysed: Question, rows: tuple[int, ...]) -> bool:
        """For "how many staff", whether the quote counts something the model reads as alike:
        "280 employees" (not "130 miles")."""
        assert analysed.expected is not None
        uncounted = replace(analysed, expected=replace(analysed.expected, counted=()))
        following: list[str] = []
        for row in rows:
            text = self.index.sentence_text(row)
            for item in self.retriever.new_items(uncounted, row):
                end = text.find(item) + len(item)
                following += [w for w in words(text[end:])[:COUNTED_WITHIN] if w not in FUNCTION_WORDS]
        following = list(dict.fromkeys(following))
        if not following:
            return False
        vectors = self.encoder.encode_words([" ".join(analysed.expected.counted), *following])
        return float((vectors[1:] @ vectors[0]).max()) >= OTHER_COUNT_SIMILARITY

    def _spoken_before(self, analysed: Question, top: Candidate, quote: str) -> bool:
        """'"…," the newspaper said': the quote speaks for whom the sentence before it names."""
        before = top.quote_rows[0] - 1
        if "speaker-before-conf" not in self.rules or not SPEAKER_NAMED_BEFORE.search(quote) \
                or not self.retriever.same_article(before, top.quote_rows[0]):
            return False
        return self._quotes_who_was_asked(analysed.text, f"{self.index.sentence_text(before)} {quote}")

    def _quotes_who_was_asked(self, question: str, sentence: str) -> bool:
        """For "what did X say", the quote must be X speaking (or reported as speaking)."""
        asked = speaker_asked(question)
        if asked is None:
            return True
        speaker = set(self.retriever.terms(asked))
        return bool(speaker & set(self.retriever.terms(sentence))) and bool(SPEECH.search(sentence))

    def _mentions(self, article: str, name: str) -> bool:
        """Whether the article names it: the word, a close form of it, a part of a hyphenated word
        ("london-based"), or for "pro-assad" or "al-awsat" the word, or the name after its prefix."""
        known = self.retriever.article_words(article)
        if name in known:
            return True
        prefix, hyphen, rest = name.partition("-")
        if hyphen and prefix.isalpha() and rest and self._mentions(article, rest):
            return True
        if any(name in w.split("-") for w in known if "-" in w):
            return True  # "London" in "London-based"
        stem = name[:SHARED_PREFIX]
        return len(name) > SHARED_PREFIX and any(
            w.startswith(stem) and abs(len(w) - len(name)) <= 3 for w in known)

    def _passage(self, candidate: Candidate) -> Passage:
        """The sentences a candidate shows: its window, widened to its quote, less what was shown."""
        sentences = self.index.sentences
        article = self.index.articles[self.index.chunks[candidate.chunk].article_id]
        quote_start, quote_end = sentences[candidate.quote_rows[0]][1], sentences[candidate.quote_rows[-1]][2]
        start, end = sentences[candidate.rows[0]][1], sentences[candidate.rows[-1]][2]
        return Passage(
            text=article.text[start:end],
            source=article.info,
            score=candidate.score,
            start=start,
            end=end,
            quote=article.text[quote_start:quote_end],
            also_in=tuple(self.index.articles[a].info for a in candidate.also_in),
        )

    def _credited(self, passages: list[Passage]) -> tuple[Passage, ...]:
        """Each syndicated passage credited to its original: of the articles carrying it word for
        word, the one published first, then the one that says most of itself (title, outlet,
        author), then the one ranked; unless that article's span overlaps another passage shown."""
        def provenance(info: ArticleInfo) -> tuple[bool, str, int]:
            return (info.published is None, info.published or "",
                    -sum(x is not None for x in (info.title, info.outlet, info.author)))

        credited = list(passages)
        for i, passage in enumerate(passages):
            for info in sorted(passage.also_in, key=provenance):
                if provenance(info) >= provenance(passage.source):
                    break
                at = self.index.articles[info.id].text.find(passage.text)
                end = at + len(passage.text)
                if at < 0 or any(p.source.id == info.id and p.start < end and at < p.end for p in credited):
                    continue
                credited[i] = replace(passage, source=info, start=at, end=end, also_in=tuple(
                    a for a in (passage.source, *passage.also_in) if a.id != info.id))
                break
        return tuple(credited)


def _all_held(terms: set[str], held: set[str]) -> bool:
    """Whether each term is held, or a close form of it ("iran" by "iranian", "syrian" by "syria")."""
    def close(t: str, h: str) -> bool:
        return min(len(t), len(h)) >= SHARED_PREFIX and abs(len(t) - len(h)) <= 3 and (
            h.startswith(t) or t.startswith(h))

    return all(t in held or any(close(t, h) for h in held) for t in terms)
