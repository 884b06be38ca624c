"""Raw scraped text -> article text without page furniture, plus the metadata it states.

The rules look at the shape of a line (length, punctuation, trailing separators), its position
(before the first or after the last real paragraph), repetition across files, and the vocabulary of
page chrome (newsletters, subscriptions, copyright). Kept text is never rewritten, only selected,
so quotes stay verbatim.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from qa_bot.sentences import split_sentences

CLEANER_VERSION = 7

_BULLET = re.compile(r"^\s*(?:[•·▪◦●*\-–→▸►›»]|\d{1,2}[.)])\s+")
_LETTER = re.compile(r"[^\W\d_]")
_TERMINAL = re.compile(r"[.!?…:\"'”’)]\s*$")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)]*\s*$")  # "(1:42)" closes no sentence
_TRAILING_SEPARATOR = re.compile(r"\s[-–—|»›>/]\s*$|[»›]\s*$")
_MENU_SEPARATOR = re.compile(r"\s+[|·•>/»›▸→]\s+|\s{2,}|\s*\]\s*\[\s*")
_BREADCRUMB_SEPARATOR = re.compile(r"\s+[>/»›▸→]\s+")
# Page chrome named by a whole line: navigation, pagers, section labels, share buttons, counters.
_NAVIGATION = re.compile(
    r"^(?:home(?:page)?|menu|search|sections?|skip to (?:the )?(?:main )?(?:content|navigation|footer)|"
    r"jump to \w+|back to top|sign in|log ?in|log out|register|subscribe(?: now)?|print|e-?mail|"
    r"share(?: (?:this|the) (?:article|story|page))?|(?:share|post|tweet|send|pin) (?:on|via|to|by) [\w ]+|"
    r"copy link|next|previous|prev|more|advertisement|advertising|sponsored(?: content)?|promoted|"
    r"trending(?: now)?|most (?:read|popular|viewed|shared)|related(?: articles| stories| content| topics)?|"
    r"read (?:more|next|also)|see (?:more|also)|show (?:more|comments)|load more|comments?|view comments|"
    r"listen to (?:this|the) (?:article|story)|watch|live|breaking(?: news)?|top stories|"
    r"latest(?: news)?|you (?:may|might) also like|recommended(?: for you)?|more from [\w&' ]{1,40}|"
    r"don'?t miss|in case you missed it|editor'?s picks?|popular|tags?|topics?|about the author|"
    r"page \d+ of \d+|\d+(?:[.,]\d+)?k? (?:shares|comments|views|likes)|comments? \(\d+\)|"
    r"\(\d+\) comments?|\d+ min(?:ute)?s? read|more on this (?:story|topic)|"
    r"(?:image|photo|picture|slide) \d+ of \d+|"
    r"(?:(?:facebook|twitter|x|whatsapp|e-?mail|linkedin|reddit|telegram|pinterest|instagram|"
    r"youtube|tiktok|flipboard|messenger|copy link|print|share)\W*){2,}|"
    r"(?:(?:\d+|…|\.\.\.|next|prev(?:ious)?|first|last|page|of|[«»‹›<>|])\s*){2,})\s*[:»›>|.\-–—▾]*\s*$",
    re.IGNORECASE,
)
# "Most read: Council votes to extend tram line": a label, a colon, another story's headline.
_LABELLED = re.compile(r"^(?P<label>[A-Z][\w'’&]*(?: [\w'’&]+){0,4})\s*:\s+(?P<rest>\S.*)$")
_TEASER_LABEL = re.compile(
    r"^(?:read (?:more|also|next)|see also|related(?: stories| articles)?|also|more|now|next|"
    r"popular|most (?:read|popular|viewed|shared)|editor'?s picks?|in case you missed it|trending|"
    r"watch|listen|live|breaking|latest|top stor(?:y|ies)|recommended|don'?t miss|opinion|analysis|"
    r"explainer|video|podcast|gallery|in pictures|photos?|photograph|pictures?|images?|credits?|illustration|"
    r"markets live|also read|further reading|sponsored|advertisement)$",
    re.IGNORECASE,
)
_CREDIT_LABEL = re.compile(r"^(?:photos?|photograph|pictures?|images?|credits?|illustration)$", re.IGNORECASE)
_DATELINE = re.compile(
    r"^(?:published|updated|last (?:updated|modified)|posted|first published|modified)\b\s*(?:on|at|:)?\s*"
    r"(?:\d|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b|\w+day\b|yesterday|today|by\b)|"
    r"\b(?:updated|published|posted) \d+ (?:seconds?|minutes?|mins?|hours?|days?) ago\b",
    re.IGNORECASE,
)
# A credit at the end of a line makes it a caption: "(Photo: Reuters/Deniz Tekin)", "Photograph: X/AP".
_CAPTION = re.compile(
    r"\((?=[^()]*(?:/|:|\bby\b|\bvia\b))[^()]*\b(?:photos?|image|picture|photograph|credit|foto|getty|"
    r"reuters|afp|ap|epa|shutterstock|file)\b[^()]*\)\s*$|"
    r"\b(?:photos?|photograph|image|picture|credit|illustration)s?\s*(?::|by)\s*[^.!?]{1,80}$|"
    r"/(?:getty images|afp|reuters|ap|epa|shutterstock)\)?\s*$|"
    r"(?-i:\b(?:REUTERS|AFP|AP|EPA|Getty Images|AP Photo)/[A-Z]|"
    r"\.\s+[A-Z][\w'’-]+(?: [A-Z][\w'’-]+)+ for (?:[Tt]he )?[A-Z][\w ]+$)",
    re.IGNORECASE,
)
_CREDIT = re.compile(r"^(?:(?:Additional |With )?reporting by|Writing by|Written by|Editing by|"
                     r"Compiled by)\b|\bcontributed (?:reporting|to this report)\b", re.IGNORECASE)
_COPYRIGHT = re.compile(r"©|\(c\)\s*\d{4}|^copyright\b\s*(?:\d{4}|\(c\)|©)", re.IGNORECASE)
# The sentences of a rights notice: "All rights reserved.", "may not be published ... without".
_NOTICE = re.compile(
    r"^all rights reserved\b|\bmay (?:not )?be (?:re)?(?:published|produced|printed|distributed|broadcast|"
    r"rewritten|copied|used)\b.*\b(?:without|provided|unless)\b|\b(?:reproduction|duplication|use)\b.*\bwithout\b.*\bpermission\b.*"
    r"\bprohibited\b|\bunauthori[sz]ed (?:use|reproduction)\b|\bcan be republished\b", re.IGNORECASE)
# What page chrome talks about; a prose sentence holding it is kept unless it addresses the reader.
_CHROME_WORDS = re.compile(
    r"\bnewsletters?\b|\bsubscri(?:be|ption|bers? only)\b|\bsign[ -]up\b|\bclick here\b|"
    r"\bturn on notifications\b|"
    r"\bbecome (?:our|a) (?:patron|member|subscriber|supporter)\b|\bsupport (?:us|our journalism)\b|"
    r"\bsupport (?:\w+ )?journalism\b|\bdonat(?:e|ions?)\b|\bfunded by (?:its|our) readers\b|"
    r"\bpowered by\b|\bview on \w+|\bdownload (?:our|the)\b[^.]{0,30}\bapp\b|\bunblock\b|\bad ?blocker\b|"
    r"\bcookies?\b|\bconsent\b|\bprivacy (?:settings|policy|preferences)\b|\bwe value your privacy\b|"
    r"\baccept all\b|\breject all\b|\bmanage (?:preferences|options|cookies)\b|\bin your inbox\b|"
    r"\bfree articles?\b|\barticles? (?:left|remaining)\b|\bunlimited (?:digital )?access\b|"
    r"\bcancel any ?time\b|\b(?:try|first) \d+ (?:weeks?|months?) for\b|\bbook (?:now|today|before)\b|"
    r"\bshop now\b|\bbuy now\b|\border now\b|\blimited offer\b|\btickets? (?:are )?on sale\b|"
    r"\bbet responsibly\b|\b18\+|\bt&cs\b|\bterms and conditions apply\b|\bfans of\b.*\bon (?:FB|Facebook)\b|"
    r"\b\d+ min(?:ute)?s? read\b|\blisten to (?:this|the) (?:article|story)\b|\bshow comments\b|"
    r"\b\d+ comments\b|\breading time\b|\bcomments are closed\b|\bjavascript\b|\bpersonal information\b|"
    r"\bdo not sell\b|\blog ?in\b|\bsign in\b|\byour email\b|\bemail address\b|\bsubscri(?:bing|ber)\b|"
    r"\bapp store\b|\bgoogle play\b|\badvertisement\b|\bcontinue reading\b|\bcontinues below\b|"
    r"\bscroll to continue\b|\bpaid (?:post|content|partnership)\b|\bsponsored by\b|\blicensing rights\b|"
    r"\bopens? (?:in )?(?:a )?new (?:tab|window)\b|\bsee here\b|\bfull ?screen\b|\baffiliate\b|"
    r"\breader-supported\b|\bmake a (?:gift|donation)\b|\btax-deductible\b|\bfind out more\b|"
    r"\blearn more\b|\boffer ends\b|\bterms apply\b|"
    r"\bcreative commons\b",
    re.IGNORECASE,
)
# A site promoting itself on social networks.
_PROMOTION = re.compile(
    r"\bfollow\b[^.]{0,40}\bon (?:google|facebook|fb|twitter|x|instagram|tiktok|youtube|linkedin|threads|"
    r"bluesky|telegram|whatsapp)\b|\blike us on\b|"
    r"\bjoin (?:the )?(?:over |more than )?[\d.,]+\s*(?:million|thousand|k)?\s*(?:fans|followers|readers)",
    re.IGNORECASE)
_READER = re.compile(r"\b(?:[Yy]ou|[Yy]our|[Ww]e|[Oo]ur|us)\b")
_CALL_TO_ACTION = re.compile(
    r"^(?:subscribe|sign|click|tap|follow|join|download|get|donate|support|book|shop|buy|order|register|"
    r"log|listen|watch|read|try|start|enter|share|like|visit|discover|learn|find|become|help|bet|"
    r"don't|never|stay|make|give|see|reach|email|contact|call|please)\b", re.IGNORECASE)
_ATTRIBUTION = re.compile(r"\b(?:said|says|told|tells|heard|according to|ruled|argued|alleged|"
                          r"reported|claimed|wrote|announced|urged|added|warned|insisted|stated|"
                          r"explained|noted|confirmed)\b", re.IGNORECASE)
# Contact details: an e-mail address, an @handle, a phone number.
_CONTACT = re.compile(r"\S+@\S+\.\w+|(?:^|\s)@\w{2,}|\b\d{3}[-. ]\d{4}\b|"
                      r"\b0\d{3,4} ?\d{6}\b|\b0\d{2} \d{4} \d{4}\b")  # UK numbers: 01632 960418
# The page speaking of itself: "this article", "this site".
_SELF = re.compile(r"\b[Tt]his (?:\w+ )?(?:newsletter|site|website|page|article|story|email|app|podcast)\b")
# An author's bio: "Jane Doe is our Paris correspondent", "John Mensah covers courts for the Ledger".
_BIO = re.compile(r"^[A-Z][\w'’.-]+(?: [A-Z][\w'’.-]+){1,3} (?:is|was|covers|writes|reports|has covered)\b"
                  r"[^.]{0,80}\b(?:correspondent|reporter|writer|editor|journalist|columnist|"
                  r"photographer|producer|covers|contributor|freelance)\b")
# "Courts reporter, WXS News": the byline's role line.
_ROLE_LINE = re.compile(r"^(?:[\w'’-]+ ){0,3}(?:reporter|correspondent|editor|writer|columnist|journalist|"
                        r"producer|presenter|contributor)s?\s*,\s*[\w&'’. -]{2,40}$", re.IGNORECASE)
# The label an advertisement carries, alone on its line; the short paragraph under it is its copy.
_AD_LABEL = re.compile(r"^(?:advertisement|advertising|ad|sponsored(?: content)?|promoted|"
                       r"paid (?:content|post|partnership)|partner content)\s*[:.]?$", re.IGNORECASE)
# How an advert pitches: "Name - offer", "from £349", "0% off", "save 10%".
_PITCH = re.compile(r"\s[-–—]\s|\bfrom [£$€]\s?\d|\b\d+% off\b|\bsave (?:up to )?\d+%", re.IGNORECASE)
# The heading of the readers' comments: "Comments (3)", "12 comments", "Join the discussion".
_COMMENTS_HEADER = re.compile(r"^(?:(?:reader'?s'? |user )?comments?(?: \(\d+\))?|"
                              r"\d+ (?:reader )?comments?|join the (?:discussion|conversation|debate)|"
                              r"have your say|what (?:our )?readers (?:say|think)|"
                              r"(?:show|view|read) (?:all )?\d* ?comments)\s*:?$", re.IGNORECASE)
# The page's own copyright notice: "© 2023 Wexmoor Sound Ltd.", "Copyright 2021 …". What follows is footer.
_FOOTER_NOTICE = re.compile(r"^(?:©|\(c\)|copyright)\s*(?:©\s*)?\d{4}\b", re.IGNORECASE)
_QUOTED = re.compile(r"“[^”]*”|\"[^\"]*\"|‘[^’]*’")
_PAGER = re.compile(r"^(?:PREV|NEXT|PREVIOUS)\b")  # capitals: "NEXT Storm season", not "Next week"
_MARKUP = re.compile(r"^!?\[[^\]]*\]\([^)]*\)\s*$|^https?://\S+$|^www\.\S+$")
_NAME = r"[A-Z][\w'’.-]+(?:\s+(?:[A-Z][\w'’.-]+|al-\w+|de|van|von|bin|ibn)){1,3}"
_BYLINE = re.compile(rf"^(?:By\s+)?(?P<author>{_NAME})\s*[—–|,-]\s*(?P<date>.*\d{{4}}.*)$")
_BY_LINE = re.compile(rf"^(?:By\s+(?P<author>{_NAME})(?:\s*(?:,|\bin\b|\||—|–)\s*.*)?|"
                      rf"(?P<authors>{_NAME}(?:,\s*{_NAME})*\s+and\s+{_NAME})\s*\|.*)$")
_CREDIT_AUTHOR = re.compile(rf"^(?:Additional |With )?[Rr]eporting by (?P<author>{_NAME})")
_DATE_DMY = re.compile(r"\b(\d{1,2})\s+([A-Z][a-z]{2,8})\.?,?\s+(\d{4})\b")
_DATE_MDY = re.compile(r"\b([A-Z][a-z]{2,8})\.?\s+(\d{1,2}),?\s+(\d{4})\b")
_DATE_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_DATE_WORDS = frozenset(
    "mon tue tues wed thu thur thurs fri sat sun monday tuesday wednesday thursday friday saturday sunday "
    "am pm at on updated published posted ago hours hour mins minutes last first modified".split())
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
MIN_SHARED_TITLE_WORDS = 2  # a headline shares this many words with the first paragraphs
MAX_CHROME_SENTENCE_WORDS = 40
MAX_REPEATED_LINE_WORDS = 10
MAX_SHORT_SENTENCE_WORDS = 6  # "Bet responsibly." "Updated 3 hours ago." chrome needs no address
MAX_AD_COPY_WORDS = 30  # the copy under an "Advertisement" label; a longer paragraph is the article's


@dataclass(frozen=True)
class CleanArticle:
    """The kept paragraphs joined by blank lines, and what the text says about itself."""

    text: str
    title: str | None
    outlet: str | None
    author: str | None
    published: str | None


def repeated_lines(raw_texts: Iterable[str]) -> frozenset[str]:
    """Short non-sentence lines found in two or more files (see `furniture_lines`)."""
    return furniture_lines(line_counts(raw_texts))


def line_counts(raw_texts: Iterable[str]) -> Counter[str]:
    """How many of the texts hold each short non-sentence line, by the line's key."""
    counts: Counter[str] = Counter()
    for raw in raw_texts:
        counts.update({_key(line) for line in raw.splitlines()
                       if _is_short(line) and not _TERMINAL.search(line)} - {""})
    return counts


def furniture_lines(counts: Mapping[str, int]) -> frozenset[str]:
    """The lines of `line_counts` that two or more files hold: a site's furniture. A sentence two
    files share is syndicated text, kept in both and folded into one result at question time."""
    return frozenset(key for key, n in counts.items() if n >= 2)


def clean(raw: str, furniture: frozenset[str] = frozenset(),
          headlines: frozenset[str] = frozenset()) -> CleanArticle:
    """Select the article's own paragraphs from scraped text and read its metadata.

    `furniture` holds the keys of lines repeated across files; `headlines` the keys of the corpus's
    headlines, so a teaser naming another article inside this one goes too.
    """
    raw_lines = [_BULLET.sub("", line).strip() for line in raw.replace("\r\n", "\n").splitlines()]
    lines = ["" if _is_furniture(line, furniture) or _is_ad_copy(line, above) or _is_unlabelled_ad(line)
             else _drop_chrome_sentences(line)
             for line, above in zip(raw_lines, _lines_above(raw_lines), strict=True)]
    first_text = next((i for i, line in enumerate(lines) if _is_body(line)), len(lines))
    footer = next((i for i, line in enumerate(raw_lines)
                   if i > first_text and (_FOOTER_NOTICE.match(line) or _COMMENTS_HEADER.match(line))),
                  None)
    if footer is not None:  # below the readers' comments or the page's copyright notice: not the article
        lines = lines[:footer] + [""] * (len(lines) - footer)
    body = [i for i, line in enumerate(lines) if _is_body(line) and not _BIO.match(line)]
    first_body, last_body = (body[0], body[-1]) if body else (len(lines), -1)
    # Below the last paragraph, a line about the author is the page's, not the article's.
    lines = ["" if i > last_body and _BIO.match(line) else line for i, line in enumerate(lines)]

    kept: list[tuple[int, str]] = []
    seen: set[str] = set()
    for i, line in enumerate(lines):
        if not line or _is_furniture(line, furniture) or _key(line) in seen:
            continue
        # Inside the body a line that is no sentence next to another, or behind a "Label:", is a
        # teaser for another story; past the last paragraph every such line is.
        if i > first_body and _is_link(line) and (
                i > last_body or _in_link_list(lines, i) or _LABELLED.match(line)):
            continue
        seen.add(_key(line))
        kept.append((i, line))

    headings = [(i, line) for i, line in kept if i < first_body and _is_heading(line)]
    lead = {w for i in body[:3] for w in _key(lines[i]).split() if len(w) > 3}
    # The headline is the first long heading that speaks of what the article says (a site's
    # tagline does not), else the first long heading, else the first heading.
    long_headings = [(i, h) for i, h in headings if len(_key(h).split()) >= MIN_TITLE_WORDS]
    title_at, title = next(
        ((i, h) for i, h in long_headings if len(lead & set(_key(h).split())) >= MIN_SHARED_TITLE_WORDS),
        long_headings[0] if long_headings else headings[0] if headings else (-1, None))
    # Above the headline sit site banners and section labels, not the article.
    kept = [(i, line) for i, line in kept if i >= title_at]
    head = raw_lines[:HEAD_LINES]
    author, published = _find_byline(head, [line for _, line in kept])
    outlet = _find_outlet(raw, raw_lines, title)
    if title is not None and (suffix := _TITLE_SUFFIX.search(title)) is not None:
        title = title[: suffix.start()].strip()
    if published is None:
        published = _find_date(" ".join(line for line in head if not _is_body(line)))
    if published is None:
        published = _find_date(" ".join(line for _, line in kept[:3]))
    article = CleanArticle("\n\n".join(line for _, line in kept), title, outlet, author, published)
    return without_teasers(article, headlines) if headlines else article


def without_teasers(article: CleanArticle, headlines: frozenset[str]) -> CleanArticle:
    """The article less its lines that are another article's headline (`headlines` holds the
    corpus's headline keys): inside an article such a line is a teaser for that other article."""
    title, judged = _own_title_and_rest(article)
    kept = title + [p for p in judged if _headline_key(p) not in headlines]
    return replace(article, text="\n\n".join(kept))


def teaser_keys(article: CleanArticle) -> set[str]:
    """The keys of the paragraphs `without_teasers` judges: every one but the article's headline."""
    return {_headline_key(p) for p in _own_title_and_rest(article)[1]} - {""}


def _own_title_and_rest(article: CleanArticle) -> tuple[list[str], list[str]]:
    paragraphs = article.text.split("\n\n")
    own_title = 1 if article.title is not None else 0  # the first paragraph is the headline itself
    return paragraphs[:own_title], paragraphs[own_title:]


def headline_key(title: str | None) -> str:
    """How a headline is compared with the lines of other articles."""
    return _key(_TITLE_SUFFIX.sub("", title)) if title else ""


def _headline_key(line: str) -> str:
    """A line's key without a leading "Label:", as teasers quote headlines (in Markdown too, as
    feeds carry them: "**Related:** [Headline](/link)")."""
    line = plain_markdown(line)
    if (m := _LABELLED.match(line)) is not None:
        line = m["rest"]
    return _key(line)


_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*)(?=\S)(.+?)(?<=\S)\1")


def plain_markdown(markdown: str) -> str:
    """Markdown's inline marks as plain text: images go, links keep their words, marks around
    words go."""
    return _MD_EMPHASIS.sub(r"\2", _MD_LINK.sub(r"\1", _MD_IMAGE.sub("", markdown)))


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
    """Chrome recognised by the shape of the whole line; prose sentences are judged one by one."""
    if not line or _CREDIT.search(line):
        return False
    sentence = bool(_TERMINAL.search(line)) and not line.endswith(":")
    prose = sentence or len(split_sentences(line)) > 1
    if not _LETTER.search(line) or _TRAILING_SEPARATOR.search(line) or _MARKUP.match(line):
        return True
    if _NAVIGATION.match(line) or _PAGER.match(line) or _is_menu(line) or _CAPTION.search(line) \
            or _ROLE_LINE.match(line):
        return True
    if _is_teaser(line) or _is_date_line(line):
        return True
    if not prose and _words(line) <= MAX_CHROME_SENTENCE_WORDS and (
            _CHROME_WORDS.search(line) or _COPYRIGHT.search(line) or _CONTACT.search(line)):
        return True
    if _DATELINE.search(line) and (not sentence or _words(line) <= MAX_SHORT_SENTENCE_WORDS):
        return True
    if _is_short(line) and _key(line) in furniture and not _BYLINE.match(line):
        return True
    # A short line that is no sentence: a section label, a menu entry, a country tag.
    return _words(line) < MIN_HEADING_WORDS and not sentence and not _BYLINE.match(line)


def _lines_above(lines: list[str]) -> list[str]:
    """For each line, the last line above it that is not blank ("" for the first)."""
    above: list[str] = []
    last = ""
    for line in lines:
        above.append(last)
        last = line or last
    return above


def _is_ad_copy(line: str, above: str) -> bool:
    """The short paragraph under an "Advertisement" label (`above`, the line before it that is not
    blank) that pitches like an advert ("Dunmere Motors - 0% finance…", "breaks from £420 a week");
    an article's paragraph there stays."""
    return bool(_AD_LABEL.match(above)) and 0 < _words(line) <= MAX_AD_COPY_WORDS \
        and bool(_TERMINAL.search(line)) and bool(_PITCH.search(line)) \
        and not _ATTRIBUTION.search(line) and not _QUOTED.search(line)


def _is_unlabelled_ad(line: str) -> bool:
    """An advert dropped between paragraphs with no label: a pitch ("Name - offer", "from £349")
    followed by a call to action or a fragment ("…from £2,999. Visit our showroom", "…Sunday 8
    September. Free entry"). A headline is one sentence; a paragraph ends its sentences."""
    if _words(line) > MAX_AD_COPY_WORDS or not _PITCH.search(line) or _ATTRIBUTION.search(line) \
            or _QUOTED.search(line):
        return False
    spans = split_sentences(line)
    if len(spans) < 2:
        return False
    last = line[spans[-1][0]: spans[-1][1]]
    return not _TERMINAL.search(last) or bool(_CALL_TO_ACTION.match(last))


def _is_teaser(line: str) -> bool:
    """"Most read: Council votes to extend tram line": a teaser label before a headline."""
    m = _LABELLED.match(line)
    if m is None or not _TEASER_LABEL.match(m["label"]) or _words(line) > MAX_CHROME_SENTENCE_WORDS:
        return False
    rest = m["rest"]
    if _CREDIT_LABEL.match(m["label"]) is not None or not _SENTENCE_END.search(rest):
        return True
    return rest.endswith("?") and rest[:1].isupper()  # "Related: Why are rents rising?"


def _is_date_line(line: str) -> bool:
    """A line of nothing but dates, times and zones: "Sun 14 Apr 2024 18.59 BST"."""
    tokens = re.findall(r"[^\W\d_]+", line)
    return bool(_DATE_DMY.search(line) or _DATE_MDY.search(line) or _DATE_ISO.search(line)) and all(
        t.lower()[:3] in _MONTHS or t.lower() in _DATE_WORDS or (t.isupper() and len(t) <= 4)
        for t in tokens)


def _is_menu(line: str) -> bool:
    """Short items in a row: "Home | World | Sport", "Accept | Reject | Settings", "News › UK"."""
    items = [item for item in _MENU_SEPARATOR.split(line) if item.strip()]
    if len(items) >= 3 and all(_words(item) <= 4 for item in items):
        return True
    crumbs = [item for item in _BREADCRUMB_SEPARATOR.split(line) if item.strip()]
    return len(crumbs) >= 2 and all(_words(item) <= 4 for item in crumbs)


def _chrome_kind(sentence: str) -> str | None:
    """"strong" for a sentence of page chrome on its own terms: a rights notice, contact details,
    the page speaking of itself, chrome talk addressed to the reader ("Sign up for our newsletter");
    "weak" for chrome words in a call to action or a few words ("Bet responsibly."), which count
    only when the whole line is chrome. Reported speech is news, never chrome."""
    if _words(sentence) > MAX_CHROME_SENTENCE_WORDS or _ATTRIBUTION.search(sentence):
        return None
    unquoted = _QUOTED.sub("", sentence)
    if _COPYRIGHT.search(unquoted) or _NOTICE.search(unquoted) or _CONTACT.search(unquoted) \
            or _SELF.search(unquoted) or _PROMOTION.search(unquoted):
        return "strong"
    if not _CHROME_WORDS.search(unquoted):
        return None
    if _READER.search(unquoted) or not _TERMINAL.search(sentence):  # "…unplanned.View on euronews"
        return "strong"
    if _CALL_TO_ACTION.match(unquoted) or _words(sentence) <= MAX_SHORT_SENTENCE_WORDS \
            or _LABELLED.match(sentence):  # "Meridian Pro: unlimited access for $9.99 a month."
        return "weak"
    return None


def _drop_chrome_sentences(line: str) -> str:
    """Remove chrome sentences; a line left with only a fragment is dropped whole."""
    if not line:
        return line
    spans = split_sentences(line)
    kinds = [_chrome_kind(line[s:e]) for s, e in spans]
    prose = [span for span, kind in zip(spans, kinds, strict=True) if kind is None]
    if len(prose) < len(spans) and sum(_words(line[s:e]) for s, e in prose) < MIN_BODY_WORDS:
        return ""  # a fragment of prose among chrome: "Winter escape: fly from 49 euros. Book now."
    keep = [span for span, kind in zip(spans, kinds, strict=True) if kind != "strong"]
    if len(keep) == len(spans):
        return line
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
