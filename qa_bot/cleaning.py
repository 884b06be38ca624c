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

CLEANER_VERSION = 2

_BULLET = re.compile(r"^\s*(?:[•·▪◦●*\-–→▸►›»]|\d{1,2}[.)])\s+")
_LETTER = re.compile(r"[^\W\d_]")
_TERMINAL = re.compile(r"[.!?…:\"'”’)]\s*$")
_TRAILING_SEPARATOR = re.compile(r"\s[-–—|»›>/]\s*$|[»›]\s*$")
_MENU_SEPARATOR = re.compile(r"\s+[|·•>/]\s+|\s{3,}|\s*\]\s*\[\s*")
_PAGER = re.compile(
    r"^(?:PREV|NEXT|PREVIOUS|Previous (?:article|post|story)|Next (?:article|post|story)|"
    r"Read (?:more|next|also)|See also|Related(?: articles| stories| content)?|Tags?\s*:|Topics\s*:|"
    r"Share(?: this| on)?|Advertisement|ADVERTISEMENT|Sponsored|Promoted|Browse By|Menu|Home|Search|"
    r"Skip to|Jump to|Listen to (?:this|the) (?:article|story)|Reading time|Trending|Most (?:read|popular)|"
    r"LIVE\b|BREAKING\b|Watch\s*:|Never miss|Show comments|Comments?\b)", re.IGNORECASE)
_DATELINE = re.compile(r"^(?:Published|Updated|Last updated|Posted|First published)\b|"
                       r"\b\d+\s*min(?:ute)?s? read\b|\b\d+ comments?\b", re.IGNORECASE)
_CAPTION = re.compile(r"\((?:Photos?|Image|Picture|Photograph|Credit|Foto)\s*(?::|by)[^)]*\)\s*$|"
                      r"\b(?:Getty Images|AFP via Getty|Photo\s*:\s*\S+/\S+)", re.IGNORECASE)
_CREDIT = re.compile(r"^(?:(?:Additional |With )?reporting by|Writing by|Written by|Editing by|"
                     r"Compiled by)\b|\bcontributed (?:reporting|to this report)\b", re.IGNORECASE)
_COPYRIGHT = re.compile(
    r"©|\(c\)\s*\d{4}|\bcopyright\s+(?:\d{4}|\(c\))|all rights reserved|unauthori[sz]ed (?:use|reproduction)|"
    r"without (?:the )?(?:express|prior) (?:and )?(?:written )?permission",
    re.IGNORECASE,
)
_PROMO = re.compile(
    r"\bnewsletters?\b|\bsubscri(?:be|ption|bers? only)\b|\bsign[ -]up\b|\bclick here\b|"
    r"\bfollow (?:us|him|her|them|me) on\b|\blike us on\b|\bturn on notifications\b|"
    r"\bjoin (?:the )?(?:over |more than )?[\d.,]+\s*(?:million|thousand|k)?\s*(?:fans|followers|readers)|"
    r"\bbecome (?:our|a) (?:patron|member|subscriber|supporter)\b|\bsupport (?:us|our journalism)\b|"
    r"\bsupport (?:independent|quality) journalism\b|\bdonate\b|\bfunded by (?:its|our) readers\b|"
    r"\bpowered by\b|^view on \w+|\bdownload (?:our|the) app\b|\bunblock\b|"
    r"\bcookies?\b|\bconsent\b|\bprivacy (?:settings|policy|preferences)\b|\bwe value your privacy\b|"
    r"\baccept all\b|\bmanage preferences\b|\bin your inbox\b|\bfree articles?\b|"
    r"\bunlimited (?:digital )?access\b|\bcancel any ?time\b|\b(?:try|first) \d+ (?:weeks?|months?) for\b|"
    r"\bbook (?:now|today|before)\b|\bshop now\b|\bbuy now\b|\border now\b|\blimited offer\b|"
    r"\bfans of\b.*\bon (?:FB|Facebook|Twitter|X|Instagram)\b",
    re.IGNORECASE,
)
_NAME = r"[A-Z][\w'’.-]+(?:\s+(?:[A-Z][\w'’.-]+|al-\w+|de|van|von|bin|ibn)){1,3}"
_BYLINE = re.compile(rf"^(?:By\s+)?(?P<author>{_NAME})\s*[—–|,-]\s*(?P<date>.*\d{{4}}.*)$")
_BY_LINE = re.compile(rf"^(?:By\s+(?P<author>{_NAME})(?:\s*(?:,|\bin\b|\||—|–)\s*.*)?|"
                      rf"(?P<authors>{_NAME}(?:,\s*{_NAME})*\s+and\s+{_NAME})\s*\|.*)$")
_CREDIT_AUTHOR = re.compile(rf"^(?:Additional |With )?[Rr]eporting by (?P<author>{_NAME})")
_DATE_DMY = re.compile(r"\b(\d{1,2})\s+([A-Z][a-z]{2,8})\.?,?\s+(\d{4})\b")
_DATE_MDY = re.compile(r"\b([A-Z][a-z]{2,8})\.?\s+(\d{1,2}),?\s+(\d{4})\b")
_DATE_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_MONTHS = {m[:3]: i for i, m in enumerate(
    "january february march april may june july august september october november december".split(),
    start=1)}
_OUTLET_LINE = re.compile(r"^(?:Source|Via|Originally published (?:by|in|on))\s*:?\s+(?P<outlet>.+)$",
                          re.IGNORECASE)
_VIEW_ON = re.compile(r"\bView on (?P<outlet>[\w.-]+)\s*$")
_COPYRIGHT_OWNER = re.compile(r"©\s*(?:\d{4},?\s*)?(?P<owner>[A-Z][\w.&' -]{1,40}?)[.,\n]")
_TITLE_SUFFIX = re.compile(r"\s[–—|-]\s(?P<outlet>[A-Z][\w&.' ]{1,40}(?:\s\([A-Z]{2,6}\))?)$")

HEAD_LINES = 20  # metadata (dates, bylines) is looked for this far into the raw page
MIN_BODY_WORDS = 12
MIN_HEADING_WORDS = 4
MIN_TITLE_WORDS = 6  # a site banner or section label is shorter than a headline
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
    raw_lines = [_BULLET.sub("", line).strip() for line in raw.replace("\r\n", "\n").splitlines()]
    lines = ["" if _is_furniture(line, furniture) else _drop_chrome_sentences(line)
             for line in raw_lines]
    body = [i for i, line in enumerate(lines) if _is_body(line)]
    first_body, last_body = (body[0], body[-1]) if body else (len(lines), -1)

    kept: list[tuple[int, str]] = []
    seen: set[str] = set()
    for i, line in enumerate(lines):
        if not line or _is_furniture(line, furniture) or _key(line) in seen:
            continue
        if i > first_body and _is_link(line) and (i > last_body or _in_link_list(lines, i)):
            continue
        seen.add(_key(line))
        kept.append((i, line))

    headings = [(i, line) for i, line in kept if i < first_body and _is_heading(line)]
    title_at, title = next(((i, h) for i, h in headings if len(_key(h).split()) >= MIN_TITLE_WORDS),
                           headings[0] if headings else (-1, None))
    # Above the headline sit site banners and section labels, not the article.
    kept = [(i, line) for i, line in kept if i >= title_at]
    head = raw_lines[:HEAD_LINES]
    author, published = _find_byline(head, [line for _, line in kept])
    outlet = _find_outlet(raw, lines, title)
    if title is not None and (suffix := _TITLE_SUFFIX.search(title)) is not None:
        title = title[: suffix.start()].strip()
    if published is None:
        published = _find_date(" ".join(line for line in head if not _is_body(line)))
    if published is None:
        published = _find_date(" ".join(line for _, line in kept[:3]))
    return CleanArticle("\n\n".join(line for _, line in kept), title, outlet, author, published)


def _words(line: str) -> int:
    return len(line.split())


def _key(line: str) -> str:
    return " ".join(re.findall(r"\w+", line.lower()))


def _is_short(line: str) -> bool:
    return 0 < _words(line) <= MAX_REPEATED_LINE_WORDS


def _is_body(line: str) -> bool:
    return _words(line) >= MIN_BODY_WORDS and bool(_TERMINAL.search(line))


def _is_heading(line: str) -> bool:
    return _words(line) >= MIN_HEADING_WORDS and (not _TERMINAL.search(line) or line.endswith("?"))


def _is_link(line: str) -> bool:
    """A line that is no sentence: a headline, a link text, a label."""
    return not _TERMINAL.search(line) and not _CREDIT.search(line)


def _in_link_list(lines: list[str], i: int) -> bool:
    """Inside the body, two or more headline-like lines in a row are a list of links."""
    neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(lines)]
    return any(lines[j] and _is_link(lines[j]) for j in neighbours)


def _is_furniture(line: str, furniture: frozenset[str]) -> bool:
    if not line or _CREDIT.search(line):
        return False
    if not _LETTER.search(line) or _TRAILING_SEPARATOR.search(line) or _PAGER.match(line):
        return True
    if _COPYRIGHT.search(line) or _CAPTION.search(line) or _is_menu(line):
        return True
    if _DATELINE.search(line) and _words(line) <= MIN_BODY_WORDS:
        return True
    if _is_short(line) and _key(line) in furniture and not _BYLINE.match(line):
        return True
    # A short line that is no sentence: a section label, a menu entry, a country tag.
    return _words(line) < MIN_HEADING_WORDS and not _TERMINAL.search(line) and not _BYLINE.match(line)


def _is_menu(line: str) -> bool:
    """Three or more short items in a row: "Home > World", "Accept | Reject | Settings"."""
    items = [item for item in _MENU_SEPARATOR.split(line) if item.strip()]
    return len(items) >= 3 and all(_words(item) <= 4 for item in items)


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


def _find_byline(head: list[str], kept: list[str]) -> tuple[str | None, str | None]:
    """Author and date from "Name — date", else the author of a "By Name" or credit line."""
    for line in head:
        if (m := _BYLINE.match(line)) is not None and (date := _find_date(m["date"])) is not None:
            return m["author"], date
    for line in head + kept:
        if (m := _BY_LINE.match(line)) is not None:
            return m["author"] or m["authors"], None
        if (m := _CREDIT_AUTHOR.match(line)) is not None:
            return m["author"], None
    return None, None


def _find_date(text: str) -> str | None:
    if (m := _DATE_ISO.search(text)) is not None:
        return m.group(0)
    for pattern, day_group, month_group in ((_DATE_DMY, 1, 2), (_DATE_MDY, 2, 1)):
        for m in pattern.finditer(text):
            month = _MONTHS.get(m.group(month_group).lower()[:3])
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
