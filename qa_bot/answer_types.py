"""What kind of thing a question asks for, and whether a sentence holds a new one.

"Which town…" asks for a place, "how much…" for an amount, "why…" for a cause. A sentence answers
only if it holds an item of that kind the question does not already name: "The worst-hit town was
Kelso" answers "which town was worst hit by the floods?", the headline "Floods cut off river towns"
does not. Items are the named entities tagged at index time, and for numbers, dates, times and
causes also their plain written forms, which the tagger sometimes misses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from qa_bot.entities import Entity

NAMES = frozenset({"PERSON", "ORG", "GPE", "LOC", "FAC", "NORP", "PRODUCT", "EVENT", "WORK_OF_ART",
                    "LAW"})
_NUMBER = re.compile(r"\d+(?:[,.]\d+)*|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                     r"twenty|thirty|forty|fifty|hundreds?|thousands?|millions?|billions?|dozens?|"
                     r"half|several)\b", re.IGNORECASE)
_MONEY = re.compile(r"[$€£¥₽]\s?\d+(?:[,.]\d+)*(?:\s?(?:m|bn|k|million|billion)\b)?|"
                    r"\d[\d,.]*\s*(?:m|bn|k|thousand|million|billion|trillion)?\s*(?:dollars?|euros?|pounds?|"
                    r"roubles?|rubles?|yen|francs?|"
                    r"kwacha|rupees?|pence|cents?)\b|\b(?:US|NZ|A|C|HK)\$\s?\d", re.IGNORECASE)
_MONTH = (r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?")
_DATE = re.compile(rf"\b(?:1[89]\d\d|20\d\d|{_MONTH}|(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day|"
                   r"yesterday|today|tomorrow|tonight|(?:last|this|next) (?:week|month|year|weekend))\b")
_TIME = re.compile(r"\b\d{1,2}(?:[:.]\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.|GMT|BST|UTC|CET)\b|"
                   r"\b\d{1,2}:\d{2}\b|\b(?:noon|midday|midnight|dawn|dusk)\b", re.IGNORECASE)
_DURATION = re.compile(r"\b(?:\d[\d,.]*|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|"
                       r"twelve|several|a few|many)[\s-]+(?:\w+[\s-]+)?(?:seconds?|minutes?|hours?|days?|"
                       r"nights?|weeks?|months?|years?|decades?|centuries)\b", re.IGNORECASE)
_REASON = re.compile(r"\b(?:because|due to|owing to|as a result|result of|thanks to|caused by|blamed|"
                     r"blaming|citing|cited|reasons?|so that|in order to|for fear|in protest|"
                     r"aimed at|meant to|designed to|to (?:avoid|protect|prevent|ensure|reduce|stop|save))\b",
                     re.IGNORECASE)
# A name the tagger missed: a capitalised word that does not start the sentence ("Baba Amr").
_CAPITALISED = re.compile(r"(?<=\w[ ,(])[A-Z][\w'’-]+(?: (?:al-|de |van |von )?[A-Z][\w'’-]+)*")

# "What did X say about…": X speaks in a sentence that names X beside a word of speech or a quote mark.
_WHAT_SAID = re.compile(r"^\s*what (?:did|does|do|has|have|had) (?P<who>.+?) "
                        r"(?:say|said|tell|told|announce|claim|report|write|think|comment)\b",
                        re.IGNORECASE)
SPEECH = re.compile(r"\b(?:said|says|saying|say|told|tells|stated|states|announced|reported|reports|"
                    r"wrote|writes|added|warned|claimed|claims|quoted|according to|urged|insisted|"
                    r"argued|maintained|noted|stressed|confirmed|denied|promised|declared|replied|"
                    r"commented|described|called)\b|[“\"]", re.IGNORECASE)


def speaker_asked(question: str) -> str | None:
    """X of "what did X say / tell / report…", or None."""
    asked = _WHAT_SAID.match(question)
    return asked["who"] if asked else None


_PLACE_WORDS = frozenset(
    "town city country nation region province state village capital district area county port island "
    "place location neighbourhood neighborhood suburb border crossing airport street river sea coast "
    "continent territory municipality borough valley lake mountain base destination venue site "
    "stadium hospital prison".split())
_PERSON_WORDS = frozenset(
    "person man woman official minister president leader spokesman spokeswoman spokesperson journalist "
    "reporter commander general chief executive ceo player coach manager driver mayor judge lawyer "
    "senator candidate analyst expert scientist researcher author writer singer actor director head "
    "diplomat envoy ambassador doctor officer soldier king queen prince chairman chairwoman chair "
    "founder owner farmer resident worker student teacher professor economist governor captain "
    "striker goalkeeper athlete runner winner champion victim suspect witness member politician "
    "councillor councilor boss secretary negotiator academic curator architect artist composer "
    "singer pilot surgeon nurse spokesperson".split())
_ORG_WORDS = frozenset(
    "company firm organisation organization agency newspaper paper outlet publication broadcaster "
    "channel network bank group party club team union ministry department authority council "
    "university institute charity airline carrier brand court business retailer chain manufacturer "
    "maker operator regulator body association federation league sponsor insurer lender startup "
    "studio label publisher magazine website service supermarket school museum fund investor "
    "consortium coalition alliance militia faction journal watchdog broadcaster firm".split())
_DATE_WORDS = frozenset("year day date month week decade season century".split())
_MONEY_WORDS = frozenset(
    "money cost costs price prices fee fees fine salary budget funding fund sum amount pay paid "
    "spend spent worth value profit profits revenue revenues loss losses income earnings deal "
    "investment raise raised charge rent bill compensation prize bonus tax liability asset debt "
    "valuation".split())
_NUMBER_WORDS = frozenset("number total margin figure tally score population majority".split())


@dataclass(frozen=True)
class Expected:
    """The kind of answer a question asks for."""

    kind: str  # "person", "place", "organisation", "name", "date", "time", "money", "count", ...
    labels: frozenset[str]  # entity labels that are items of this kind
    pattern: re.Pattern[str] | None = None  # plain written forms that count too
    certain: bool = True  # whether a quote without such an item is surely no answer
    numeric: bool = False  # numbers, dates, times: found reliably, unlike names the small tagger mixes up
    counted: tuple[str, ...] = ()  # for "how many X": the words of X, one of which a count counts
    unmistakable: bool = False  # a written form counts inside any tagged item ("3.20am on Sunday")
    speaker: bool = False  # "who said…", "which newspaper reported…": who is speaking is asked


# A name of the wrong sort: the tagger seldom takes a person for a place or the other way round.
_NOT_A_PLACE = frozenset({"PERSON", "NORP"})
_NOT_A_PERSON = frozenset({"GPE", "LOC", "FAC"})
# The small tagger often mixes up organisations with people and places ("Skelmoor" as an
# organisation, "Prof Eklund" as one too), so a kind of name accepts the kinds it is mistaken for.
PERSON = Expected("person", NAMES - _NOT_A_PERSON, _CAPITALISED)
WHO = Expected("person or organisation", NAMES - _NOT_A_PERSON, _CAPITALISED)
ACTOR = Expected("speaker", NAMES - _NOT_A_PERSON, _CAPITALISED, speaker=True)
PLACE = Expected("place", NAMES - _NOT_A_PLACE, _CAPITALISED)
ORGANISATION = Expected("organisation", NAMES, _CAPITALISED)
NAME = Expected("name", NAMES, _CAPITALISED)
NATIONALITY = Expected("nationality or group", NAMES, _CAPITALISED)
DATE = Expected("date", frozenset({"DATE"}), _DATE, numeric=True)
TIME = Expected("time", frozenset({"TIME"}), _TIME, numeric=True, unmistakable=True)
DURATION = Expected("duration", frozenset({"DATE", "TIME"}), _DURATION, numeric=True)
MONEY = Expected("money", frozenset({"MONEY"}), _MONEY, numeric=True)
AMOUNT = Expected("amount", frozenset({"MONEY", "PERCENT", "QUANTITY", "CARDINAL"}), _NUMBER, numeric=True)
COUNT = Expected("count", frozenset({"CARDINAL", "QUANTITY"}), _NUMBER, numeric=True)
PERCENT = Expected("percentage", frozenset({"PERCENT"}), re.compile(r"%|\bper ?cent\b", re.IGNORECASE),
                   numeric=True)
MEASURE = Expected("measure", frozenset({"QUANTITY", "CARDINAL", "DATE"}), _NUMBER, numeric=True)
REASON = Expected("reason", frozenset(), _REASON, certain=False)

_RULES: tuple[tuple[re.Pattern[str], Expected], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), expected) for pattern, expected in (
        (r"\b(?:at )?what time\b|\bat what hour\b|\bwhat hour\b", TIME),
        (r"\bhow long\b|\bfor how many (?:days|weeks|months|years|hours)\b", DURATION),
        (r"\bhow many (?:days|weeks|months|years|hours|minutes|decades)\b", DURATION),
        (r"\bwhat (?:percentage|percent|proportion|share)\b|\bby how much\b", PERCENT),
        (r"\bhow many\b", COUNT),
        (r"\bhow much (?:money|did (?:it|they|he|she) (?:cost|pay|spend|raise))\b|"
         r"\bhow much (?:[\w'’-]+ ){0,8}(?:cost|pay|paid|spend|spent|raise|raised|worth|earn|charge|invest)|"
         r"\bwhat (?:did|does|do|will|would) (?:[\w'’-]+ ){1,8}cost\b", MONEY),
        (r"\bhow much\b", AMOUNT),
        (r"\bhow old\b|\bwhat age\b|\bhow far\b|\bhow (?:big|large|tall|deep|high|heavy|wide|fast)\b",
         MEASURE),
        (r"^\s*(?:since |until |till |by )?when\b|\bwhen (?:did|does|do|is|was|will|were|are|has|had)\b|"
         r"\b(?:what|which|in which|in what) (?:year|dates?|day|month|decade)\b|\bhow soon\b", DATE),
        (r"^\s*where\b|\bwhere (?:did|does|do|is|was|will|were|are|has|had|to|from)\b|\bfrom where\b", PLACE),
        (r"^\s*why\b|\bwhy (?:did|does|do|is|was|will|were|are|has|had)\b|\bfor what reason\b|"
         r"\bwhat (?:was|is) the reason\b|\bwhat (?:caused|prompted|led to|triggered)\b|"
         r"\bwhat (?:was|is) behind\b", REASON),
        (r"\b(?:who |which (?:[\w'’-]+ ){1,3}?)(?:said|says|told|wrote|reported|announced|claimed|called|"
         r"described|warned|urged)\b", ACTOR),
        (r"^\s*(?:who|whom|whose)\b|\b(?:by|to|from|with) whom\b", WHO),
        (r"\bwhat nationality\b", NATIONALITY),
    )
)
_KIND_OF = frozenset("kind type sort of".split())
_AUXILIARIES = frozenset("did does do is was are were has have had will would can could should may might "
                         "must happened happens caused causes made makes".split())
# "which town", "name the network": the noun after says the kind.
_WHICH = re.compile(r"\b(?:which|what|^\s*name(?: the)?)\s+(?P<words>(?:[\w'’-]+\s+){0,2}[\w'’-]+)",
                    re.IGNORECASE)
# "what was the margin of the vote", "what are the dates?": the noun before "of" (or the end) says it;
# not "what are the bases used for", where the noun is what the question is about.
_WHAT_IS_THE = re.compile(r"\bwhat\s+(?:is|was|are|were)\s+(?:the|its|their|his|her)\s+"
                          r"(?P<words>(?:[\w'’-]+\s+){0,2}?(?!\w+(?:ed|ing)\b)[\w'’-]+)"
                          r"(?=\s+(?:of|in|at|for|on|from|to|between|by|during)\b|\s*[?.!]*$)", re.IGNORECASE)


def expected_answer(question: str) -> Expected | None:
    """The kind of item the question asks for, or None when it does not say ("is Russia leaving?")."""
    for pattern, expected in _RULES:
        if pattern.search(question):
            if expected in (ACTOR, WHO) and (head := _which_head(question)) is not None:
                return replace(head, speaker=expected.speaker)
            if expected is COUNT and (counted := counted_words(question)):
                return replace(COUNT, counted=counted)
            return expected
    return _which_head(question)


_HOW_MANY = re.compile(r"\bhow many (?P<what>(?:[\w'’-]+\s*){1,4})", re.IGNORECASE)
_IRREGULAR_VERBS = frozenset(
    "went left came took saw got made gave lost won fled spent paid sold bought held met ran fell rose "
    "said told kept built brought caught sent became began died flew drove wrote stood sat".split())
_COUNTER_WORDS = frozenset("kinds kind types type sorts sort number numbers of different separate "
                           "individual more other new extra additional".split())


def counted_words(question: str) -> tuple[str, ...]:
    """"how many kinds of amphibians live…" -> ("amphibians",): the words of what a number must count."""
    m = _HOW_MANY.search(question)
    if m is None:
        return ()
    words: list[str] = []
    for word in m["what"].lower().split():
        if word in _PHRASE_END - {"of"} or word in _IRREGULAR_VERBS or word.endswith(("ed", "ing")) and words:
            break
        if word not in _COUNTER_WORDS:
            words.append(word)
            if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
                break  # the plural noun ends what is counted: "russian troops", "kinds of amphibians"
    return tuple(words)


def _which_head(question: str) -> Expected | None:
    """"Which town…", "what newspaper…", "which Russian official…": the noun says the kind."""
    matches = sorted([*_WHAT_IS_THE.finditer(question), *_WHICH.finditer(question)], key=lambda m: m.start())
    for m in matches:
        words = [w for w in m["words"].lower().split() if w not in _KIND_OF]
        if not words or words[0] in _AUXILIARIES:
            continue  # "what did the minister say": no noun names the kind
        for word in words:
            word = _singular(word)
            if (named := _name_kind(word)) is not None:
                return named
            if word in _DATE_WORDS:
                return DATE
            if word in _MONEY_WORDS:
                return MONEY
            if word in _NUMBER_WORDS:
                return AMOUNT
        if m.group(0).lower().lstrip().startswith(("which", "name")):
            return NAME
    return None


def noun_kind(word: str) -> str | None:
    """"place", "person" or "organisation" for a noun that names such a thing ("ministry"), else None."""
    named = _name_kind(_singular(word.lower()))
    return named.kind if named is not None else None


def _name_kind(singular: str) -> Expected | None:
    """PLACE, PERSON or ORGANISATION for a (singular) noun of that kind's list ("town", "minister")."""
    for nouns, kind in ((_PLACE_WORDS, PLACE), (_PERSON_WORDS, PERSON), (_ORG_WORDS, ORGANISATION)):
        if singular in nouns or singular + "s" in nouns:
            return kind
    return None


def _singular(word: str) -> str:
    """"countries'" -> "country", "towns" -> "town"; a word of the kind lists stays as it is."""
    if word in _PLACE_WORDS | _PERSON_WORDS | _ORG_WORDS:
        return word
    word = word.rstrip("'’")
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


_PHRASE_END = _AUXILIARIES | _KIND_OF | frozenset(
    "of in on at to for from by with about the a an its their his her this that these those "
    "and or against over after before during into between under than".split())


_SPAN = re.compile(r"^(?:about |some |more than |almost |nearly |over |up to |the past |the last )?"
                   r"\S+ (?:seconds|minutes|hours|days|weeks|months|years|decades)$", re.IGNORECASE)


def new_items(expected: Expected, sentence: str, entities: tuple[Entity, ...],
              question_words: frozenset[str], counts: Callable[[str, int], bool] | None = None,
              ) -> list[str]:
    """Items of the expected kind in a sentence that the question does not already name.

    A written form counts only outside entities of other kinds: "12.5" in "£12.5 million" is money,
    not a count (a clock time counts anywhere: "3.20am" in the date "3.20am on Sunday"); "six weeks"
    is a span of time, not the date a "when" question asks for; "72-year-old" is an age, not how
    long something took. For "how many X", `counts(sentence, end)` says whether
    the words after a number ending at `end` name X.
    """
    spans = [(e.start, e.end) for e in entities if e.label in expected.labels
             and not (expected in (DATE, TIME) and _SPAN.match(sentence[e.start: e.end]))
             and not (expected is DURATION and not _DURATION.search(sentence[e.start: e.end] + " "))
             and not _is_age(sentence, e.start, e.end)]
    if expected.pattern is not None:
        # A written form inside a tagged item is judged by the item's label; one reaching past it
        # says more ("3.2 million euros" around the count "3.2 million").
        tagged = [(e.start, e.end) for e in entities]
        spans += [m.span() for m in expected.pattern.finditer(sentence)
                  if (expected.unmistakable or not any(s <= m.start() and m.end() <= e for s, e in tagged))
                  and not _is_age(sentence, *m.span())]
    if expected.counted and counts is not None:
        spans = [(s, e) for s, e in spans if counts(sentence, e)]
    items = [sentence[s:e] for s, e in spans]
    return [item for item in items if not _already_named(item, question_words)]


_AGE = re.compile(r"[\s-]*(?:years?[\s-]*)?old\b", re.IGNORECASE)


def _is_age(sentence: str, start: int, end: int) -> bool:
    """"72-year-old", "aged 75": a person's age, which answers neither "how long" nor "when"."""
    return bool(_AGE.match(sentence, end) or sentence[start:end].lower().endswith("old")
                or sentence[max(0, start - 5):start].lower().endswith("aged "))


def _already_named(item: str, question_words: frozenset[str]) -> bool:
    """Whether the question already names the item: most of its words are the question's
    ("Harrowby Borough Council" for "which body did Harrowby council…"; not "Caldwell Trust" for
    "which trust…"). `question_words` are as `asked_words` gives them."""
    asked = question_words | {_bare(w) for w in question_words}
    words = [w for w in _ITEM_WORD.findall(item.lower()) if w not in {"the", "a", "an", "of", "and"}]
    named = sum(w in asked or _bare(w) in asked for w in words)
    return bool(words) and named * 2 > len(words)


# A word, or a whole number ("12.5", "1,400"), or a short sum ("12.5m").
_ITEM_WORD = re.compile(r"\d+(?:[.,]\d+)*(?:m|bn|k)?\b|[^\W\d_][\w'’-]*|\d[\w'’-]*")
_SHORT_SUM = re.compile(r"^(\d+(?:[.,]\d+)*)(m|bn|k)$")
_SUM_WORDS = {"m": "million", "bn": "billion", "k": "thousand"}


def asked_words(question: str) -> frozenset[str]:
    """The lower-cased words and whole numbers of a question; a short sum ("£12.5m") also as the
    number and the word for its unit, as a sentence spells it ("£12.5 million")."""
    found = set(_ITEM_WORD.findall(question.lower()))
    for word in list(found):
        if m := _SHORT_SUM.match(word):
            found |= {m[1], _SUM_WORDS[m[2]]}
    return frozenset(found)


def _bare(word: str) -> str:
    """A word without its possessive or plural ending: "town's" -> "town", "officials" -> "official"."""
    for ending in ("'s", "’s", "s'", "s’", "s"):
        if word.endswith(ending) and len(word) > len(ending) + 2:
            return word[: -len(ending)]
    return word
