"""Sentence boundaries as character spans, so every quote stays a verbatim slice of its article."""

from __future__ import annotations

import re

# Words that end with a period without ending the sentence ("Dec. 11", "U.S. officials").
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sen rep gen col lt sgt st jr sr inc ltd co corp no vs etc approx est "
    "jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun".split()
)

# A terminator (., !, ?, …, or ... ) with any closing quotes or brackets after it.
_TERMINATOR = re.compile(r"(?:\.{3}|[.!?…])+[\"'”’)\]]*")
_OPENING = "\"'“‘([«"


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Split one paragraph into sentence spans (start, end), offsets shifted by `offset`."""
    spans: list[tuple[int, int]] = []
    start = _skip_space(text, 0)
    for match in _TERMINATOR.finditer(text):
        end = match.end()
        if end >= len(text) or not _is_boundary(text, match.start(), end):
            continue
        if end > start:
            spans.append((offset + start, offset + end))
        start = _skip_space(text, end)
    if start < len(text.rstrip()):
        spans.append((offset + start, offset + len(text.rstrip())))
    return spans


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _is_boundary(text: str, term_start: int, term_end: int) -> bool:
    nxt = text[term_end:term_end + 1]
    glued = not nxt.isspace()
    after = text[_skip_space(text, term_end):]
    if not after:
        return True
    first = after[0]
    if not (first.isupper() or first.isdigit() or first in _OPENING):
        return False
    word = re.search(r"(\w+)\W*$", text[:term_start])
    token = word.group(1) if word else ""
    if text[term_start] == "." and (token.lower() in _ABBREVIATIONS or _is_initial(token)):
        return False
    if glued:
        # "unplanned.View on" and "on FB…It's" are two sentences; "U.S." and "3.5" are not.
        return first.isupper() and len(token) > 1 and after[1:2].islower() and token[-1:].islower() \
            or text[term_start] == "…"
    return True


def _is_initial(token: str) -> bool:
    """A single capital letter, as in "B. Assad" or "U.S."."""
    return len(token) == 1 and token.isupper()
