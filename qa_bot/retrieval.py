"""Question -> ranked, de-duplicated passages: dense (FAISS) and lexical (BM25) rankings fused.

Three rankings of the passages are fused by reciprocal rank: the passage's cosine to the question,
its best sentence's score (cosine plus the share of the question's terms it holds), and BM25.
The fused score is then nudged by what the best sentence offers the question: an item of the kind
asked for that the question does not already name (a town for "which town", a sum for "how much")
and the question's own phrases. The quote is the best sentence, or the sentence next to it that
holds the item asked for: headlines and leads restate a question, the fact comes a sentence later.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from qa_bot.answer_types import Expected, asked_words, expected_answer, new_items
from qa_bot.index import Index
from qa_bot.lexical import FUNCTION_WORDS, STEMMER, LexicalIndex, terms, words
from qa_bot.paraphrase import CloseWords
from qa_bot.types import CONTEXT_SEPARATOR
from qa_bot.vectors import VectorStore, scores_of

QUOTE_POOL = 20  # passages whose quotes are worked out before the final ranking
RRF_K = 60  # the usual reciprocal-rank-fusion constant: damps the weight of the very top ranks
CANDIDATES = 50  # passages taken from each ranking before fusion
SENTENCE_SIMILARITY_WEIGHT = 0.6  # a sentence's score: cosine and the question terms it covers
SENTENCE_COVERAGE_WEIGHT = 0.4
ANSWER_TYPE_BONUS = 0.1  # a new name of the kind asked for (see README for the measurements)
NUMBER_TYPE_BONUS = 0.2  # a new number, date, time or sum: found more reliably, so worth more
PHRASE_BONUS = 0.2
VAGUE_SHARE = 0.5  # of the answer bonus for a date or time without a digit ("this summer", "afternoon")
BEYOND_HEADLINE_BONUS = 0.1  # for the question's words its headline lacks; half without the item
QUOTE_NEIGHBOUR_RATIO = 0.7  # a neighbour scoring this share of the best sentence joins the quote
ANSWER_NEIGHBOUR_RATIO = 0.4  # a neighbour holding the item asked for may score this much less
ANSWER_NEIGHBOUR_REACH = (1, -1, 2)  # where that neighbour is looked for (the best scoring is taken)
SPEAKER_REACH = (1, 2)  # how many sentences back the speaker of a pronoun's quote is looked for
COUNTED_WITHIN = 4  # words after a number that may name what it counts: "400 Russian soldiers"
SENTENCE_CACHE = 200_000  # sentences whose byline test is kept
ARTICLE_CACHE = 4096  # articles whose words are kept
_PAIR = 1 << 31  # a pair of word numbers (each below 2^31) as one number: first * _PAIR + second
AUTHOR_BONUS = 1.0  # "who wrote it?" is answered by a byline, whatever else matches
ACRONYM_SOURCES = 20  # passages holding an acronym that are read for where the corpus spells it out
OPENING_ROWS = 4  # an article's opening: its first rows, up to and including the lead sentence
LEAD_WORDS = 8  # the lead: the first full sentence this long
HEADING_PENALTY = 0.05  # a headline or crosshead is context, rarely the quote
CONTEXT_TERM_WEIGHT = 0.1  # a follow-up's context words ("… — how many soldiers left Damascus?") weigh this
# share in a sentence's term coverage: they place the question, its own words ask it

# Each hand-set rule, by name, so `qa-bot eval --ablate NAME` can measure what it is worth.
RULES = frozenset({
    "answer-type",  # a new item of the kind asked for lifts a sentence
    "phrase",  # the question's own word pairs lift a sentence
    "answer-neighbour",  # the quote moves to the neighbour holding the item asked for
    "join-neighbour",  # a neighbour scoring nearly as well joins the quote
    "quote-bonus",  # a passage whose quote holds the item asked for is lifted like one whose best does
    "same-article-overlap",  # passages overlapping one shown above are not shown again
    "close-words",  # "how many troops" is also answered by a count of soldiers (the corpus's close words)
    "speaker-before",  # for "who said…", '"…," she said' is quoted from the sentence naming her
    "beyond-headline",  # a sentence holding the question's words that its headline lacks is lifted
    "vague-dates",  # a date or time without a digit ("this summer") earns half the answer bonus
    "article-context",  # a sentence is read in its article: the question terms of its title and lead
    "within-article",  # the fused ranks choose the article, the best sentence the passage within it
    "heading-quote",  # a headline is context, rarely the quote
    "acronyms",  # "HTS" is also held by "Hayat Tahrir al-Sham", as the corpus spells it out
})

_BY = re.compile(r"^(?:by|words:?|text:?)\s+", re.IGNORECASE)
_BYLINE = re.compile(r"^(?:By|BY|Words:|Text:)\s+[A-Z]")
MAX_BYLINE_WORDS = 12
# '"…," she said': a quote whose speaker is named in an earlier sentence.
SPEAKER_NAMED_BEFORE = re.compile(r"\b(?:he|she|they|the \w+)(?: also| later| further)? "
                                  r"(?:said|says|added|told|explained|warned|continued|insisted|reported|reports)\b|"
                                  r"\b(?:said|says|added) (?:he|she)\b|"
                                  r"\baccording to (?:the|its|his|her|their) \w+", re.IGNORECASE)
_ACRONYM = re.compile(r"\b[A-Z]{2,6}\b")
_ASKS_WEEKDAY = re.compile(r"\b(?:which|what) days?\b", re.IGNORECASE)
_TERMINAL = re.compile(r"[.!?…\"'”’)]\s*$")
# "Who wrote it?", "the author of the report": the byline. A study's lead author is a person named in it.
_ASKS_AUTHOR = re.compile(r"\bwho (?:wrote|authored|filed|penned)\b|(?<!lead )(?<!senior )(?<!first )(?<!co-)"
                          r"\bauthor\b|\bbyline\b|\bwritten by\b", re.IGNORECASE)


@dataclass(frozen=True)
class Question:
    """A question as the rankers see it."""

    text: str
    vector: np.ndarray
    term_weights: dict[str, float]  # stemmed content words and their IDF (unknown words weigh most)
    phrases: frozenset[tuple[str, str]]  # adjacent word pairs that are not both function words
    expected: Expected | None  # the kind of item asked for, when the question says
    counted: frozenset[str]  # for "how many X", stems of X
    words: frozenset[str]  # its lower-cased words and numbers: an item among them is not new
    asks_author: bool
    vague_items_half: bool = False  # a date or time asked for, not a day of the week
    spelled_out: tuple[tuple[str, frozenset[str]], ...] = ()  # an acronym's term, and its words' terms

    @property
    def lexical_text(self) -> str:
        """What BM25 searches: the question, and the words its acronyms stand for."""
        return " ".join([self.text, *(" ".join(words) for _, words in self.spelled_out)])


@dataclass(frozen=True)
class ScoredSentence:
    """A sentence of a passage and what it offers the question."""

    row: int  # sentence row in the index
    similarity: float
    coverage: float  # IDF-weighted share of the question's terms it contains
    in_context: float  # the same, counting the terms its article's title and lead hold as its own
    bonus: float  # expected answer type and shared phrases
    typed: bool  # holds a new item of the kind asked for

    @property
    def match(self) -> float:
        """How well the sentence matches the question, without the bonuses (0..1)."""
        return _match(self.similarity, self.in_context)


@dataclass(frozen=True)
class Candidate:
    """A passage ranked for a question."""

    chunk: int  # passage row
    score: float  # fused score, the best about 1
    passage_similarity: float
    best: ScoredSentence
    quote_rows: tuple[int, ...]  # consecutive sentence rows of one article: the quote
    also_in: tuple[str, ...]  # ids of other articles carrying the same passage
    rows: tuple[int, ...]  # consecutive sentence rows shown: the passage, widened to its quote
    quote_coverage: float = 0.0  # the share of the question's terms the quote holds, all its sentences


class Retriever:
    """Searches one loaded index; safe to share between threads (read-only after start-up)."""

    def __init__(self, index: Index, rules: frozenset[str] = RULES,
                 word_vectors: tuple[dict[str, int], np.ndarray] | None = None) -> None:
        self.index = index
        self.rules = rules
        # Per sentence (and article), worked out when a question first meets it, not at start-up,
        # and kept for the sentences met most recently.
        self._byline = lru_cache(maxsize=SENTENCE_CACHE)(self._is_byline)
        self.article_words = lru_cache(maxsize=ARTICLE_CACHE)(self._article_words)
        self._headline_terms = lru_cache(maxsize=ARTICLE_CACHE)(lambda text: frozenset(terms(text)))
        self._opening_terms = lru_cache(maxsize=ARTICLE_CACHE)(self._opening)
        self._acronym_words = lru_cache(maxsize=ARTICLE_CACHE)(self._spelled_out)
        self._close_words = CloseWords(*word_vectors, index.rows.known_words(), STEMMER.stemWord) \
            if word_vectors is not None else None

    def _is_byline(self, row: int) -> bool:
        """"By Jane Smith · 3 May 2016", or a line that starts with the article's author."""
        text = self.index.sentence_text(row)
        author = self.index.sentence_article(row).info.author
        return bool(_BYLINE.match(text)) and len(text.split()) <= MAX_BYLINE_WORDS \
            or bool(author) and _BY.sub("", text).startswith(str(author))

    def name_labels(self, word: str) -> frozenset[str]:
        """The entity labels of a capitalised name word the corpus never writes in lower case
        ("putin": PERSON; nothing for "embassy")."""
        return self.index.rows.name_labels(word) or frozenset()

    def _headlines(self, rows: list[int]) -> dict[str, frozenset[str]]:
        """The terms of the headline of each article these sentence rows are in: its title, or for
        an article without one, the first of these rows in it (read already, in every store)."""
        first: dict[str, int] = {}
        for row in rows:
            article_id = self.index.sentences[row][0]
            first[article_id] = min(row, first.get(article_id, row))
        return {a: self._headline_terms(self.index.articles[a].info.title or self.index.sentence_text(r))
                for a, r in first.items()}

    def _opening(self, article_id: str) -> frozenset[str]:
        """The terms of an article's title and opening lines, up to its lead sentence: what every
        sentence of it is about ("The pod was spotted at 6.15am" is about the stranded whales)."""
        texts = [self.index.articles[article_id].info.title or ""]
        for row in self.index.rows.article_sentences(article_id)[:OPENING_ROWS]:
            text = self.index.sentence_text(row)
            texts.append(text)
            if _TERMINAL.search(text) and len(text.split()) >= LEAD_WORDS:
                break
        return frozenset(terms(" ".join(texts)))

    def _article_words(self, article_id: str) -> frozenset[str]:
        """The lower-cased words of an article."""
        return frozenset(words(self.index.articles[article_id].text))

    def terms(self, text: str) -> list[str]:
        """Stemmed content words."""
        return terms(text)

    def question(self, text: str, vector: np.ndarray) -> Question:
        """Analyse a question once for all the rankers."""
        weights = self.index.lexicon.term_weights(self.terms(text))
        own = text.split(CONTEXT_SEPARATOR)[0]  # a follow-up read with context asks what its own words ask;
        if own != text:  # the context's words only place it
            mine = set(self.terms(own))
            weights = {t: w if t in mine else w * CONTEXT_TERM_WEIGHT for t, w in weights.items()}
        asks_author = bool(_ASKS_AUTHOR.search(own))
        expected = None if asks_author else expected_answer(own)
        counted = self._counted(expected.counted) if expected else frozenset()
        vague_half = expected is not None and expected.kind in ("date", "time") \
            and "vague-dates" in self.rules and not _ASKS_WEEKDAY.search(own)
        spelled_out = []
        if "acronyms" in self.rules:
            for acronym in dict.fromkeys(_ACRONYM.findall(text)):
                stands_for = self._acronym_words(acronym)
                if stands_for and set(terms(acronym)) <= set(weights):
                    spelled_out.append((terms(acronym)[0], frozenset(terms(stands_for))))
        return Question(text, vector, weights, _phrases(text), expected, counted,
                        asked_words(text), asks_author, vague_half, tuple(spelled_out))

    def _spelled_out(self, acronym: str) -> str | None:
        """The words an acronym stands for, where an article says so: "Hayat Tahrir al-Sham (HTS)",
        "the Institute for the Study of War (ISW)"."""
        defined = re.compile(rf"((?:[\w'’-]+\s+){{1,8}})\({acronym}\)")
        for row in self.index.lexicon.top(acronym, ACRONYM_SOURCES):
            chunk = self.index.chunks[row]
            for m in defined.finditer(self.index.articles[chunk.article_id].text[chunk.start:chunk.end]):
                words = m.group(1).split()
                for first in range(len(words) - 1, -1, -1):
                    initials = "".join(_initial(w) for w in words[first:])
                    if initials == acronym:
                        return " ".join(words[first:])
                    if len(initials) >= len(acronym):
                        break
        return None

    def _counted(self, counted: tuple[str, ...]) -> frozenset[str]:
        """Stems of what "how many X" counts, and of the corpus's words close to X. Names are left
        out, unless a name is all there is: "100 Russian officials" does not count "russian troops",
        "7,600 Syrians" counts "syrians"."""
        counted = tuple(w for w in counted if self.index.rows.name_labels(w.lower()) is None) or counted
        stems = set(self.terms(" ".join(counted)))
        if self._close_words is not None and "close-words" in self.rules:
            stems |= {c for word in counted for c in self._close_words.of(word.lower())}
        return frozenset(stems)

    def search(self, question: Question, k: int) -> list[Candidate]:
        """The k best passages, a syndicated copy listed once with every article carrying it."""
        index = self.index
        n = len(index.chunks)
        if n == 0:
            return []
        scores, rows = index.passage_vectors.search(question.vector, CANDIDATES)
        dense = rows.tolist()
        passage_sim = dict(zip(dense, scores.tolist(), strict=True))
        lexical = index.lexicon.top(question.lexical_text, CANDIDATES)
        sentence_sim = _Similarities(index.sentence_vectors, question.vector, 2 * CANDIDATES)
        index.rows.prefetch(sentences=sentence_sim.nearest)
        pool = set(dense) | set(lexical) | {index.rows.passage_of_sentence(r) for r in sentence_sim.nearest}
        index.rows.prefetch(passages=pool)
        pooled_sentences = [r for c in pool for r in index.chunk_sentences[c]]
        headlines = self._headlines(pooled_sentences) \
            if question.expected is not None and "beyond-headline" in self.rules else {}
        sentence_sim.prefetch(pooled_sentences)
        overlap = _Overlap(index.lexicon, question)
        overlap.prefetch(pooled_sentences)
        scored: dict[int, ScoredSentence] = {}  # each sentence is scored once per question
        # similarity, coverage, phrase bonus, and the bonus a sentence holding the item earns too
        bounds: dict[int, tuple[float, float, float, float]] = {}

        def untyped(row: int) -> tuple[float, float, float, float]:
            if row not in bounds:
                bounds[row] = self._untyped(row, question, sentence_sim, overlap, headlines)
            return bounds[row]

        def score(row: int) -> ScoredSentence:
            if row not in scored:
                scored[row] = self._score(row, question, untyped(row), overlap.coverage(row))
            return scored[row]

        most = self._most_bonus(question)
        best = {c: self._best_sentence(c, score, untyped, most) for c in pool}
        rankings = [dense, sorted(pool, key=lambda c: -best[c].match)[:CANDIDATES], lexical]
        fused: dict[int, float] = defaultdict(float)
        for ranking in rankings:
            for rank, c in enumerate(ranking):
                fused[c] += 1.0 / (RRF_K + rank + 1)
        top = max(fused.values())
        # Quotes (and the bonus a quote's neighbour earns) only for the passages that can still
        # reach the top k: the bonus is at most ANSWER_TYPE_BONUS.
        first = {c: s / top + best[c].bonus for c, s in fused.items()}
        contenders = sorted(first, key=lambda c: -first[c])[:max(QUOTE_POOL, 4 * k)]
        # A quote may take in a neighbour of the best sentence: their scores are read in one go.
        nearby = [r for c in contenders for r in (best[c].row - 1, best[c].row + 1, best[c].row + 2)
                  if self.same_article(r, best[c].row)]
        overlap.prefetch(nearby)
        sentence_sim.prefetch(nearby)
        quotes = {c: self._quote_rows(question, best[c], score) for c in contenders}
        bonus = {c: self._passage_bonus(question, best[c], quotes[c]) for c in contenders}
        if "within-article" in self.rules:
            final = self._within_articles(question, contenders, first, best, quotes, bonus, score)
        else:
            final = {c: first[c] - best[c].bonus + bonus[c] for c in contenders}
        ranked = sorted(final, key=lambda c: -final[c])
        return [
            Candidate(c, round(final[c], 4), passage_sim.get(c, best[c].similarity), best[c],
                      quotes[c], also_in, rows, overlap.coverage_of(quotes[c]))
            for c, also_in, rows in self._without_copies(ranked, best, quotes, k)
        ]

    def _within_articles(self, question: Question, contenders: list[int], fused: dict[int, float],
                         best: dict[int, ScoredSentence], quotes: dict[int, tuple[int, ...]],
                         bonus: dict[int, float], score: Callable[[int], ScoredSentence]) -> dict[int, float]:
        """The fused rankings find the article; within it, the sentence that answers decides (the
        lead restates the question, the fact is sentences further on). An article's fused scores,
        best first, go to its passages in the order of their sentences' match and bonus, and each
        passage adds its own. For a question that says what kind of item it wants, a quote without
        one is an answer bonus weaker; a headline or crosshead quoted alone is a little weaker too."""
        strength = {c: best[c].match + bonus[c] for c in contenders}
        certain = question.expected is not None and question.expected.certain
        for c in contenders:
            if certain and not any(score(r).typed for r in quotes[c]):
                strength[c] -= ANSWER_TYPE_BONUS
            if "heading-quote" in self.rules and all(self.is_heading(r) for r in quotes[c]):
                strength[c] -= HEADING_PENALTY
        by_article: dict[str, list[int]] = defaultdict(list)
        for c in contenders:
            by_article[self.index.chunks[c].article_id].append(c)
        final = {}
        for passages in by_article.values():
            ranks = sorted((fused[c] - best[c].bonus for c in passages), reverse=True)
            for rank, c in zip(ranks, sorted(passages, key=lambda c: -strength[c]), strict=True):
                final[c] = rank + strength[c]
        return final

    def _passage_bonus(self, question: Question, best: ScoredSentence, quote: tuple[int, ...]) -> float:
        """The best sentence's bonus; the answer bonus too when its quote's neighbour holds the item."""
        if best.typed or question.expected is None or "quote-bonus" not in self.rules \
                or best.row in quote and len(quote) == 1:
            return best.bonus
        # A neighbour's item earns the base bonus only: the best sentence did not hold it.
        return best.bonus + ANSWER_TYPE_BONUS if any(self.new_items(question, r) for r in quote) \
            else best.bonus

    @staticmethod
    def _type_bonus(question: Question) -> float:
        numeric = question.expected is not None and question.expected.numeric
        return NUMBER_TYPE_BONUS if numeric else ANSWER_TYPE_BONUS

    def _best_sentence(self, chunk: int, score: Callable[[int], ScoredSentence],
                       untyped: Callable[[int], tuple[float, float, float, float]], most: float,
                       ) -> ScoredSentence:
        """The passage's sentence with the highest match plus bonus, the first of equals. A sentence
        that could not beat the best so far even with the answer bonus is not typed (the costly part)."""
        ceilings = sorted((-(_match(*untyped(row)[:2]) + untyped(row)[2] + untyped(row)[3] + most), row)
                          for row in self.index.chunk_sentences[chunk])
        best = score(ceilings[0][1])
        for ceiling, row in ceilings[1:]:
            if -ceiling + 1e-9 < best.match + best.bonus:
                break
            sentence = score(row)
            strength, best_strength = sentence.match + sentence.bonus, best.match + best.bonus
            if strength > best_strength or strength == best_strength and row < best.row:
                best = sentence
        return best

    def _most_bonus(self, question: Question) -> float:
        """The most a sentence's answer-type (or byline) test can add to its bonus."""
        if question.asks_author:
            return AUTHOR_BONUS
        return self._type_bonus(question) if question.expected is not None else 0.0

    def _untyped(self, row: int, question: Question, similarity: _Similarities,
                 overlap: _Overlap, headlines: dict[str, frozenset[str]],
                 ) -> tuple[float, float, float, float]:
        """A sentence's cosine, coverage and phrase bonus, and the bonus it earns if it holds the
        item asked for: what it scores before typing its items."""
        phrase = beyond = 0.0
        if question.phrases and "phrase" in self.rules and not question.asks_author:
            phrase = PHRASE_BONUS * overlap.phrases(row) / len(question.phrases)
        article = self.index.sentences[row][0]
        headline = headlines.get(article)
        if headline is not None:
            # The headline names the story; the words it lacks are the fact asked about ("spotted").
            beyond = BEYOND_HEADLINE_BONUS * overlap.coverage(row, outside=headline)
        in_context = overlap.coverage(row, context=self._opening_terms(article)) \
            if "article-context" in self.rules else overlap.coverage(row)
        return float(similarity[row]), in_context, phrase, beyond

    def _score(self, row: int, question: Question, untyped: tuple[float, float, float, float],
               own_coverage: float) -> ScoredSentence:
        similarity, coverage, phrase, beyond = untyped  # coverage: in its article's context
        items = self.new_items(question, row)
        typed = bool(items) and not self._byline(row)
        if question.asks_author:
            bonus = AUTHOR_BONUS if self._byline(row) else 0.0
        else:
            type_bonus = self._type_bonus(question)
            if question.vague_items_half and not any(c.isdigit() for item in items for c in item):
                type_bonus *= VAGUE_SHARE  # "on Saturday afternoon" answers "what time?" less than "4.25pm"
            bonus = (type_bonus if typed and "answer-type" in self.rules else 0.0) + phrase
            bonus += beyond if typed else beyond / 2  # full for the sentence that holds the item
        return ScoredSentence(row, similarity, own_coverage, coverage, bonus, typed)

    def new_items(self, question: Question, row: int) -> list[str]:
        """Items of the kind the question asks for in a sentence, not named by the question."""
        if question.expected is None:
            return []
        return new_items(question.expected, self.index.sentence_text(row),
                         self.index.sentence_entities[row], question.words,
                         lambda sentence, end: self._counts(question, sentence, end))

    def _counts(self, question: Question, sentence: str, end: int) -> bool:
        """Whether the words after a number name what "how many X" counts: "400 soldiers"."""
        following = self.terms(" ".join(sentence[end:].split()[:COUNTED_WITHIN]))
        return bool(question.counted & set(following))

    def _quote_rows(self, question: Question, best: ScoredSentence,
                    score: Callable[[int], ScoredSentence]) -> tuple[int, ...]:
        """The sentence to quote, and the neighbour that completes it.

        When the best sentence lacks the item asked for but a sentence next to it (or two after it)
        holds one, that sentence is the answer: "The worst-hit town was Kelso" after the headline
        "Floods cut off river towns". A restating sentence in the same paragraph stays as context;
        a headline does not. Otherwise a neighbour scoring nearly as well joins the quote.
        """
        if question.asks_author:
            return (best.row,)
        strength = best.match + best.bonus
        if question.expected is not None and question.expected.speaker and "speaker-before" in self.rules \
                and SPEAKER_NAMED_BEFORE.search(self.index.sentence_text(best.row)):
            # '"…," she said': the quote begins at the sentence that names her.
            for step in SPEAKER_REACH:
                row = best.row - step
                if not self.same_article(row, best.row):
                    break
                if score(row).typed:
                    return tuple(range(row, best.row + 1))
        if question.expected is not None and not best.typed and "answer-neighbour" in self.rules:
            holding = [near for step in ANSWER_NEIGHBOUR_REACH
                       if self.same_article(best.row + step, best.row)
                       and (near := score(best.row + step)).typed
                       and near.match + near.bonus >= ANSWER_NEIGHBOUR_RATIO * strength]
            if holding:
                row = max(holding, key=lambda s: s.match + s.bonus).row  # the first of equals
                if abs(row - best.row) == 1 and self._same_paragraph(row, best.row) \
                        and not self.is_heading(best.row):
                    return tuple(sorted((best.row, row)))
                return (row,)
        neighbours = [row for row in (best.row - 1, best.row + 1)
                      if self.same_article(row, best.row) and self._same_paragraph(row, best.row)]
        if not neighbours:
            return (best.row,)
        runner_up = max((score(r) for r in neighbours), key=lambda s: s.match + s.bonus)
        if runner_up.match + runner_up.bonus >= QUOTE_NEIGHBOUR_RATIO * strength \
                and "join-neighbour" in self.rules:
            return tuple(sorted((best.row, runner_up.row)))
        return (best.row,)

    def same_article(self, row: int, other: int) -> bool:
        """Whether sentence `row` is of `other`'s article (an article's rows are consecutive, so
        the row's own article need not be read; a row outside the index is of none)."""
        return row in self.index.rows.article_sentences(self.index.sentences[other][0])

    def is_heading(self, row: int) -> bool:
        """A headline or crosshead: a line with no sentence punctuation at its end."""
        return not _TERMINAL.search(self.index.sentence_text(row))

    def _same_paragraph(self, a: int, b: int) -> bool:
        _, start, _ = self.index.sentences[min(a, b)]
        _, next_start, _ = self.index.sentences[max(a, b)]
        return "\n" not in self.index.sentence_article(a).text[start:next_start]

    def _without_copies(
        self, ranked: list[int], best: dict[int, ScoredSentence], quotes: dict[int, tuple[int, ...]],
        k: int
    ) -> list[tuple[int, tuple[str, ...], tuple[int, ...]]]:
        """Keep the best-ranked copy of each passage; name the articles whose copies were dropped.

        A passage is a copy when another article repeats most of it, or when its best sentence
        is already shown in a passage ranked above it (syndicated sentences). Of a passage that
        overlaps one of its article ranked above it (overlapping windows, a quote reaching into
        the next window), only the sentences not shown yet are shown; none if its quote was.
        """
        chunks = self.index.chunks
        chosen: list[int] = []
        shown: set[int] = set()  # sentence rows of the chosen passages and their quotes
        also_in: dict[int, set[str]] = {}
        rows_of: dict[int, tuple[int, ...]] = {}
        shown_text: dict[int, str] = {}
        for c in ranked:
            rows = self._shown_rows(c, quotes[c])
            if "same-article-overlap" in self.rules and shown.intersection(rows):
                if shown & set(quotes[c]):
                    continue
                rows = _unshown_run(rows, quotes[c], shown)
            sentence = _normal(self.index.sentence_text(best[c].row))
            text = self._rows_normal(rows)
            original = next((o for o in chosen if c in self.index.copies[o] or sentence in shown_text[o]
                             or text in shown_text[o] or shown_text[o] in text), None)
            if original is not None:
                also_in[original].add(chunks[c].article_id)
                continue
            shown |= set(rows)
            shown_text[c] = text
            rows_of[c] = rows
            chosen.append(c)
            also_in[c] = {chunks[o].article_id for o in self.index.copies[c]}
            if len(chosen) == k:
                break
        return [(c, tuple(sorted(also_in[c] - {chunks[c].article_id})), rows_of[c]) for c in chosen]

    def _rows_normal(self, rows: tuple[int, ...]) -> str:
        _, start, _ = self.index.sentences[rows[0]]
        return _normal(self.index.sentence_article(rows[0]).text[start: self.index.sentences[rows[-1]][2]])

    def _shown_rows(self, chunk: int, quote_rows: tuple[int, ...]) -> tuple[int, ...]:
        rows = self.index.chunk_sentences[chunk] + list(quote_rows)
        return tuple(range(min(rows), max(rows) + 1))


class _Similarities:
    """Cosines of sentence rows to one question: the nearest found through the vector store, the
    rest read when a ranker first needs them."""

    def __init__(self, store: VectorStore, query: np.ndarray, nearest: int) -> None:
        self._store = store
        self._query = query
        scores, rows = store.search(query, nearest)
        self.nearest: list[int] = rows.tolist()
        self._known = dict(zip(self.nearest, scores.tolist(), strict=True))

    def prefetch(self, rows: Iterable[int]) -> None:
        """Work out the cosines of these rows in one product."""
        wanted = sorted({r for r in rows if r not in self._known})
        if wanted:
            scores = scores_of(self._store.vectors_of(wanted), self._query)
            self._known.update(zip(wanted, scores.tolist(), strict=True))

    def __getitem__(self, row: int) -> float:
        if row not in self._known:
            self.prefetch((row,))
        return self._known[row]


class _Overlap:
    """What sentence rows share with one question: the IDF-weighted share of its terms, and how
    many of its word pairs they hold, from the word numbers stored for each sentence."""

    def __init__(self, lexicon: LexicalIndex, question: Question) -> None:
        self._lexicon = lexicon
        order = list(question.term_weights)
        self._order = order
        numbers = lexicon.term_numbers(order)
        self._weights = list(question.term_weights.values())
        self._total = sum(self._weights)
        self._term_at = {numbers[t]: i for i, t in enumerate(order) if t in numbers}
        # An acronym's term is held by a sentence that holds every term of the words it stands for.
        spelled = lexicon.term_numbers([t for _, words in question.spelled_out for t in words])
        self._spelled_out = [(order.index(acronym), frozenset(spelled[t] for t in words))
                             for acronym, words in question.spelled_out
                             if acronym in order and all(t in spelled for t in words)]
        self._sought = np.fromiter(set(self._term_at) | {n for _, ns in self._spelled_out for n in ns},
                                   dtype=np.int64)
        known = lexicon.word_numbers([w for pair in question.phrases for w in pair])
        pairs = {(known[a], known[b]) for a, b in question.phrases if a in known and b in known}
        self._pair_codes = np.array(sorted(a * _PAIR + b for a, b in pairs), dtype=np.int64)
        self._known: dict[int, tuple[float, int]] = {}
        self._present: dict[int, frozenset[int]] = {}  # row -> positions of the terms it holds
        self._outside: dict[frozenset[str], tuple[list[int], float]] = {}  # terms -> the rest, weight

    def prefetch(self, rows: Iterable[int]) -> None:
        """Work out the coverage and word pairs of these rows at once."""
        wanted = sorted({r for r in rows if r not in self._known})
        if not wanted:
            return
        words, terms, lengths = self._lexicon.sentence_terms(wanted)
        owner = np.repeat(np.arange(len(wanted)), lengths)
        present: dict[int, set[int]] = defaultdict(set)  # owner -> positions of the question's terms
        hits = np.flatnonzero(np.isin(terms, self._sought))
        held: dict[int, set[int]] = defaultdict(set)  # owner -> term numbers of the spelled-out words
        for o, t in zip(owner[hits].tolist(), terms[hits].tolist(), strict=True):
            if t in self._term_at:
                present[o].add(self._term_at[t])
            held[o].add(t)
        for o in list(held):
            present[o] |= {at for at, numbers in self._spelled_out if numbers <= held[o]}
        pairs: dict[int, set[int]] = defaultdict(set)  # owner -> the question's pairs it holds
        if len(self._pair_codes) and len(words) > 1:
            codes = words[:-1].astype(np.int64) * _PAIR + words[1:]
            hits = np.flatnonzero(np.isin(codes, self._pair_codes) & (owner[:-1] == owner[1:]))
            for o, code in zip(owner[hits].tolist(), codes[hits].tolist(), strict=True):
                pairs[o].add(code)
        for o, row in enumerate(wanted):
            covered = sum(self._weights[i] for i in sorted(present[o])) / self._total if self._total else 0.0
            self._known[row] = (covered, len(pairs[o]))
            self._present[row] = frozenset(present[o])

    def coverage(self, row: int, outside: frozenset[str] | None = None,
                 context: frozenset[str] | None = None) -> float:
        """The IDF-weighted share of the question's terms the sentence holds (0..1); with
        `outside`, of the question's terms not among those; with `context`, counting the terms
        of the context as held."""
        if row not in self._known:
            self.prefetch((row,))
        if context is not None:
            held = self._present[row]
            return sum(w for i, w in enumerate(self._weights) if i in held or self._order[i] in context) \
                / self._total if self._total else 0.0
        if outside is None:
            return self._known[row][0]
        if outside not in self._outside:
            asked = [i for i, t in enumerate(self._order) if t not in outside]
            self._outside[outside] = asked, sum(self._weights[i] for i in asked)
        asked, total = self._outside[outside]
        held = self._present[row]
        return sum(self._weights[i] for i in asked if i in held) / total if total else 0.0

    def coverage_of(self, rows: Iterable[int]) -> float:
        """The IDF-weighted share of the question's terms that these sentences hold together."""
        rows = list(rows)
        self.prefetch(rows)
        held = frozenset().union(*(self._present[r] for r in rows))
        return sum(self._weights[i] for i in held) / self._total if self._total else 0.0

    def phrases(self, row: int) -> int:
        """How many of the question's word pairs the sentence holds."""
        if row not in self._known:
            self.prefetch((row,))
        return self._known[row][1]


def _unshown_run(rows: tuple[int, ...], quote: tuple[int, ...], shown: set[int]) -> tuple[int, ...]:
    """The run of rows around the quote that stops where the shown rows begin."""
    first, last = min(quote), max(quote)
    while first - 1 in rows and first - 1 not in shown:
        first -= 1
    while last + 1 in rows and last + 1 not in shown:
        last += 1
    return tuple(range(first, last + 1))


def _initial(word: str) -> str:
    """A word's letter in an acronym: its capital ("Hayat" H, "al-Sham" S); none for "for", "the"."""
    word = word.split("-")[-1]
    return word[0] if word[:1].isupper() else ""


def _match(similarity: float, coverage: float) -> float:
    return SENTENCE_SIMILARITY_WEIGHT * similarity + SENTENCE_COVERAGE_WEIGHT * coverage


def _normal(text: str) -> str:
    return " ".join(words(text))


def _phrases(text: str) -> frozenset[tuple[str, str]]:
    w = words(text)
    return frozenset((a, b) for a, b in zip(w, w[1:], strict=False)
                     if not (a in FUNCTION_WORDS and b in FUNCTION_WORDS))


