"""The Telegram front end: `qa-bot telegram` serves the Answerer through python-telegram-bot."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import html
import itertools
import logging
import os
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatAction, MessageLimit, ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackContext,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    ExtBot,
    MessageHandler,
    filters,
)

from qa_bot.config import Settings
from qa_bot.errors import ConfigError, QABotError, QuestionError
from qa_bot.types import Answer, ArticleInfo, Passage

if TYPE_CHECKING:
    from qa_bot.answer import Answerer

logger = logging.getLogger(__name__)

DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_RATE_LIMIT = 10  # requests per user per minute
RATE_WINDOW_S = 60.0
MAX_LENGTH = int(MessageLimit.MAX_TEXT_LENGTH)
ANSWER_CACHE_SIZE = 1000
MORE_KEY_BYTES = 12  # 16 URL-safe characters: unguessable, and well inside the 64-byte callback data
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
# A token as @BotFather issues it: the bot id, a colon, a 35-character secret.
TOKEN_RE = re.compile(r"\d{3,20}:[A-Za-z0-9_-]{30,100}")
WEBHOOK_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
DEFAULT_EXAMPLES = (
    "How many soldiers did Russia withdraw from Damascus?",
    "Where did Assad publish his statement?",
    "Which bases does Russia want to keep in Syria?",
)
COMMANDS = (
    BotCommand("start", "What I know and how to ask"),
    BotCommand("ask", "Ask a question: /ask <question>"),
    BotCommand("sources", "The articles I answer from"),
    BotCommand("help", "How to use this bot"),
)

REFUSAL = "Sorry, this is a private bot: it only answers the people and chats its owner has allowed."
SOMETHING_WENT_WRONG = "Sorry, something went wrong while answering. Please try again in a moment."


# -- configuration -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BotConfig:
    """Everything the Telegram front end needs beyond the core Settings."""

    token: str = field(repr=False)
    api_base_url: str = DEFAULT_API_BASE_URL
    allowed_users: frozenset[int] = frozenset()
    allowed_chats: frozenset[int] = frozenset()
    rate_limit: int = DEFAULT_RATE_LIMIT
    webhook_url: str | None = None
    listen: str = "0.0.0.0"
    port: int = 8443
    webhook_secret: str = field(default="", repr=False)
    examples: tuple[str, ...] = DEFAULT_EXAMPLES

    @classmethod
    def from_args(cls, args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> BotConfig:
        """Read flags, then TELEGRAM_* / QA_BOT_* variables; raise ConfigError when malformed."""
        env = os.environ if environ is None else environ
        token = _read_token(getattr(args, "token_file", None), env)
        webhook_url = getattr(args, "webhook_url", None) or env.get("TELEGRAM_WEBHOOK_URL") or None
        if webhook_url:
            parts = urlsplit(webhook_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(
                    f"--webhook-url {webhook_url!r} is not an http(s) URL",
                    hint="e.g. --webhook-url https://bot.example.org/telegram",
                )
        secret = getattr(args, "webhook_secret", None) or env.get("TELEGRAM_WEBHOOK_SECRET", "")
        if secret and not WEBHOOK_SECRET_RE.fullmatch(secret):
            raise ConfigError(
                "the webhook secret may only hold A-Z, a-z, 0-9, _ and - (1-256 characters)",
                hint="fix --webhook-secret / TELEGRAM_WEBHOOK_SECRET, or leave it unset",
            )
        rate_limit = getattr(args, "rate_limit", None)
        if rate_limit is None:
            rate_limit = _int_env(env, "QA_BOT_RATE_LIMIT", DEFAULT_RATE_LIMIT)
        if rate_limit < 0:
            raise ConfigError("the rate limit cannot be negative", hint="use 0 for no limit")
        examples = tuple(q.strip() for q in env.get("QA_BOT_EXAMPLES", "").split("|") if q.strip())
        return cls(
            token=token,
            api_base_url=env.get("TELEGRAM_API_BASE_URL", "").strip() or DEFAULT_API_BASE_URL,
            allowed_users=_ids(env, "QA_BOT_ALLOWED_USERS"),
            allowed_chats=_ids(env, "QA_BOT_ALLOWED_CHATS"),
            rate_limit=rate_limit,
            webhook_url=webhook_url,
            listen=getattr(args, "listen", None) or "0.0.0.0",
            port=getattr(args, "port", None) or 8443,
            webhook_secret=secret or secrets.token_urlsafe(32),
            examples=examples[:3] or DEFAULT_EXAMPLES,
        )

    def allows(self, user_id: int | None, chat_id: int | None) -> bool:
        """No allowlist: everyone may ask; else a listed user, or anyone in a listed chat."""
        if not self.allowed_users and not self.allowed_chats:
            return True
        return user_id in self.allowed_users or chat_id in self.allowed_chats


def _read_token(token_file: str | None, env: Mapping[str, str]) -> str:
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the token file {token_file}: {exc.strerror}",
                hint="pass the file @BotFather's token is saved in",
            ) from None
        origin = f"the token in {token_file}"
    else:
        token = env.get("TELEGRAM_BOT_TOKEN", "").strip()
        origin = "TELEGRAM_BOT_TOKEN"
        if not token:
            raise ConfigError(
                "no Telegram bot token: TELEGRAM_BOT_TOKEN is not set",
                hint="create a bot with @BotFather and export TELEGRAM_BOT_TOKEN, or pass --token-file",
            )
    if not TOKEN_RE.fullmatch(token):
        # Never echo the value: a half-pasted token is still a secret.
        raise ConfigError(
            f"{origin} is malformed: expected <bot id>:<secret> as @BotFather gives it",
            hint="copy the whole token, e.g. 123456789:AAH...",
        )
    return token


def _ids(env: Mapping[str, str], name: str) -> frozenset[int]:
    raw = env.get(name, "")
    try:
        return frozenset(int(part) for part in re.split(r"[\s,]+", raw) if part)
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} must be a comma-separated list of numeric Telegram ids",
            hint="e.g. 123456789,-1001234567890",
        ) from None


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the `qa-bot telegram` options (the corpus options come from the cli)."""
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help="read the bot token from this file instead of TELEGRAM_BOT_TOKEN",
    )
    parser.add_argument(
        "--webhook-url",
        metavar="URL",
        help="public HTTPS URL Telegram should POST updates to; runs a webhook server "
        "instead of long polling (TELEGRAM_WEBHOOK_URL)",
    )
    parser.add_argument(
        "--port", type=int, metavar="N", help="port the webhook server listens on (default 8443)"
    )
    parser.add_argument("--listen", metavar="ADDR", help="address the webhook server binds (default 0.0.0.0)")
    parser.add_argument(
        "--webhook-secret",
        metavar="SECRET",
        help="secret Telegram sends with each webhook request (TELEGRAM_WEBHOOK_SECRET; "
        "default: a random one per run)",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        metavar="N",
        help=f"requests one user may make per minute, 0 for no limit "
        f"(QA_BOT_RATE_LIMIT, default {DEFAULT_RATE_LIMIT})",
    )


# -- formatting --------------------------------------------------------------------------------


def _e(text: str) -> str:
    """Escape corpus or user text for parse_mode=HTML."""
    return html.escape(text, quote=False)


def html_length(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units), measured on the raw HTML to be safe."""
    return len(text.encode("utf-16-le")) // 2


def source_line(info: ArticleInfo) -> str:
    """Title (in italics, linked when the URL is known), outlet, date, else the file name."""
    parts = [f"<i>{_e(info.title)}</i>"] if info.title else []
    if parts and info.url and _URL_RE.fullmatch(info.url):
        parts[0] = f'<a href="{html.escape(info.url, quote=True)}">{parts[0]}</a>'
    parts += [_e(p) for p in (info.outlet, info.published) if p]
    return ", ".join(parts) if parts else _e(info.id)


def render_passage(passage: Passage) -> str:
    """The passage verbatim in a blockquote, its answering sentence bold, then its sources."""
    text, quote = passage.text, passage.quote
    at = text.find(quote) if quote else -1
    if quote and at >= 0:
        body = f"{_e(text[:at])}<b>{_e(quote)}</b>{_e(text[at + len(quote) :])}"
    else:
        body = _e(text)
    lines = [f"<blockquote>{body}</blockquote>", f"— {source_line(passage.source)}"]
    if passage.also_in:
        lines.append("also in: " + "; ".join(source_line(a) for a in passage.also_in))
    return "\n".join(lines)


def render_answer(answer: Answer, asked: str | None = None) -> list[str]:
    """The reply to a question as HTML blocks: the answering passage, or a plain 'not found'."""
    blocks = [f"❓ <i>{_e(_shorten(asked))}</i>"] if asked else []
    if answer.answered and answer.passages:
        blocks.append(render_passage(answer.passages[0]))
    else:
        blocks.append(
            f"I couldn't find an answer to “{_e(_shorten(answer.question))}” in the "
            f"{answer.article_count} articles I know. Try other words, or see /sources for "
            "what they cover."
        )
    return blocks


def more_passages(answer: Answer) -> tuple[Passage, ...]:
    """The passages behind the 'More sources' button: all but the one already shown."""
    return answer.passages[1:] if answer.answered else answer.passages


def render_more(answer: Answer) -> list[str]:
    """The 'More sources' reply: a header, then one block per remaining passage."""
    asked = f"<i>{_e(_shorten(answer.question))}</i>"
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


def _shorten(text: str, limit: int = 200) -> str:
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


# -- shared state ------------------------------------------------------------------------------


class UserRateLimit:
    """At most `limit` requests per user in any `window` seconds; a warning once per burst."""

    def __init__(self, limit: int, window: float = RATE_WINDOW_S) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[int, deque[float]] = {}
        self._warned: set[int] = set()

    def check(self, user_id: int) -> Literal["ok", "warn", "drop"]:
        """Record a request: 'ok' to serve it, 'warn' to say slow down, 'drop' to ignore it."""
        if self.limit <= 0:
            return "ok"
        now = time.monotonic()
        if len(self._hits) > 10_000:
            self._forget_idle(now)
        hits = self._hits.setdefault(user_id, deque())
        while hits and now - hits[0] >= self.window:
            hits.popleft()
        if len(hits) < self.limit:
            hits.append(now)
            self._warned.discard(user_id)
            return "ok"
        if user_id in self._warned:
            return "drop"
        self._warned.add(user_id)
        return "warn"

    def wait_s(self, user_id: int) -> int:
        """Seconds until this user may ask again."""
        hits = self._hits.get(user_id)
        if not hits:
            return 0
        return max(1, int(self.window - (time.monotonic() - hits[0])) + 1)

    def _forget_idle(self, now: float) -> None:
        for user_id in [u for u, h in self._hits.items() if not h or now - h[-1] >= self.window]:
            del self._hits[user_id]
            self._warned.discard(user_id)


@dataclass(frozen=True)
class Remembered:
    """An answer kept for its 'More sources' button, and whom it was given to."""

    answer: Answer
    chat_id: int
    user_id: int | None


class BotState:
    """What all handlers share, kept in `application.bot_data`."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.config = BotConfig(token="")
        self.limiter = UserRateLimit(DEFAULT_RATE_LIMIT)
        self._answerer: Answerer | None = None
        self.refused: set[int] = set()
        self.answers: OrderedDict[str, Remembered] = OrderedDict()

    @property
    def answerer(self) -> Answerer:
        """The loaded Answerer (set in post_init, before any update is handled)."""
        if self._answerer is None:
            raise RuntimeError("the Answerer is not loaded yet")
        return self._answerer

    @answerer.setter
    def answerer(self, answerer: Answerer) -> None:
        self._answerer = answerer

    @property
    def loaded(self) -> bool:
        """Whether the Answerer is loaded."""
        return self._answerer is not None

    def remember(self, answer: Answer, chat_id: int, user_id: int | None) -> str:
        """Keep an answer for its 'More sources' button; returns the key for callback data.

        Keys are random, so no one can guess another's, and bound to the chat and the user the
        answer went to, so a button forwarded or forged elsewhere shows nothing."""
        key = secrets.token_urlsafe(MORE_KEY_BYTES)
        self.answers[key] = Remembered(answer, chat_id, user_id)
        while len(self.answers) > ANSWER_CACHE_SIZE:
            self.answers.popitem(last=False)
        return key

    def recall(self, key: str, chat_id: int, user_id: int) -> Answer | None:
        """The answer kept under `key`, once, if it was given in this chat to this user."""
        kept = self.answers.get(key)
        if kept is None or kept.chat_id != chat_id or kept.user_id not in (None, user_id):
            return None
        del self.answers[key]
        return kept.answer


Context = CallbackContext[ExtBot[Any], dict[Any, Any], dict[Any, Any], BotState]
App = Application[ExtBot[int], Context, dict[Any, Any], dict[Any, Any], BotState, Any]
Handler = Callable[[Update, Context], Coroutine[Any, Any, None]]


# -- handlers ----------------------------------------------------------------------------------


def guarded(handler: Handler) -> Handler:
    """Apply the allowlist and the per-user rate limit before `handler` runs."""

    @functools.wraps(handler)
    async def wrapper(update: Update, context: Context) -> None:
        state = context.bot_data
        user = update.effective_user
        chat = update.effective_chat
        user_id = user.id if user else None
        if not state.config.allows(user_id, chat.id if chat else None):
            first = user_id is not None and user_id not in state.refused
            if user_id is not None:
                state.refused.add(user_id)
            logger.info("refused user %s in chat %s", user_id, chat.id if chat else None)
            await _tell(update, context, REFUSAL if first else None)
            return
        if user_id is not None:
            verdict = state.limiter.check(user_id)
            if verdict != "ok":
                wait = state.limiter.wait_s(user_id)
                slow_down = (
                    f"You're asking faster than I can keep up — please slow down and try again "
                    f"in {wait} seconds."
                )
                await _tell(update, context, slow_down if verdict == "warn" else None)
                return
        await handler(update, context)

    return wrapper


async def _tell(update: Update, context: Context, text: str | None) -> None:
    """Reply with plain `text` (None: stay silent), answering a button press if it was one."""
    query = update.callback_query
    if query:
        await query.answer(text, show_alert=bool(text))
    elif text and update.effective_message:
        await update.effective_message.reply_text(_e(text))


@guarded
async def start(update: Update, context: Context) -> None:
    """/start: what the corpus is and a few example questions to tap."""
    state = context.bot_data
    articles = state.answerer.articles
    text = (
        f"Hello! I answer questions about <b>{len(articles)} news articles</b>"
        f"{_e(date_span(articles))}.\n\n"
        "Ask in plain words and I reply with the exact passage that answers it, quoted "
        "verbatim with its source. When the articles don't say, I tell you so.\n\n"
        "Try one of these, or /help:"
    )
    buttons = [
        [InlineKeyboardButton(_shorten(q, 60), callback_data=f"ex:{i}")]
        for i, q in enumerate(state.config.examples)
    ]
    assert update.effective_message
    await update.effective_message.reply_text(text, reply_markup=InlineKeyboardMarkup(buttons))


@guarded
async def help_command(update: Update, context: Context) -> None:
    """/help: how to ask, in private chats and in groups."""
    username = _e(context.bot.username)
    text = (
        "<b>How to ask</b>\n"
        "Send me a question in plain words. I reply with the passage of the articles that "
        "answers it, quoted verbatim, the answering sentence in bold, and where it comes "
        "from. <b>More sources</b> under an answer shows the other passages I found.\n\n"
        "/ask &lt;question&gt; — ask (this is how to ask in a group)\n"
        "/sources — the articles I answer from\n"
        "/start — what I know, with example questions\n"
        "/help — this message\n\n"
        f"In groups I only answer /ask, a message that mentions @{username}, "
        "or a reply to one of my messages."
    )
    assert update.effective_message
    await update.effective_message.reply_text(text)


@guarded
async def sources(update: Update, context: Context) -> None:
    """/sources: the articles, with title, outlet and date."""
    assert update.effective_message
    await _send(context, update.effective_message, render_sources(context.bot_data.answerer.articles))


@guarded
async def ask(update: Update, context: Context) -> None:
    """/ask <question>."""
    message = update.effective_message
    assert message and message.text
    question = message.text.partition(" ")[2].strip() or " ".join(context.args or [])
    if not question:
        await message.reply_text(
            f"Put the question after the command, e.g.\n/ask {_e(context.bot_data.config.examples[0])}"
        )
        return
    await answer_question(context, message, question)


@guarded
async def question(update: Update, context: Context) -> None:
    """A plain message in a private chat, or a mention of / reply to the bot in a group."""
    message = update.effective_message
    assert message and message.text
    username = context.bot.username
    text = re.sub(rf"@{re.escape(username)}\b", " ", message.text, flags=re.IGNORECASE).strip()
    if not text:
        await message.reply_text("Yes? Ask me a question about the articles, or see /help.")
        return
    await answer_question(context, message, text)


@guarded
async def unknown_command(update: Update, context: Context) -> None:
    """Any other /command in a private chat."""
    message = update.effective_message
    assert message and message.text
    command = message.text.split()[0]
    await message.reply_text(f"I don't know {_e(command)}. See /help.")


@guarded
async def example_pressed(update: Update, context: Context) -> None:
    """An example question button under /start."""
    query = update.callback_query
    assert query and query.data
    examples = context.bot_data.config.examples
    index = int(query.data.partition(":")[2] or -1)
    await query.answer()
    if 0 <= index < len(examples) and isinstance(query.message, Message):
        await answer_question(context, query.message, examples[index], echo=True)


@guarded
async def unknown_pressed(update: Update, context: Context) -> None:
    """A button no handler knows (forged, or from an older version): answer it, so it stops spinning."""
    if update.callback_query is not None:
        await update.callback_query.answer("This button no longer works — please ask again.")


@guarded
async def more_pressed(update: Update, context: Context) -> None:
    """'More sources': send the remaining passages, and take the button off the answer."""
    query = update.callback_query
    assert query and query.data
    answer = None
    if isinstance(query.message, Message):
        answer = context.bot_data.recall(query.data.partition(":")[2], query.message.chat.id,
                                         query.from_user.id)
    if answer is None or not isinstance(query.message, Message):
        await query.answer("That answer is no longer available — please ask again.")
        return
    await query.answer()
    with contextlib.suppress(BadRequest):  # e.g. the message was deleted meanwhile
        await query.message.edit_reply_markup(reply_markup=None)
    await _send(context, query.message, render_more(answer), quote=False)


async def answer_question(context: Context, message: Message, text: str, echo: bool = False) -> None:
    """Search off the event loop while showing 'typing…', then reply with the formatted answer."""
    state = context.bot_data
    async with _typing(context, message.chat_id):
        try:
            answer = await asyncio.to_thread(state.answerer.ask, text)
        except QuestionError as exc:
            await message.reply_text(_e(str(exc)))
            return
    markup = None
    if more_passages(answer):
        label = "More sources" if answer.answered else "Closest passages"
        key = state.remember(answer, message.chat_id,
                             message.from_user.id if message.from_user and not echo else None)
        markup = InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=f"more:{key}")]])
    await _send(context, message, render_answer(answer, text if echo else None), markup, not echo)


@contextlib.asynccontextmanager
async def _typing(context: Context, chat_id: int) -> AsyncIterator[None]:
    """Show 'typing…' now and keep it up (it fades after 5 s) until the block ends."""

    async def refresh() -> None:
        while True:
            await asyncio.sleep(4.5)
            with contextlib.suppress(TelegramError):
                await context.bot.send_chat_action(chat_id, ChatAction.TYPING)

    with contextlib.suppress(TelegramError):
        await context.bot.send_chat_action(chat_id, ChatAction.TYPING)
    task = asyncio.create_task(refresh())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _send(
    context: Context,
    to: Message,
    blocks: Sequence[str],
    markup: InlineKeyboardMarkup | None = None,
    quote: bool = True,
) -> None:
    """Send HTML blocks to the chat of `to` in as many messages as needed; buttons go last."""
    parts = split_html(blocks)
    for i, part in enumerate(parts):
        last_markup = markup if i == len(parts) - 1 else None
        if i == 0 and quote:
            # Quotes the question in groups only (PTB's do_quote default), so threads stay clear.
            await to.reply_text(part, reply_markup=last_markup)
        else:
            await context.bot.send_message(to.chat_id, part, reply_markup=last_markup)


async def on_error(update: object, context: Context) -> None:
    """Log the failure with its traceback and tell the user; the bot keeps serving."""
    error = context.error
    if update is None and isinstance(error, TelegramError):
        # Polling failures (network, 409 "another instance is polling") are retried by PTB.
        logger.warning("Fetching updates failed: %s", error)
        return
    logger.error("Exception while handling an update", exc_info=error)
    if not isinstance(update, Update):
        return
    if update.callback_query:
        with contextlib.suppress(TelegramError):  # fails if the handler answered it already
            await update.callback_query.answer()
    if update.effective_chat:
        with contextlib.suppress(TelegramError):
            await context.bot.send_message(update.effective_chat.id, _e(SOMETHING_WENT_WRONG))


class _AddressedToBot(filters.MessageFilter):
    """A message that mentions the bot or replies to one of its messages."""

    def filter(self, message: Message) -> bool:
        bot = message.get_bot()
        replied = message.reply_to_message
        if replied and replied.from_user and replied.from_user.id == bot.id:
            return True
        mention = f"@{bot.username}".lower()
        for entity, text in message.parse_entities(
            [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
        ).items():
            if text.lower() == mention or (entity.user and entity.user.id == bot.id):
                return True
        return False


# -- the application ---------------------------------------------------------------------------


class RetryingRateLimiter(AIORateLimiter):
    """PTB's AIORateLimiter (honours 429 retry_after), also retrying transient network errors.

    Not retried: 400s (they will fail again) and timeouts (the message may have gone out).
    """

    def __init__(self, network_retries: int = 3, flood_retries: int = 3) -> None:
        super().__init__(max_retries=flood_retries)
        self.network_retries = network_retries

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        """Send through the flood-control limiter; retry network failures with back-off."""
        for attempt in itertools.count():
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
            except (BadRequest, TimedOut):
                raise
            except NetworkError as exc:
                if attempt >= self.network_retries:
                    raise
                delay = 0.5 * 2**attempt
                logger.warning("%s failed (%s); retrying in %.1f s", endpoint, exc, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")


def build_application(config: BotConfig, settings: Settings, answerer: Answerer | None = None) -> App:
    """The Application with handlers; the Answerer is loaded in post_init unless given."""
    application: App = (
        Application.builder()
        .token(config.token)
        .base_url(config.api_base_url)
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                allow_sending_without_reply=True,
            )
        )
        .context_types(ContextTypes(bot_data=BotState))
        .concurrent_updates(True)
        .rate_limiter(RetryingRateLimiter())
        .post_init(_post_init)
        .build()
    )
    state = application.bot_data
    state.settings, state.config = settings, config
    state.limiter = UserRateLimit(config.rate_limit)
    if answerer is not None:
        state.answerer = answerer

    private = filters.ChatType.PRIVATE
    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("help", help_command))
    application.add_handler(CommandHandler("sources", sources))
    application.add_handler(CommandHandler("ask", ask))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & private, question))
    application.add_handler(
        MessageHandler(
            filters.TEXT & ~filters.COMMAND & filters.ChatType.GROUPS & _AddressedToBot(), question
        )
    )
    application.add_handler(MessageHandler(filters.COMMAND & private, unknown_command))
    application.add_handler(CallbackQueryHandler(example_pressed, pattern=r"^ex:\d+$"))
    application.add_handler(CallbackQueryHandler(more_pressed, pattern=r"^more:[\w-]+$"))
    application.add_handler(CallbackQueryHandler(unknown_pressed))
    application.add_error_handler(on_error)
    return application


async def _post_init(application: App) -> None:
    state = application.bot_data
    if not state.loaded:
        from qa_bot.answer import Answerer

        logger.info("Loading the model and the index for %s", state.settings.corpus_dir)
        state.answerer = await asyncio.to_thread(Answerer.open, state.settings, logger.info)
    await application.bot.set_my_commands(list(COMMANDS))
    logger.info(
        "@%s is ready: %d articles; %s",
        application.bot.username,
        len(state.answerer.articles),
        f"webhook {state.config.webhook_url}" if state.config.webhook_url else "long polling",
    )


async def _connect(application: App) -> None:
    """Initialize (getMe) so a rejected token or an unreachable API is a clear error up front."""
    try:
        await application.initialize()  # network errors were already retried by the rate limiter
    except InvalidToken:
        raise ConfigError(
            "Telegram rejected the bot token (unauthorized)",
            hint="check TELEGRAM_BOT_TOKEN; @BotFather's /mybots shows the current token",
        ) from None
    except NetworkError as exc:
        raise QABotError(
            f"cannot reach the Telegram Bot API: {exc}",
            hint="check the network, or TELEGRAM_API_BASE_URL",
        ) from None


class _RedactToken(logging.Filter):
    """Scrub the bot token (and its secret half) from every log line and traceback."""

    def __init__(self, *secrets_: str) -> None:
        super().__init__()
        self._secrets = [s for s in secrets_ if s]

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self._scrub(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._scrub(record.exc_text)
        return True


def _setup_logging(config: BotConfig) -> None:
    logging.basicConfig(format="%(asctime)s - %(name)s - %(levelname)s - %(message)s", level=logging.INFO)
    # httpx logs every request URL at INFO, and the URL holds the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("faiss").setLevel(logging.WARNING)
    logging.getLogger("qa_bot").setLevel(logging.INFO)
    redact = _RedactToken(config.token, config.token.partition(":")[2], config.webhook_secret)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
        if handler.level == logging.NOTSET:  # some libraries set DEBUG on their own logger
            handler.setLevel(logging.INFO)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the bot until SIGTERM/SIGINT; returns the exit code."""
    config = BotConfig.from_args(args)
    _setup_logging(config)
    application = build_application(config, settings)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_connect(application))
        if config.webhook_url:
            application.run_webhook(
                listen=config.listen,
                port=config.port,
                url_path=urlsplit(config.webhook_url).path.lstrip("/"),
                webhook_url=config.webhook_url,
                secret_token=config.webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
            )
        else:
            application.run_polling(allowed_updates=ALLOWED_UPDATES)
    finally:
        if not loop.is_closed():
            loop.close()
        asyncio.set_event_loop(None)
    logger.info("Stopped.")
    return 0


__all__ = ["BotConfig", "build_application", "configure_parser", "run", "split_html"]
