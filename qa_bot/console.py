"""The console front end: answers as readable text or JSON, and the interactive `chat` prompt."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from qa_bot.answer import Answerer
from qa_bot.conversation import Conversation, Reply
from qa_bot.errors import QuestionError, StoreUnavailable
from qa_bot.types import Answer, ArticleInfo, Passage

HISTORY_FILE = Path.home() / ".qa_bot_history"
WIDTH = 100

HELP = """\
Ask a question about the articles in plain words, e.g. "how many soldiers left Damascus?".
Follow up on the last answer: "and from Latakia?", "when was that?", "who said that?",
"more", "is that confirmed elsewhere?" (the question as read is shown).
Commands:
  /sources   list the articles
  /more      show the next passage for the last question
  /help      this text
  /quit      leave (Ctrl-D works too)"""


class Style:
    """ANSI styling, switched off when the output is not a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def quote(self, text: str) -> str:
        return self._wrap("1;33", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def bold(self, text: str) -> str:
        return self._wrap("1", text)


def answer_to_json(answer: Answer) -> dict[str, Any]:
    """The machine-readable shape scripts and release checks depend on."""
    return {
        "question": answer.question,
        "answered": answer.answered,
        "answer": answer.quote,
        "passages": [
            {
                "text": p.text,
                "source": p.source.id,
                "title": p.source.title,
                "published": p.source.published,
                "score": p.score,
                "also_in": [a.id for a in p.also_in],
            }
            for p in answer.passages
        ],
    }


def unsearched_json(question: str) -> dict[str, Any]:
    """The documented shape for a question that could not be searched, keeping batch lines aligned."""
    return {"question": question, "answered": False, "answer": None, "passages": []}


def source_line(info: ArticleInfo) -> str:
    """Title, outlet, date and author, whichever the article states, then the file name."""
    parts = [p for p in (info.title, info.outlet, info.published) if p]
    if info.author:
        parts.append(f"by {info.author}")
    return " · ".join(parts + [info.id]) if parts else info.id


def format_answer(answer: Answer, style: Style, first: int = 0, count: int = 1) -> str:
    """The quote (highlighted in its passage), its source and the other outlets carrying it."""
    lines: list[str] = []
    if answer.answered and first == 0:
        top = answer.passages[0]
        lines.append(style.quote(f"“{answer.quote}”"))
        lines.append(f"  — {source_line(top.source)}")
        lines.extend(_also_in(top, style))
        lines.append(style.dim(f"  confidence {answer.confidence:.2f}"))
        context = _highlight(top, style)
        if context.strip() != (answer.quote or "").strip():
            lines.append("")
            lines.append(style.dim("  in context:"))
            lines.append(textwrap.indent(_fill(context), "  "))
        shown = answer.passages[1:count]
    else:
        if first == 0:
            lines.append(f"I couldn't find that in the {answer.article_count} articles. "
                         "The closest passage I have:")
        shown = answer.passages[first: first + count]
    for passage in shown:
        lines.append("")
        lines.append(textwrap.indent(_fill(_highlight(passage, style)), "  "))
        lines.append(style.dim(f"  — {source_line(passage.source)}"))
        lines.extend(_also_in(passage, style))
    return "\n".join(lines)


def format_sources(articles: tuple[ArticleInfo, ...]) -> str:
    """One line per article."""
    return "\n".join(f"{i:>3}. {source_line(a)}" for i, a in enumerate(articles, 1))


def ask_once(answerer: Answerer, question: str, as_json: bool, out: TextIO) -> int:
    """Answer one question on `out`; an empty or oversized question is exit code 2."""
    try:
        answer = answerer.ask(question)
    except QuestionError as e:
        print(f"error: {e}", file=sys.stderr)
        if as_json:
            print(json.dumps(unsearched_json(question), ensure_ascii=False), file=out)
        return e.exit_code
    if as_json:
        print(json.dumps(answer_to_json(answer), ensure_ascii=False), file=out)
    else:
        print(format_answer(answer, Style(out.isatty())), file=out)
    return 0


def ask_stream(answerer: Answerer, lines: TextIO, as_json: bool, out: TextIO) -> int:
    """Answer one question per input line, in order; the model is loaded once for all."""
    status = 0
    for line in lines:
        status = max(status, ask_once(answerer, line.strip(), as_json, out))
        out.flush()
    return status


def chat(answerer: Answerer, read: Callable[[str], str] = input, out: TextIO = sys.stdout) -> int:
    """The interactive prompt: a conversation, so follow-ups work; Ctrl-D, Ctrl-C or /quit leave it."""
    style = Style(out.isatty())
    _enable_line_editing()
    print(f"qa-bot: ask about {len(answerer.index.articles)} news articles. /help for commands.", file=out)
    conversation = Conversation(answerer)
    while True:
        try:
            line = read(style.bold("? ")).strip()
        except (EOFError, KeyboardInterrupt):
            print(file=out)
            return 0
        if not line:
            continue
        command = line.lower()
        if command in ("/quit", "/exit", "/q"):
            return 0
        if command in ("/help", "/?"):
            print(HELP, file=out)
        elif command == "/sources":
            print(format_sources(answerer.articles), file=out)
        elif command.startswith("/") and command != "/more":
            print(f"Unknown command {line.split()[0]}. /help lists the commands.", file=out)
        else:
            try:
                reply = conversation.ask("more" if command == "/more" else line)
            except QuestionError as e:
                print(str(e), file=out)
                continue
            except StoreUnavailable as e:  # the shared store: the next question tries again
                print(f"The archive is unreachable right now ({e.message}); ask again in a moment.", file=out)
                continue
            print(format_reply(reply, style), file=out)
        print(file=out)


def format_reply(reply: Reply, style: Style) -> str:
    """How a follow-up was read, a note, then the answer or the passages it brings."""
    lines = [style.dim(f"(reading that as: {reply.rewritten})")] if reply.rewritten else []
    if reply.reading.kind in ("standalone", "rewrite"):
        return "\n".join(lines + [format_answer(reply.answer, style)])
    if reply.note:
        lines.append(reply.note)
    for passage in reply.passages:
        lines.append(style.quote(f"“{passage.quote or passage.text}”"))
        lines.append(f"  — {source_line(passage.source)}")
        lines.extend(_also_in(passage, style))
    return "\n".join(lines)


def _also_in(passage: Passage, style: Style) -> list[str]:
    if not passage.also_in:
        return []
    names = ", ".join(f"{a.outlet} ({a.id})" if a.outlet else a.id for a in passage.also_in)
    return [style.dim(f"  also in: {names}")]


def _highlight(passage: Passage, style: Style) -> str:
    if not passage.quote:
        return passage.text
    at = passage.text.find(passage.quote)
    if at < 0:
        return passage.text
    end = at + len(passage.quote)
    return passage.text[:at] + style.quote(passage.quote) + passage.text[end:]


def _fill(text: str) -> str:
    return "\n".join(textwrap.fill(p, WIDTH - 4) for p in text.split("\n\n"))


def _enable_line_editing() -> None:
    """Arrow keys and a history kept across sessions, where readline exists."""
    try:
        import atexit
        import readline
    except ImportError:
        return
    try:
        readline.read_history_file(HISTORY_FILE)
    except OSError:
        pass
    readline.set_history_length(1000)
    atexit.register(_save_history, readline)


def _save_history(readline: Any) -> None:
    try:
        readline.write_history_file(HISTORY_FILE)
    except OSError:
        pass
