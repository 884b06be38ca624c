"""Raw scraped text -> article text without page furniture, plus the metadata it states.

The rules look at the shape of a line (length, punctuation, trailing separators), its position
(before the first or after the last real paragraph), repetition across files, and the vocabulary of
page chrome (newsletters, subscriptions, copyright). Kept text is never rewritten, only selected,
so quotes stay verbatim.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from qa_bot.sentences import split_sentences

CLEANER_VERSION = 1

_BULLET = re.compile(r"^\s*(?:[•·▪◦●*]|\d{1,2}[.)])\s+")
_LETTER = re.compile(r"[^\W\d_]")
_TERMINAL = re.compile(r"[.!?…:\"'”’)]\s*$")
_TRAILING_SEPARATOR = re.compile(r"\s[-–—|»›>/]\s*$|[»›]\s*$")
_PAGER = re.compile(r"^(?:PREV|NEXT|PREVIOUS|Previous (?:article|post|story)|Next (?:article|post|story)|"
                    r"Read (?:more|next|also)|Related(?: articles| stories)?|Tags?|Share(?: this)?|"
                    r"Advertisement|ADVERTISEMENT|Sponsored|Browse By|Menu|Home|Search)\b")
_COPYRIGHT = re.compile(
    r"©|\(c\)\s*\d{4}|\bcopyright\s+(?:\d{4}|\(c\))|all rights reserved|unauthori[sz]ed (?:use|reproduction)|"
    r"without (?:the )?(?:express|prior) (?:and )?(?:written )?permission",
    re.IGNORECASE,
)
_PROMO = re.compile(
    r"\bnewsletters?\b|\bsubscri(?:be|ption)\b|\bsign[ -]up\b|\bclick here\b|\bfollow us\b|"
    r"\bjoin (?:the )?(?:over |more than )?[\d.,]+\s*(?:million|thousand|k)?\s*(?:fans|followers|readers)|"
    r"\bbecome (?:our|a) (?:patron|member|subscriber|supporter)\b|\bsupport (?:us|our journalism)\b|"
    r"\bpowered by\b|^view on \w+|\bdownload (?:our|the) app\b|\bcookies?\b|\bunblock\b|"
    r"\bfans of\b.*\bon (?:FB|Facebook|Twitter|X|Instagram)\b|\blike us on\b",
    re.IGNORECASE,
)
_BYLINE = re.compile(
    r"^(?:By\s+)?(?P<author>[A-Z][\w'’.-]+(?:\s+[A-Z][\w'’.-]+){1,3})\s*[—–|,-]\s*(?P<date>.*\d{4}.*)$"
)
_MONTHS = {m: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(),
    start=1)}
_DATE_DMY = re.compile(r"\b(\d{1,2})\s+([A-Z][a-z]+)\.?,?\s+(\d{4})\b")
_DATE_MDY = re.compile(r"\b([A-Z][a-z]+)\.?\s+(\d{1,2}),?\s+(\d{4})\b")
_DATE_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_OUTLET_LINE = re.compile(r"^(?:Source|Via|Originally published (?:by|in|on))\s*:?\s+(?P<outlet>.+)$",
                          re.IGNORECASE)
_VIEW_ON = re.compile(r"\bView on (?P<outlet>[\w.-]+)\s*$")
_COPYRIGHT_OWNER = re.compile(r"©\s*(?:\d{4},?\s*)?(?P<owner>[A-Z][\w.&' -]{1,40}?)[.,]")
_TITLE_SUFFIX = re.compile(r"\s[–—|-]\s(?P<outlet>[A-Z][\w&.' ]{1,40}(?:\s\([A-Z]{2,6}\))?)$")

MIN_BODY_WORDS = 12
MIN_HEADING_WORDS = 4
MAX_CHROME_SENTENCE_WORDS = 25
MAX_REPEATED_LINE_WORDS = 10


@dataclass(frozen=True)
class CleanArticle:
    """The kept paragraphs joined by blank lines, and what the text says about itself."""

    text: str
    title: str | None
    outlet: str | None
    author: str | None
    published: str | None


def repeated_lines(raw_texts: Iterable[str]) -> frozenset[str]:
    """Short lines found in two or more files: a site's furniture, not a syndicated story."""
    counts: Counter[str] = Counter()
    for raw in raw_texts:
        counts.update({_key(line) for line in raw.splitlines() if _is_short(line)})
    return frozenset(key for key, n in counts.items() if n >= 2 and key)


def clean(raw: str, furniture: frozenset[str] = frozenset()) -> CleanArticle:
    """Select the article's own paragraphs from scraped text and read its metadata."""
    lines = [_BULLET.sub("", line).strip() for line in raw.replace("\r\n", "\n").splitlines()]
    lines = ["" if _COPYRIGHT.search(line) else _drop_chrome_sentences(line) for line in lines]
    body = [i for i, line in enumerate(lines) if _is_body(line)]
    first_body, last_body = (body[0], body[-1]) if body else (len(lines), -1)

    kept: list[str] = []
    title: str | None = None
    for i, line in enumerate(lines):
        if not line or _is_furniture(line, furniture) or (i > last_body and not _TERMINAL.search(line)):
            continue
        if i < first_body and title is None and _is_heading(line):
            title = line
        kept.append(line)

    outlet = _find_outlet(raw, lines, title)
    author, published = _find_byline(kept[:4])
    if title is not None and (suffix := _TITLE_SUFFIX.search(title)) is not None:
        title = title[: suffix.start()].strip()
    if published is None:
        published = _find_date(" ".join(kept[:3]))
    return CleanArticle("\n\n".join(kept), title, outlet, author, published)


def _words(line: str) -> int:
    return len(line.split())


def _key(line: str) -> str:
    return " ".join(re.findall(r"\w+", line.lower()))


def _is_short(line: str) -> bool:
    return 0 < _words(line) <= MAX_REPEATED_LINE_WORDS


def _is_body(line: str) -> bool:
    return _words(line) >= MIN_BODY_WORDS and bool(_TERMINAL.search(line))


def _is_heading(line: str) -> bool:
    return _words(line) >= MIN_HEADING_WORDS and not _TERMINAL.search(line)


def _is_furniture(line: str, furniture: frozenset[str]) -> bool:
    if not _LETTER.search(line) or _TRAILING_SEPARATOR.search(line) or _PAGER.match(line):
        return True
    if _COPYRIGHT.search(line):
        return True
    if _is_short(line) and _key(line) in furniture and not _BYLINE.match(line):
        return True
    # A short line that is no sentence: a section label, a menu entry, a country tag.
    return _words(line) < MIN_HEADING_WORDS and not _TERMINAL.search(line) and not _BYLINE.match(line)


def _is_chrome(sentence: str) -> bool:
    return _words(sentence) <= MAX_CHROME_SENTENCE_WORDS and bool(
        _PROMO.search(sentence) or _COPYRIGHT.search(sentence)
    )


def _drop_chrome_sentences(line: str) -> str:
    """Remove promo sentences; a line left with only a fragment is dropped whole."""
    if not line:
        return line
    spans = split_sentences(line)
    keep = [(s, e) for s, e in spans if not _is_chrome(line[s:e])]
    if len(keep) == len(spans):
        return line
    if sum(_words(line[s:e]) for s, e in keep) < MIN_BODY_WORDS:
        return ""
    # Kept sentences are contiguous in practice (the promo leads or trails); slice, never rejoin.
    return line[keep[0][0]: keep[-1][1]] if _contiguous(spans, keep) else line[keep[0][0]: keep[0][1]]


def _contiguous(spans: list[tuple[int, int]], keep: list[tuple[int, int]]) -> bool:
    first = spans.index(keep[0])
    return spans[first: first + len(keep)] == keep


def _find_byline(head: list[str]) -> tuple[str | None, str | None]:
    for line in head:
        if (m := _BYLINE.match(line)) is not None and (date := _find_date(m["date"])) is not None:
            return m["author"], date
    return None, None


def _find_date(text: str) -> str | None:
    if (m := _DATE_ISO.search(text)) is not None:
        return m.group(0)
    for pattern, day_group, month_group in ((_DATE_DMY, 1, 2), (_DATE_MDY, 2, 1)):
        for m in pattern.finditer(text):
            month = _MONTHS.get(m.group(month_group).lower())
            if month is not None:
                return f"{m.group(3)}-{month:02d}-{int(m.group(day_group)):02d}"
    return None


def _find_outlet(raw: str, lines: list[str], title: str | None) -> str | None:
    for line in lines:
        if (m := _OUTLET_LINE.match(line)) is not None and _words(m["outlet"]) <= 6:
            return m["outlet"].strip(" .")
    if title is not None and (m := _TITLE_SUFFIX.search(title)) is not None:
        return m["outlet"].strip()
    if (m := _VIEW_ON.search(raw)) is not None:
        return m["outlet"]
    if (m := _COPYRIGHT_OWNER.search(raw)) is not None:
        return m["owner"].strip()
    return None
