"""Answers as Telegram HTML: the quote in bold inside its passage, sources, and message splitting."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from telegram.constants import MessageLimit

from qa_bot.conversation import Reply
from qa_bot.types import Answer, ArticleInfo, Passage

MAX_LENGTH = int(MessageLimit.MAX_TEXT_LENGTH)


def escape(text: str) -> str:
    """Escape corpus or user text for parse_mode=HTML."""
    return html.escape(text, quote=False)


def html_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units), measured on the raw HTML to be safe."""
    return len(text.encode("utf-16-le")) // 2


def source_line(info: ArticleInfo) -> str:
    """Title (in italics, linked when the URL is known), outlet, date, else the file name."""
    parts = [f"<i>{escape(info.title)}</i>"] if info.title else []
    if parts and info.url and _URL_RE.fullmatch(info.url):
        parts[0] = f'<a href="{html.escape(info.url, quote=True)}">{parts[0]}</a>'
    parts += [escape(p) for p in (info.outlet, info.published) if p]
    return ", ".join(parts) if parts else escape(info.id)


def render_passage(passage: Passage) -> str:
    """The passage verbatim in a blockquote, its answering sentence bold, then its sources."""
    text, quote = passage.text, passage.quote
    at = text.find(quote) if quote else -1
    if quote and at >= 0:
        body = f"{escape(text[:at])}<b>{escape(quote)}</b>{escape(text[at + len(quote) :])}"
    else:
        body = escape(text)
    lines = [f"<blockquote>{body}</blockquote>", f"— {source_line(passage.source)}"]
    if passage.also_in:
        lines.append("also in: " + "; ".join(source_line(a) for a in passage.also_in))
    return "\n".join(lines)


def render_answer(answer: Answer, asked: str | None = None) -> list[str]:
    """The reply to a question as HTML blocks: the answering passage, or a plain 'not found'."""
    blocks = [f"❓ <i>{escape(shorten(asked))}</i>"] if asked else []
    if answer.answered and answer.passages:
        blocks.append(render_passage(answer.passages[0]))
    else:
        blocks.append(
            f"I couldn't find an answer to “{escape(shorten(answer.question))}” in the "
            f"{answer.article_count} articles I know. Try other words, or see /sources for "
            "what they cover."
        )
    return blocks


def more_passages(answer: Answer) -> tuple[Passage, ...]:
    """The passages behind the 'More sources' button: all but the one already shown."""
    return answer.passages[1:] if answer.answered else answer.passages


def render_more(answer: Answer) -> list[str]:
    """The 'More sources' reply: a header, then one block per remaining passage."""
    asked = f"<i>{escape(shorten(answer.question))}</i>"
    if answer.answered:
        header, first = f"More passages for {asked}:", 2
    else:
        header, first = f"The closest passages to {asked}, none of which answers it:", 1
    passages = more_passages(answer)
    return [header] + [f"{i}. {render_passage(p)}" for i, p in enumerate(passages, first)]


def render_sources(articles: Sequence[ArticleInfo]) -> list[str]:
    """/sources: one line per article."""
    blocks = [f"<b>The {len(articles)} articles I answer from</b>"]
    blocks += [f"{i}. {source_line(a)}" for i, a in enumerate(articles, 1)]
    return blocks


def date_span(articles: Sequence[ArticleInfo]) -> str:
    """', published A to B' — or how many are dated, when not all are."""
    dates = sorted(a.published for a in articles if a.published)
    if not dates:
        return ""
    span = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
    if len(dates) == len(articles):
        return f", published {span}"
    return f" ({len(dates)} dated: {span})"


def shorten(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_URL_RE = re.compile(r"https?://[^\s<>\"']+")
_ATOM_RE = re.compile(r"<(/?)([a-zA-Z][\w-]*)[^>]*>|&[#\w]+;|[^\s<&]+\s*|\s+|[<&]")


def split_html(blocks: Sequence[str], limit: int = MAX_LENGTH, separator: str = "\n\n") -> list[str]:
    """Pack HTML blocks into messages of at most `limit`; split between blocks, never in a tag.

    A block longer than `limit` on its own is cut at whitespace, closing the tags open at the
    cut and reopening them in the next message, so every message is valid HTML by itself.
    """
    messages: list[str] = []
    current = ""
    for block in blocks:
        for piece in _split_block(block, limit):
            joined = f"{current}{separator}{piece}" if current else piece
            if html_length(joined) <= limit:
                current = joined
            else:
                messages.append(current)
                current = piece
    if current:
        messages.append(current)
    return messages


def _split_block(block: str, limit: int) -> list[str]:
    if html_length(block) <= limit:
        return [block]
    parts: list[str] = []
    stack: list[tuple[str, str]] = []  # (tag name, the opening tag as written)
    current, length, has_text = "", 0, False

    def closing() -> str:
        return "".join(f"</{name}>" for name, _ in reversed(stack))

    for atom in _atoms(block, limit // 2):
        match = _ATOM_RE.fullmatch(atom)
        is_tag = bool(match and match.group(2))
        size = html_length(atom)
        # Room for this atom plus the closing tags (an opening tag adds its own closer).
        extra = len(match.group(2)) + 3 if is_tag and match and not match.group(1) else 0
        if has_text and length + size + extra + html_length(closing()) > limit:
            parts.append(current.rstrip() + closing())
            current = "".join(opening for _, opening in stack)
            length, has_text = html_length(current), False
            if not is_tag:
                atom = atom.lstrip()
                size = html_length(atom)
        current += atom
        length += size
        if is_tag and match:
            if match.group(1):
                stack.pop()
            else:
                stack.append((match.group(2), atom))
        elif atom.strip():
            has_text = True
    parts.append(current + closing())
    return parts


def _atoms(block: str, longest: int) -> list[str]:
    """Tags, entities and words (with their trailing space); over-long words are chopped."""
    atoms: list[str] = []
    for match in _ATOM_RE.finditer(block):
        atom = match.group(0)
        if match.group(2) or atom.startswith("&") or len(atom) <= longest:
            atoms.append(atom)
        else:
            atoms += [atom[i : i + longest] for i in range(0, len(atom), longest)]
    return atoms


def render_reply(reply: Reply, echo: bool = False) -> list[str]:
    """A chat reply: how a follow-up was read, a note ("Another passage:"), then the answer."""
    blocks = [f"❓ <i>{escape(shorten(reply.asked))}</i>"] if echo else []
    if reply.rewritten:
        blocks.append(f"<i>Reading that as: {escape(shorten(reply.rewritten))}</i>")
    if reply.reading.kind in ("standalone", "rewrite"):
        return blocks + render_answer(reply.answer)
    if reply.note:
        blocks.append(escape(reply.note))
    return blocks + [render_passage(p) for p in reply.passages]
