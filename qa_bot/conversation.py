"""A chat over the Answerer: follow-up questions read against the previous turn.

"and from Latakia?", "how many of them?", "when was that?", "who said that?", "more",
"is that confirmed elsewhere?" lean on what was asked before. `read_follow_up` says how a
message leans on the last turn (or that it stands on its own, which is never rewritten), and
`Conversation.ask` answers it, showing the rewritten question so the user sees what was searched.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from qa_bot.answer_types import NAMES, counted_words, noun_kind
from qa_bot.errors import QuestionError
from qa_bot.types import CONTEXT_SEPARATOR, Answer, ArticleInfo, Passage

if TYPE_CHECKING:
    from qa_bot.answer import Answerer

MAX_TURNS = 5  # turns a conversation keeps
MORE_POOL = 10  # passages of the last question that "more" chooses from
MORE_AROUND = 3  # and the sentences this close before or after the quote shown last
MORE_ON_SUBJECT = 0.5  # the sentence after the quote comes first when its cosine to it is this high
CONFIRMATIONS_SHOWN = 2  # other articles shown for "is that confirmed elsewhere?"
CONVERSATION_TTL_S = 30 * 60.0  # after this long without a message the chat starts afresh
Labels = Callable[[str], frozenset[str]]  # a lower-cased word -> the entity labels it has in the corpus
Kind = Literal["standalone", "rewrite", "more", "confirm", "speaker"]

_WORD = re.compile(r"[\w'’-]+")
_AUXILIARY = "did|does|do|was|were|is|are|has|have|had|will|would|can|could|should|might|may"
_WH = (r"(?P<wh>(?:(?:with|to|from|by|for|of|in|at|on|since|until) )?"
       r"(?:how (?:many|much|long|old|far|often|big|large)|what|which|who|whom|whose|when|where|why|how))")
# "why did Russia leave", "how many soldiers did Russia withdraw": question word, focus, auxiliary, rest.
_AUXILIARIES = frozenset(_AUXILIARY.split("|"))
_WITH_AUXILIARY = re.compile(rf"^{_WH}(?P<focus>(?: [\w'’-]+){{0,3}}?) (?P<aux>{_AUXILIARY})\b(?P<rest>.*)$",
                             re.IGNORECASE)
# "how many soldiers left Damascus", "who leads Syria": the question word is the subject.
_AS_SUBJECT = re.compile(rf"^{_WH}(?P<rest>.*)$", re.IGNORECASE)
_CONTRACTION = re.compile(r"\b(what|who|where|when|how|that|it)['’]s\b", re.IGNORECASE)
_DID = re.compile(r"\b(what|who|where|when|why|how)['’]d\b", re.IGNORECASE)  # "why'd he go?"
_LEAD_IN = re.compile(r"^(?:(?:and|but|so|ok|okay|also|then|well)\b[,\s]*|"
                      r"(?:hmm+|wait|right|oh|go on)\s*,\s*)+", re.IGNORECASE)
_SWAP = re.compile(r"^(?:and\s+)?(?:what|how)\s+about\s+|^what\s+of\s+|^(?:and\s+)?(?:the\s+)?same\s+"
                   r"(?:for|with)\s+|^and\s+", re.IGNORECASE)
# "from that paper", "in the same article", "he said": what "anything else …?" keeps to.
_FROM_SAME_SOURCE = (r"(?:(?:from|in|by) (?:that|this|the same|the) "
                     r"(?:paper|newspaper|article|source|outlet|report|story)|"
                     r"(?:did )?(?:he|she|it|they) (?:say|said|report|reported|told|tell|warn|warned|"
                     r"add|added|claim|claimed|mention|mentioned))")
_MORE = re.compile(r"^(?:(?:any|some|one|give me|show me|tell me)\s+)?(?:more|another|other|else|next)"
                   r"(?:\s+(?:one|source|sources|passage|passages|article|articles|please|results?))*$|"
                   r"^(?:anything|what)\s+else$|^(?:is there |are there )?(?:any )?(?:more|other|another)"
                   r"(?: sources?| passages?| articles?)?$|^tell me more$|"
                   r"^(?:anything|something|what) else (?:on|about|regarding) (?:that|this|it|the subject)$|"
                   r"^(?:go on|and then what|what then|keep going|continue)$|"
                   r"^what else do (?:we|you) know(?: about (?:that|this|it|them|him|her))?$|"
                   rf"^(?:anything|something|what) else {_FROM_SAME_SOURCE}$", re.IGNORECASE)
_SAME_SOURCE = re.compile(rf"\b{_FROM_SAME_SOURCE}\b", re.IGNORECASE)
_ANOTHER_SOURCE = re.compile(r"\b(?:sources?|articles?|outlets?|papers?|reports?)\b", re.IGNORECASE)
_CONFIRM = re.compile(r"\b(?:confirm\w*|corroborat\w*|elsewhere|anywhere else|back(?:s|ed)? (?:\w+ )?up|"
                      r"other (?:outlets?|sources?|articles?|papers?|media)|(?:anyone|anybody|who) else|"
                      r"also (?:report|say)\w*)\b", re.IGNORECASE)
_CONFIRM_WORDS = re.compile(r"^(?:confirm|corroborat|report|say|said|carr|mention|write|wrote|outlet|source|"
                            r"article|paper|media|elsewhere|other|anyone|anybody|who|else|also|true|any|so$|too$|as$|well$|"
                            r"same$|claim|story|news|anywhere$|back|up$)",
                            re.IGNORECASE)
# A check on another outlet that also says what it is about ("does another outlet report the cuts").
_CONFIRM_ABOUT = re.compile(r"\b(?:confirm\w*|corroborat\w*|elsewhere|anywhere else|back(?:s|ed)? up|"
                            r"(?:in|by|from) (?:any other|another|other|any) "
                            r"(?:outlets?|sources?|articles?|papers?)|"
                            r"other (?:outlets?|sources?|articles?|papers?|media|reports?)|"
                            r"another (?:outlet|source|article|paper|report)|"
                            r"(?:anyone|anybody) else (?:report|say|confirm|carr|mention|write)\w*|"
                            r"(?:say|says|said|report|reports|reported) (?:that|it|this|so) too)\b",
                            re.IGNORECASE)
_CONFIRM_EXTRA = frozenset("another anyone anybody else too does do did is are was were".split())
_SPEAKER = re.compile(r"^(?:who|which \w+)\s+(?:said|says|say|claims?|claimed|reports?|reported|announced|"
                      r"told|stated|wrote|confirmed|confirms)(?:\s+(?:that|this|it|so))?$|^says who$|"
                      r"^according to (?:whom|who)$|"
                      r"^who(?:'s| is| was) the source$|^(?:source|sources)$|"
                      r"^who is (?:saying|claiming|describing|reporting) (?:that|this|it|so)(?: that way)?$",
                      re.IGNORECASE)
# "when?", "to where?", "what for?": a question word alone asks it of the previous question.
_BARE_WH = {"what for": "why", "how come": "why", "to where": "where", "where to": "where",
            "from where": "where", "since when": "since when", "until when": "until when"}
_POSSESSIVE = re.compile(r"['’]s?$")
_PRO_FORM = re.compile(r"^(?:the ones?|those|that one|the others?)\s+(?=(?:from|in|at|near|on|by)\s)",
                       re.IGNORECASE)
_REFLEXIVE = re.compile(r"\b(?:himself|herself|itself|themselves)\b", re.IGNORECASE)
_PERSONAL = frozenset("he him his she her hers himself herself".split())
_PLURAL = frozenset("they them their theirs themselves".split())
_THING = frozenset("it its".split())
_DEMONSTRATIVE = frozenset("that this those these".split())
_PRONOUNS = _PERSONAL | _PLURAL | _THING | _DEMONSTRATIVE
# Verbs that say nothing of their own after a pronoun: "when did that happen?", "why was that?".
_LIGHT = frozenset("happen happened happens take took place start started begin began end ended occur "
                   "occurred be been being do done go going come came mean means so".split())
_SMALL = frozenset(f"{_AUXILIARY.replace('|', ' ')} of the a an to in on at for from by with about "
                   "there then exactly".split())
_WH_WORDS = frozenset("how many much long old far often what which who whom whose when where why".split())
_PREPOSITIONS = frozenset("from in at to for by on with during after before since until near into via "
                          "about".split())
# Words of a date ("and on Sunday?"); "may" is left out, as it is far more often a verb.
_DATE_WORDS = frozenset("monday tuesday wednesday thursday friday saturday sunday january february march "
                        "april june july august september october november december yesterday today".split())
MAX_FOLLOW_UP_WORDS = 6  # a question this short with no name of its own leans on the previous one
MAX_CONFIRM_ABOUT_WORDS = 3  # "does another outlet report cuts at the embassy": a check, not a question
MAX_ANAPHORIC_WORDS = 12  # a question pointing back ("after that", "those talks") is read as a follow-up
_BACK_REFERENCE = re.compile(r"\b(?:(?:after|before|since|until|by) (?:that|this|then)|"
                             r"at (?:that|this) (?:time|point|moment))\b", re.IGNORECASE)


@dataclass(frozen=True)
class Previous:
    """What a follow-up can lean on: the last question searched and the names in the last quote."""

    question: str
    people: tuple[str, ...] = ()  # persons named in the passage last shown
    names: tuple[str, ...] = ()  # organisations, places and groups named there
    quote: str = ""  # the quote last shown


@dataclass(frozen=True)
class Reading:
    """How a message is read: on its own, or as a follow-up, and the question then searched."""

    kind: Kind
    question: str  # what is searched (the message itself when it stands on its own)
    stress: str | None = None  # what a follow-up asks about anew ("Latakia"): the quote must name it;
    # for a check on other outlets, what it names ("the asylum")


@dataclass(frozen=True)
class Turn:
    """One exchange: what was typed, what was searched, what came back, and the passage shown."""

    asked: str
    question: str
    answer: Answer
    seen: tuple[tuple[str, int, int], ...] = ()  # (article, start, end) of every passage shown so far
    at: float = 0.0  # time.time() of the exchange
    focus: Passage | None = None  # the passage the user saw last (what "he" or "it" may point to)


@dataclass(frozen=True)
class Reply:
    """What a front end shows for one message."""

    asked: str
    reading: Reading
    answer: Answer  # the first passage is the one to show; for "more", the next one
    note: str | None = None  # a line to say first ("Another passage:", "Only X says so")
    shown: int = 1  # passages of `answer` to show

    @property
    def passages(self) -> tuple[Passage, ...]:
        """The passages the user sees."""
        return self.answer.passages[:self.shown] if self.answer.answered else ()

    @property
    def rewritten(self) -> str | None:
        """The question actually searched, when it differs from what was typed."""
        return self.reading.question if self.reading.kind == "rewrite" else None


def read_follow_up(text: str, previous: Previous | None,
                   names: Labels = lambda _: frozenset()) -> Reading:
    """Read `text` against the previous turn: a follow-up, or a question of its own (never rewritten)."""
    text = " ".join(text.split())
    if previous is None:
        return Reading("standalone", text)
    bare = _CONTRACTION.sub(lambda m: f"{m[1]} is", text.rstrip(" ?!.").strip())
    bare = _DID.sub(lambda m: f"{m[1]} did", bare)
    unled = _LEAD_IN.sub("", bare)
    tokens = _WORD.findall(unled.lower())
    if _MORE.match(unled) or _MORE.match(bare):  # "and then what"
        return Reading("more", previous.question)
    if _SPEAKER.match(unled):
        return Reading("speaker", previous.question)
    if _CONFIRM.search(unled) and all(w in _SMALL | _PRONOUNS or _CONFIRM_WORDS.match(w) for w in tokens):
        return Reading("confirm", previous.question)
    if _CONFIRM_ABOUT.search(unled):
        # "is the asylum confirmed elsewhere?", "does the FT say that too": other articles on what it
        # names, when it points back or names little; "did other outlets report that Russia will
        # keep Tartus?" is a question of its own
        cue = _SMALL | _PRONOUNS | _CONFIRM_EXTRA
        about = [w for w in _WORD.findall(unled)
                 if w.lower() not in cue and not _CONFIRM_WORDS.match(w.lower())]
        points_back = tokens[-1] in _PRONOUNS | {"so", "too"}
        named = [w for w in about if _looks_like_name(w, names) and not w[:1].isdigit()]
        if points_back or len(about) <= MAX_CONFIRM_ABOUT_WORDS and not named:
            return Reading("confirm", previous.question, " ".join(about) or None)
    for rewrite in (_bare_wh, _swap, _with_referent, _with_context):
        question = rewrite(bare, unled, previous, names)
        if question is not None:
            stress = _PRO_FORM.sub("", _SWAP.sub("", bare)) if rewrite is _swap else None
            return Reading("rewrite", " ".join(question.split()), stress)
    return Reading("standalone", text)


def _parts(question: str) -> tuple[str, str, str, str] | None:
    """(question word, focus noun words, auxiliary, rest) of a wh-question, or None."""
    question = question.rstrip(" ?!.").split(CONTEXT_SEPARATOR)[0]
    m = _WITH_AUXILIARY.match(question)
    if m is not None:
        return m["wh"], m["focus"].strip(), m["aux"], m["rest"].strip()
    m = _AS_SUBJECT.match(question)
    if m is None:
        return None
    rest = m["rest"].split()
    wh = m["wh"].lower()
    if wh == "how many":
        counted = counted_words(question)
        size = len(counted) if counted and [w.lower() for w in rest[:len(counted)]] == list(counted) else 1
    else:
        size = 1 if wh in ("what", "which", "whose", "how much") and len(rest) > 1 else 0
    return m["wh"], " ".join(rest[:size]), "", " ".join(rest[size:])


def _chained(previous: str) -> str | None:
    """The context a follow-up read with context ("how would it work — …") was asked about."""
    return previous.rstrip(" ?!.").rsplit(CONTEXT_SEPARATOR, 1)[1] if CONTEXT_SEPARATOR in previous else None


def _clause(previous: str) -> str:
    """The previous question without its question word: what it was about. A follow-up read with
    context ("how would it work — …") was about that context; a yes/no question is about all of
    itself ("why" after "Did Russia leave?" asks "why did Russia leave?")."""
    if (chained := _chained(previous)) is not None:
        return chained
    parts = _parts(previous)
    if parts is None:
        asked = previous.rstrip(" ?!.")
        first, _, rest = asked.partition(" ")
        return f"{first.lower()} {rest}" if first.lower() in _AUXILIARIES else asked
    _, focus, aux, rest = parts
    return f"{focus} {rest}".strip() if not aux else rest


def _context(previous: str) -> str:
    """What a follow-up that points back is asked about: the previous question as it was searched
    (its own context when it was itself such a follow-up)."""
    if (chained := _chained(previous)) is not None:
        return chained
    first, _, rest = previous.rstrip(" ?!.").partition(" ")
    return f"{first.lower()} {rest}" if first.lower() in _WH_WORDS | _AUXILIARIES else f"{first} {rest}"


def _own_names(words: list[str], names: Labels) -> bool:
    """Whether a question names something itself (a capitalised word after the first, a number,
    a name of the corpus, a date)."""
    return any(_looks_like_name(w, names) for w in words[1:]) or any(
        w[:1].isdigit() or w.lower() in _DATE_WORDS or bool(names(w.lower())) and w.lower() not in _SMALL
        for w in words)


def _looks_like_name(word: str, names: Labels) -> bool:
    lowered = word.lower()
    return word[:1].isupper() or word[:1].isdigit() or lowered in _DATE_WORDS or bool(names(lowered))


def _bare_wh(bare: str, unled: str, previous: Previous, names: Labels) -> str | None:
    """"when?", "why was that?", "how many of them?", "to where?": a question word and nothing of
    its own but pronouns and light verbs asks that of the previous question."""
    lowered = unled.lower()
    wh_parts = _parts(unled)
    if lowered in _BARE_WH:
        wh = _BARE_WH[lowered]
    elif wh_parts is not None:
        words = _WORD.findall(lowered)
        if [w for w in words if w not in _WH_WORDS | _SMALL | _LIGHT | _PRONOUNS] or set(words) & _PERSONAL:
            return None  # "why did he do it?": about the person, read with the referent
        wh = wh_parts[0].lower()
        if any(a in _PREPOSITIONS and b in _PRONOUNS - _DEMONSTRATIVE and not (wh == "how many" and a == "of")
               for a, b in zip(words, words[1:], strict=False)):
            return None  # "what was in it?", "who was with him?": the pronoun's referent is asked about
    else:
        return None
    last = _parts(previous.question)
    if wh == "how many" and last is not None and last[1]:  # "how many of them?": of what was asked
        return f"how many {last[1]} {last[2]} {last[3]}?"
    if last is not None and last[2]:
        return f"{wh} {last[2]} {last[3]}?"
    return f"{wh} {_clause(previous.question)}?"


def _swap(bare: str, unled: str, previous: Previous, names: Labels) -> str | None:
    """"and from Latakia?", "what about Tartus?", "and on Sunday?", "Latakia?": the previous question
    about another place, person, time or thing."""
    led = _SWAP.match(bare)
    fragment = _REFLEXIVE.sub("", bare[led.end():] if led else bare).strip()
    fragment = _PRO_FORM.sub("", fragment)  # "the ones in Qudsayya": what was asked about, elsewhere
    words = _WORD.findall(fragment)
    if not words or _parts(fragment) is not None or any(w.lower() in _PRONOUNS for w in words):
        return None
    if not led and (len(words) > 3 or not all(_looks_like_name(w, names) for w in words)):
        return None  # a bare fragment is a follow-up only when it is a name: "Latakia?"
    preposition = words[0].lower() if words[0].lower() in _PREPOSITIONS else None
    new = " ".join(words[1:] if preposition else words)
    base = previous.question.rstrip(" ?!.").split(CONTEXT_SEPARATOR)[0]
    slots = _slots(base, names)
    if preposition:
        for start, end in reversed(slots):
            if base[:start].rstrip().rsplit(" ", 1)[-1].lower() == preposition:
                return f"{base[:start]}{new}{base[end:]}?"
    same: list[tuple[int, int]] = []
    if all(_looks_like_name(w, names) for w in new.split()):
        # The slot of the same kind: a date for a date, a person or group for one, a place for a place.
        kind = _kind(new, names)
        same = [(a, b) for a, b in slots if _kind(base[a:b], names) == kind] or \
            [(a, b) for a, b in slots if (_kind(base[a:b], names) == "date") == (kind == "date")]
    elif (noun := noun_kind(new.split()[-1])) is not None:
        # "and the foreign ministry?" after "what did Putin say…": a person or body for one.
        kind = "place" if noun == "place" else "actor"
        same = [(a, b) for a, b in slots if _kind(base[a:b], names) == kind]
    if same:
        start, end = same[-1]
        return f"{base[:start]}{new}{base[end:]}?"
    parts = _parts(base)
    if parts is not None and not parts[2] and len(words) >= 3:
        # "which newspaper reported that Russia was leaving" + "and the withdrawal of 400 soldiers?"
        wh, focus, _, rest = parts
        verb = rest.split(" ", 1)[0]
        return f"{wh} {focus} {verb} {fragment}?"
    pointing = [w for w in _WORD.findall(base) if w.lower() in ("it", "that", "this")]
    if pointing and not preposition:  # "when did it kick off?" + "and the fall of Damascus?"
        return re.sub(rf"\b{re.escape(pointing[0])}\b", lambda _: fragment, base, count=1) + "?"
    return f"{base} {fragment}?" if preposition else f"{base}{CONTEXT_SEPARATOR}{fragment}?"


def _kind(text: str, names: Labels) -> str:
    """"date", "actor" (a person, organisation or group), "place", or "name" when the corpus does not say."""
    words = text.lower().split()
    if words and all(w.isdigit() or w in _DATE_WORDS for w in words):
        return "date"
    labels = set().union(*(names(w) for w in words)) if words else set()
    for kind, kind_labels in (("actor", {"PERSON", "ORG", "NORP"}), ("place", {"GPE", "LOC", "FAC"})):
        if labels and labels <= kind_labels | {"WORK_OF_ART", "PRODUCT", "EVENT"} and labels & kind_labels:
            return kind
    return "name"


def _slots(question: str, names: Labels) -> list[tuple[int, int]]:
    """Spans of the names, dates and numbers in a question (not its first word)."""
    spans: list[tuple[int, int]] = []
    for m in _WORD.finditer(question):
        word = m.group()
        if m.start() == 0 or not _looks_like_name(word, names) or word.lower() in _WH_WORDS | _SMALL:
            continue
        if spans and question[spans[-1][1]:m.start()] in (" ", " of "):  # "Defence Intelligence of Ukraine"
            spans[-1] = (spans[-1][0], m.end())
        else:
            spans.append((m.start(), m.end()))
    return spans


def _with_referent(bare: str, unled: str, previous: Previous, names: Labels) -> str | None:
    """"did he plan to leave?", "where is it based?": the pronoun replaced by whom or what it
    points to, from the last quote or the previous question."""
    words = _WORD.findall(unled)
    pronouns = [w for w in words if w.lower() in _pointing_out(words, names)]
    if not pronouns:
        return None
    pronoun = pronouns[0].lower()
    referent = _referent(pronoun, previous, names)
    if referent is None:
        return None
    replacement = f"{referent}'s" if pronoun in ("his", "her", "their", "its") else referent
    resolved = re.sub(rf"\b{re.escape(pronouns[0])}\b", lambda _: replacement, unled, count=1)
    pointing_elsewhere = [p for p in pronouns[1:] if _pronoun_class(p.lower()) != _pronoun_class(pronoun)]
    nothing_of_its_own = not [w for w in words if w.lower() not in _WH_WORDS | _SMALL | _LIGHT | _PRONOUNS]
    if pointing_elsewhere or nothing_of_its_own:
        # "why did Assad do it?", "why did Assad put it out?": still leaning on what was asked
        return f"{resolved}{CONTEXT_SEPARATOR}{_context(previous.question)}?"
    return resolved + "?"


def _pronoun_class(pronoun: str) -> frozenset[str]:
    return next(c for c in (_PERSONAL, _PLURAL, _THING, _DEMONSTRATIVE) if pronoun in c)


def _pointing_out(words: list[str], names: Labels) -> frozenset[str]:
    """The pronouns of a question that can only point to an earlier turn: he/she unless it names
    a person itself ("what did Putin say about his plans?"), it unless it names anything, they
    unless something plural comes before it ("how did they get from Khmeimim to Russia?" points
    back; "did the rebels say when they would arrive?" does not)."""
    if _own_names(words, names):
        people = any(_is_person(w, names) for w in words[1:])
        return (frozenset() if people else _PERSONAL) | _plural_pointing(words, names)
    return _PERSONAL | _PLURAL | _THING


def _plural_pointing(words: list[str], names: Labels) -> frozenset[str]:
    lowered = [w.lower() for w in words]
    first = next((i for i, w in enumerate(lowered) if w in _PLURAL), None)
    if first is None:
        return frozenset()
    before = lowered[:first]
    plural = any(len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "'s", "’s")) or
                 names(w) & {"NORP", "ORG"} for w in before if w not in _WH_WORDS | _SMALL)
    return frozenset() if plural else _PLURAL


def _is_person(word: str, names: Labels) -> bool:
    labels = names(word.lower())
    return "PERSON" in labels or not labels and word[:1].isupper()


def _referent(pronoun: str, previous: Previous, names: Labels) -> str | None:
    """He/she: a person of the last quote or question. It: what a "which newspaper" or "who"
    question was answered with. They: what the previous question counted or asked about."""
    base = previous.question.split(CONTEXT_SEPARATOR)[0]
    asked = _parts(base)
    named = [base[s:e] for s, e in _slots(base.rstrip(" ?!."), names)]
    people_asked = [n for n in named if any(p.endswith(n) or n.endswith(p) for p in previous.people)]
    if pronoun in _PERSONAL:
        if asked is not None and asked[0].lower() in ("who", "whom", "whose") and previous.people:
            return previous.people[0]
        people = people_asked or list(previous.people)
        return people[0] if people else None
    if pronoun in _THING and asked is not None and asked[1]:
        # "which newspaper reported…" answered "…, the Asharq al-Awsat newspaper reported": "it" is that.
        named_focus = re.search(rf"((?:[A-Z][\w'’-]*\s+)*(?:al-\w+\s+)?)\b{re.escape(asked[1])}\b",
                                previous.quote)
        if named_focus and named_focus.group(1).strip():
            return f"the {named_focus.group(1).strip()} {asked[1]}"
    if pronoun in _THING and asked is not None and asked[0].lower() in ("who", "which"):
        answered = [n for n in previous.names if n.lower() not in base.lower()]
        if answered:
            return answered[0]
    if pronoun in _PLURAL and asked is not None and asked[1]:
        return f"the {asked[1]}"
    if pronoun in _PLURAL:
        # "What are HTS's roots?" … "how do governments classify them?": a group the question named.
        named = [_POSSESSIVE.sub("", n) for n in named]
        groups = [n for n in named if names(n.split()[-1].lower()) == {"ORG"}]
        return groups[0] if groups else None
    return None


def _with_context(bare: str, unled: str, previous: Previous, names: Labels) -> str | None:
    """A question that points back without saying at what ("why is that unusual?", "who led it?",
    "how did the offensive develop after that?", "was moscow in those talks?"), or a short one
    that names nothing ("what was the aim?"), is asked about what the previous question was about."""
    words = _WORD.findall(unled)
    lowered = [w.lower() for w in words]
    own = _own_names(words, names)
    pointing = [w for w in lowered if w in _pointing_out(words, names)]
    demonstrative = [w for i, w in enumerate(lowered[:-1]) if w in ("those", "these")
                     or w in ("that", "this") and not own and lowered[i + 1] not in _SMALL | _PRONOUNS
                     and not _looks_like_name(words[i + 1], names)]
    ending = bool(lowered) and lowered[-1] in _DEMONSTRATIVE | _THING
    anaphoric = pointing or demonstrative or ending or _BACK_REFERENCE.search(unled)
    if anaphoric and len(words) <= MAX_ANAPHORIC_WORDS or not own and len(words) <= MAX_FOLLOW_UP_WORDS:
        return f"{unled}{CONTEXT_SEPARATOR}{_context(previous.question)}?"
    return None


@dataclass
class Conversation:
    """One chat's recent turns and the answers behind them; `ask` answers a message in context."""

    answerer: Answerer
    turns: list[Turn] = field(default_factory=list)
    clock: Callable[[], float] = time.time

    @property
    def last(self) -> Turn | None:
        """The previous turn, unless it is older than the conversation's time-out."""
        if self.turns and self.clock() - self.turns[-1].at <= CONVERSATION_TTL_S:
            return self.turns[-1]
        return None

    def ask(self, text: str) -> Reply:
        """Answer a message, reading it as a follow-up of the last turn when it leans on it."""
        last = self.last
        reading = read_follow_up(text, self._previous(last), self.answerer.name_labels)
        if last is not None and reading.kind == "more":
            return self._more(text, reading, last)
        if last is not None and reading.kind == "confirm":
            return self._confirm(text, reading, last)
        if last is not None and reading.kind == "speaker":
            return self._speaker(text, reading, last)
        near = last.focus if last is not None and reading.kind == "rewrite" else None
        answer = self.answerer.ask(reading.question, stress=reading.stress, near=near)
        # A declined question shows its closest passage, but "who said that?" still means the quote
        # seen before it, if there was one.
        shown = answer.passages[0] if answer.passages else None
        focus = shown if answer.answered or last is None or last.focus is None else last.focus
        self._keep(Turn(text, reading.question, answer, _spans(answer.passages[:1]), self.clock(), focus))
        return Reply(text, reading, answer)

    def _previous(self, last: Turn | None) -> Previous | None:
        if last is None:
            return None
        entities = self.answerer.entities(last.focus) if last.focus is not None else []
        people = tuple(dict.fromkeys(text for text, label in entities if label == "PERSON"))
        preference = ("ORG", "FAC", "GPE", "LOC")  # what "it" most often points to
        others = sorted((e for e in entities if e[1] in NAMES - {"PERSON"}),
                        key=lambda e: preference.index(e[1]) if e[1] in preference else len(preference))
        names = tuple(dict.fromkeys(text for text, _ in others))
        return Previous(last.question, people, names, last.focus.quote or "" if last.focus else "")

    def _keep(self, turn: Turn) -> None:
        self.turns = [*self.turns[-(MAX_TURNS - 1):], turn]

    def _showing(self, last: Turn, reply: Reply) -> Reply:
        """Keep the last turn with what this reply shows as its focus and as seen; return the reply."""
        focus = reply.passages[0] if reply.passages else last.focus
        self._keep(replace(last, at=self.clock(), focus=focus, seen=last.seen + _spans(reply.passages)))
        return reply

    def _more(self, text: str, reading: Reading, last: Turn) -> Reply:
        """The passage not shown yet that goes on from the last one: the sentence after the quote
        shown last when it keeps to its subject, else, among the last question's best passages and
        the sentences around that quote, the one closest in meaning to it. "Another source" asks
        for the question's other passages, not for more of this one."""
        pool = list(self.answerer.ask(last.question, MORE_POOL).passages)
        after: Passage | None = None
        same_source = bool(_SAME_SOURCE.search(text))
        another = bool(_ANOTHER_SOURCE.search(text)) and not same_source
        if last.focus is not None and last.focus.quote and not another:
            around = self.answerer.surroundings(last.focus, MORE_AROUND)
            after = around[0] if around and around[0].start >= last.focus.end else None
            pool = [*around, *pool]
        rest = [p for p in pool if not _overlaps(p, last.seen) and not self.answerer.is_heading(p)]
        if last.focus is not None and same_source:
            # "anything else from that paper?": the article shown last, or a copy of it
            same = {last.focus.source.id, *(a.id for a in last.focus.also_in)}
            rest = [p for p in rest if p.source.id in same]
        if rest and last.focus is not None and last.focus.quote:
            closeness = self.answerer.closeness(last.focus, rest)
            reads_on = [p is after and c >= MORE_ON_SUBJECT for p, c in zip(rest, closeness, strict=True)]
            order = sorted(range(len(rest)), key=lambda i: (not reads_on[i], -closeness[i]))
            rest = [rest[i] for i in order]
        if not rest:
            return self._showing(last, Reply(text, reading, _nothing(last.answer),
                                             "No more passages for that question."))
        return self._showing(last, Reply(text, reading, _leading(last.answer, rest), "Another passage:"))

    def _confirm(self, text: str, reading: Reading, last: Turn) -> Reply:
        """Other outlets that carry the last quote word for word, or restate it; "does the FT say that
        too?" asks that outlet's articles only."""
        top = last.focus
        if top is None or not top.quote:
            return Reply(text, reading, _nothing(last.answer), "There is no answer to check yet.")
        named = _named_outlet(reading.stress, self.answerer.articles)
        if named:
            return self._showing(last, self._confirm_by(text, reading, last, top, named))
        seen = {top.source.id, *(a.id for a in top.also_in)}
        unknown = ""
        try:
            restated = self.answerer.restatements(top.quote, reading.stress or last.question)
        except QuestionError:  # only a name, and no outlet here has it: "does Reuters say so too?"
            unknown = f"{reading.stress} is not an outlet of these articles. "
            restated = self.answerer.restatements(top.quote, last.question)
        others = [p for p in restated if p.source.id not in seen]
        outlets = ", ".join(_outlet(a) for a in top.also_in)
        if others:
            copies = f" (and word for word by {outlets})" if outlets else ""
            reply = Reply(text, reading, _leading(last.answer, others),
                          f"{unknown}What other articles say{copies}:", shown=CONFIRMATIONS_SHOWN)
        elif top.also_in:
            reply = Reply(text, reading, _leading(last.answer, [top]),
                          f"Yes: the same passage is also in {outlets}.")
        else:
            reply = Reply(text, reading, _nothing(last.answer),
                          f"Only {_outlet(top.source)} says so, of the {last.answer.article_count} articles.")
        return self._showing(last, reply)

    def _confirm_by(self, text: str, reading: Reading, last: Turn, top: Passage,
                    named: list[ArticleInfo]) -> Reply:
        """Whether the outlet a check names says what the last quote says."""
        ids = {a.id for a in named}
        outlet = _outlet(named[0])
        if ids & {top.source.id, *(a.id for a in top.also_in)}:
            return Reply(text, reading, _leading(last.answer, [top]), f"Yes: this passage is {outlet}'s.")
        theirs = [p for p in self.answerer.restatements(top.quote or "", last.question) if p.source.id in ids]
        if theirs:
            return Reply(text, reading, _leading(last.answer, theirs), f"What {outlet} says:")
        return Reply(text, reading, _nothing(last.answer), f"{outlet} does not say so in its articles here.")

    def _speaker(self, text: str, reading: Reading, last: Turn) -> Reply:
        """Who is quoted or cited as saying the last quote: the sentence that names them."""
        top = last.focus
        if top is None:
            return Reply(text, reading, _nothing(last.answer), "There is no answer to attribute yet.")
        attributed = self.answerer.attribution(top)
        if attributed is None:
            reply = Reply(text, reading, _leading(last.answer, [top]),
                          f"The passage names no speaker: it is {_outlet(top.source)}'s own reporting.")
        else:
            reply = Reply(text, reading, _leading(last.answer, [attributed]), "Who says so:")
        return self._showing(last, reply)

    def to_json(self) -> list[dict[str, Any]]:
        """The turns, for a persistence layer."""
        return [{"asked": t.asked, "question": t.question, "answer": t.answer.to_json(), "seen": t.seen,
                 "at": t.at, "focus": asdict(t.focus) if t.focus else None} for t in self.turns]

    @classmethod
    def from_json(cls, answerer: Answerer, data: list[dict[str, Any]]) -> Conversation:
        """A conversation saved by `to_json`."""
        turns = [Turn(t["asked"], t["question"], Answer.from_json(t["answer"]),
                      tuple((str(a), int(s), int(e)) for a, s, e in t["seen"]),
                      float(t["at"]), Passage.from_json(t["focus"]) if t.get("focus") else None)
                 for t in data]
        return cls(answerer, turns[-MAX_TURNS:])


def _leading(answer: Answer, passages: Iterable[Passage]) -> Answer:
    """`answer` with these passages, the first one's quote as the answer."""
    passages = tuple(passages)
    quote = passages[0].quote if passages else None
    return replace(answer, answered=bool(passages), quote=quote, passages=passages)


def _spans(passages: Iterable[Passage]) -> tuple[tuple[str, int, int], ...]:
    return tuple((p.source.id, p.start, p.end) for p in passages)


def _overlaps(passage: Passage, seen: tuple[tuple[str, int, int], ...]) -> bool:
    return any(a == passage.source.id and s < passage.end and passage.start < e for a, s, e in seen)


def _nothing(answer: Answer) -> Answer:
    return replace(answer, answered=False, quote=None, passages=())


def _named_outlet(stress: str | None, articles: Iterable[ArticleInfo]) -> list[ArticleInfo]:
    """The articles of the outlet a check names: its whole name ("Financial Times", "euronews") or
    the abbreviation it gives ("the FT" for "Financial Times (FT)"); "the Times" is not the FT."""
    asked = {w.lower() for w in _WORD.findall(stress or "")} - {"the"}
    if not asked:
        return []

    def words(text: str) -> set[str]:
        return {w.lower() for w in _WORD.findall(text)} - {"the"}

    def named(outlet: str) -> bool:
        name, _, abbreviation = outlet.partition("(")
        return asked in (words(name), words(abbreviation))

    return [a for a in articles if a.outlet and named(a.outlet)]


def _outlet(info: Any) -> str:
    return str(info.outlet or info.title or info.id)
