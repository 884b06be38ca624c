"""Article text -> overlapping sentence-window passages with character offsets (pure functions)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa_bot.sentences import split_sentences

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"[.!?…\"'”’)]\s*$")
MIN_STANDALONE_WORDS = 8

Span = tuple[int, int]


@dataclass(frozen=True)
class Chunk:
    """A passage: a verbatim slice [start, end) of one article and its sentence spans."""

    article_id: str
    start: int
    end: int
    text: str
    sentences: tuple[Span, ...]  # offsets into the article, each inside [start, end)


def paragraphs(text: str) -> list[Span]:
    """Spans of the blank-line separated paragraphs of a text."""
    spans, start = [], 0
    for brk in _PARAGRAPH_BREAK.finditer(text):
        spans.append((start, brk.start()))
        start = brk.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def chunk_article(article_id: str, text: str, sentences: int = 3, overlap: int = 1) -> list[Chunk]:
    """Cut an article into windows of `sentences` sentences sharing `overlap` with the next.

    Windows stay inside a paragraph, but headlines and bylines ride along with the paragraph
    that follows them, so a short line is never a passage of its own.
    """
    if sentences < 1 or not 0 <= overlap < sentences:
        raise ValueError("need sentences >= 1 and 0 <= overlap < sentences")
    chunks: list[Chunk] = []
    for block in _blocks(text):
        step = sentences - overlap
        for first in range(0, max(len(block) - overlap, 1), step):
            window = block[first: first + sentences]
            start, end = window[0][0], window[-1][1]
            chunks.append(Chunk(article_id, start, end, text[start:end], tuple(window)))
    return chunks


def _blocks(text: str) -> list[list[Span]]:
    """Sentence spans grouped by paragraph, short header lines joined to the next paragraph."""
    blocks: list[list[Span]] = []
    pending: list[Span] = []
    for start, end in paragraphs(text):
        para = text[start:end]
        if len(para.split()) < MIN_STANDALONE_WORDS or not _SENTENCE_END.search(para):
            pending.append((start, end))
            continue
        blocks.append(pending + split_sentences(para, offset=start))
        pending = []
    if pending:
        blocks.append(pending)
    return blocks
