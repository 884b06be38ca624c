"""What the bot does with each update: the access check first (group -1), then one handler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackContext,
    CallbackQueryHandler,
    CommandHandler,
    ExtBot,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from qa_bot.answer import visible
from qa_bot.config import Settings
from qa_bot.conversation import Conversation, Reply
from qa_bot.errors import QuestionError, StoreUnavailable
from qa_bot.telegram_bot.limits import UserRateLimit
from qa_bot.telegram_bot.render import (
    date_span,
    escape,
    more_passages,
    render_answer,
    render_more,
    render_reply,
    render_sources,
    shorten,
    source_line,
    split_html,
)
from qa_bot.telegram_bot.settings import BotSettings
from qa_bot.telegram_bot.store import ChatStore
from qa_bot.types import Answer

STORE_RETRY_S = (2.0, 5.0, 10.0, 20.0)  # waits between tries while the shared store is unreachable

if TYPE_CHECKING:
    from telegram.ext import Application

    from qa_bot.answer import Answerer

logger = logging.getLogger(__name__)

TYPING_AFTER_S = 1.0  # "typing…" only for an answer that takes longer than this
INLINE_CACHE_S = 300
REFUSAL = "Sorry, this is a private bot: it only answers the people and chats its owner has allowed."
SOMETHING_WENT_WRONG = "Sorry, something went wrong while answering. Please try again in a moment."
EXPIRED = "That answer has expired — please ask again."
T = TypeVar("T")


class BotState:
    """What all handlers share, kept in `application.bot_data`."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.config = BotSettings()
        self.limiter = UserRateLimit(0)
        self._answerer: Answerer | None = None
        self._store: ChatStore | None = None
        self.refused: set[int] = set()
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self.heartbeat: asyncio.Future[None] | None = None

    @property
    def answerer(self) -> Answerer:
        """The loaded Answerer (set at start-up, before any update is handled)."""
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

    @property
    def store(self) -> ChatStore:
        """The state file (opened at start-up)."""
        if self._store is None:
            raise RuntimeError("the state file is not open yet")
        return self._store

    @store.setter
    def store(self, store: ChatStore) -> None:
        self._store = store

    def chat_lock(self, chat: str) -> asyncio.Lock:
        """One chat's messages are answered in order: a follow-up waits for what it follows."""
        if len(self._chat_locks) > 10_000:
            self._chat_locks = {k: v for k, v in self._chat_locks.items() if v.locked()}
        return self._chat_locks.setdefault(chat, asyncio.Lock())


Context = CallbackContext[ExtBot[Any], dict[Any, Any], dict[Any, Any], BotState]


def chat_key(chat_id: int, user_id: int | None) -> str:
    """One conversation per chat, per user in groups."""
    return f"{chat_id}:{user_id}" if chat_id < 0 else str(chat_id)


# -- the access check (group -1): the allowlist and the per-user rate limit ---------------------------


async def check_access(update: Update, context: Context) -> None:
    """Stop an update from an unlisted user, or one over the rate limit, before any handler sees it."""
    state = context.bot_data
    user, chat = update.effective_user, update.effective_chat
    user_id = user.id if user else None
    if not state.config.allows(user_id, chat.id if chat else None):
        first = user_id is not None and user_id not in state.refused
        if user_id is not None:
            state.refused.add(user_id)
        logger.info("refused user %s in chat %s", user_id, chat.id if chat else None)
        await _tell(update, REFUSAL if first else None)
        raise ApplicationHandlerStop
    if user_id is not None:
        verdict = state.limiter.check(user_id)
        if verdict != "ok":
            wait = state.limiter.wait_s(user_id)
            slow_down = (f"You're asking faster than I can keep up — please slow down and try again "
                         f"in {wait} seconds.")
            await _tell(update, slow_down if verdict == "warn" else None)
            raise ApplicationHandlerStop


async def _tell(update: Update, text: str | None) -> None:
    """Reply with plain `text` (None: stay silent), answering a button press or inline query."""
    if update.callback_query:
        await update.callback_query.answer(text, show_alert=bool(text))
    elif update.inline_query:
        await update.inline_query.answer([], cache_time=0, is_personal=True)
    elif text and update.effective_message:
        await update.effective_message.reply_text(escape(text))


# -- commands ------------------------------------------------------------------------------------


async def start(update: Update, context: Context) -> None:
    """/start: what the corpus is and a few example questions to tap."""
    state = context.bot_data
    articles = state.answerer.articles
    text = (
        f"Hello! I answer questions about <b>{len(articles)} news articles</b>"
        f"{escape(date_span(articles))}.\n\n"
        "Ask in plain words and I reply with the exact passage that answers it, quoted "
        "verbatim with its source. When the articles don't say, I tell you so. Follow-ups "
        "work too: “and from Latakia?”, “when was that?”, “who said that?”, “more”.\n\n"
        "Try one of these, or /help:"
    )
    buttons = [[InlineKeyboardButton(shorten(q, 60), callback_data=f"ex:{i}")]
               for i, q in enumerate(state.config.examples)]
    assert update.effective_message
    await update.effective_message.reply_text(text, reply_markup=InlineKeyboardMarkup(buttons))


async def help_command(update: Update, context: Context) -> None:
    """/help: how to ask, follow up, and ask in groups or inline."""
    username = escape(context.bot.username)
    text = (
        "<b>How to ask</b>\n"
        "Send me a question in plain words. I reply with the passage of the articles that "
        "answers it, quoted verbatim, the answering sentence in bold, and where it comes "
        "from. <b>More sources</b> under an answer shows the other passages I found.\n\n"
        "<b>Follow-ups</b> lean on your last question: “and from Latakia?”, “how many of them?”, "
        "“when was that?”, “who said that?”, “more”, “is that confirmed elsewhere?”. I show how "
        "I read them. A question that stands on its own is taken as it is.\n\n"
        "/ask &lt;question&gt; — ask (this is how to ask in a group)\n"
        "/sources — the articles I answer from\n"
        "/start — what I know, with example questions\n"
        "/help — this message\n\n"
        f"In groups I only answer /ask, a message that mentions @{username}, "
        f"or a reply to one of my messages. In any chat, type @{username} and a question "
        "to share a quoted answer."
    )
    assert update.effective_message
    await update.effective_message.reply_text(text)


async def sources(update: Update, context: Context) -> None:
    """/sources: the articles, with title, outlet and date."""
    assert update.effective_message
    await _send(context, update.effective_message, render_sources(context.bot_data.answerer.articles))


async def ask(update: Update, context: Context) -> None:
    """/ask <question>."""
    message = update.effective_message
    assert message and message.text
    question = visible(message.text.partition(" ")[2]) or visible(" ".join(context.args or []))
    if not question:
        await message.reply_text(
            f"Put the question after the command, e.g.\n/ask {escape(context.bot_data.config.examples[0])}")
        return
    await answer_question(context, message, question)


async def question(update: Update, context: Context) -> None:
    """A plain message in a private chat, or a mention of / reply to the bot in a group."""
    message = update.effective_message
    assert message and message.text
    username = context.bot.username
    text = visible(re.sub(rf"@{re.escape(username)}\b", " ", message.text, flags=re.IGNORECASE))
    if not text:
        await message.reply_text("Yes? Ask me a question about the articles, or see /help.")
        return
    await answer_question(context, message, text)


async def unknown_command(update: Update, context: Context) -> None:
    """Any other /command in a private chat."""
    message = update.effective_message
    assert message and message.text
    await message.reply_text(f"I don't know {escape(message.text.split()[0])}. See /help.")


# -- buttons -------------------------------------------------------------------------------------


async def example_pressed(update: Update, context: Context) -> None:
    """An example question button under /start."""
    query = update.callback_query
    assert query and query.data
    examples = context.bot_data.config.examples
    index = int(query.data.partition(":")[2] or -1)
    await query.answer()
    if 0 <= index < len(examples) and isinstance(query.message, Message):
        await answer_question(context, query.message, examples[index], echo=True,
                              user_id=query.from_user.id)


async def more_pressed(update: Update, context: Context) -> None:
    """'More sources': send the remaining passages, and take the button off the answer."""
    query = update.callback_query
    assert query and query.data
    answer = None
    if isinstance(query.message, Message):
        kept = context.bot_data.store.recall(query.data.partition(":")[2], query.message.chat.id,
                                             query.from_user.id)
        answer = _saved_answer(kept) if kept is not None else None
    if answer is None or not isinstance(query.message, Message):
        await query.answer(EXPIRED)
        return
    await query.answer()
    with contextlib.suppress(BadRequest):  # e.g. the message was deleted meanwhile
        await query.message.edit_reply_markup(reply_markup=None)
    await _send(context, query.message, render_more(answer), quote=False)


def _saved_answer(kept: dict[str, Any]) -> Answer | None:
    """An answer kept for a button, or None when it cannot be read (saved by another version)."""
    try:
        return Answer.from_json(kept)
    except (KeyError, TypeError, ValueError) as exc:
        logger.warning("A kept answer could not be read (%s); the button says it expired", exc)
        return None


def _saved_conversation(state: BotState, key: str) -> Conversation:
    """A chat's saved conversation, or a new one when what was saved cannot be read."""
    try:
        return Conversation.from_json(state.answerer, state.store.conversation(key))
    except (KeyError, TypeError, ValueError) as exc:
        logger.warning("Chat %s: the saved conversation could not be read (%s); starting afresh", key, exc)
        return Conversation(state.answerer)


async def unknown_pressed(update: Update, context: Context) -> None:
    """A button no handler knows (forged, or from an older version): answer it, so it stops spinning."""
    if update.callback_query is not None:
        await update.callback_query.answer("This button no longer works — please ask again.")


# -- answering -------------------------------------------------------------------------------------


async def answer_question(context: Context, message: Message, text: str, echo: bool = False,
                          user_id: int | None = None) -> None:
    """Answer in the chat's conversation (off the event loop), then reply with the formatted answer."""
    state = context.bot_data
    user_id = user_id if user_id is not None else (message.from_user.id if message.from_user else None)
    key = chat_key(message.chat_id, user_id)
    async with state.chat_lock(key):
        conversation = _saved_conversation(state, key)
        try:
            reply = await _typing_while(context, message.chat_id,
                                        _asked(context, message, conversation, text))
        except QuestionError as exc:
            await message.reply_text(escape(str(exc)))
            return
        except StoreUnavailable:
            await message.reply_text("The archive is still unreachable. Please ask again in a few minutes.")
            return
        state.store.save_conversation(key, conversation.to_json())
    await _send(context, message, render_reply(reply, echo), _more_button(state, reply, message, user_id),
                quote=not echo)


async def _asked(context: Context, message: Message, conversation: Conversation, text: str) -> Reply:
    """The conversation's reply, off the event loop; while the shared store is unreachable, say so
    once and try again with growing waits (StoreUnavailable when it stays away)."""
    waits = iter(STORE_RETRY_S)
    told = False
    while True:
        try:
            return await asyncio.to_thread(conversation.ask, text)
        except StoreUnavailable:
            wait = next(waits, None)
            if wait is None:
                raise
            if not told:
                told = True
                await message.reply_text("The archive is unreachable right now; retrying…")
            logger.warning("the shared store is unreachable: retrying in %s s", wait)
            await asyncio.sleep(wait)


def _more_button(state: BotState, reply: Reply, message: Message,
                 user_id: int | None) -> InlineKeyboardMarkup | None:
    """'More sources' under an answer with other passages ('Closest passages' under a 'not found')."""
    answer = reply.answer
    if reply.reading.kind not in ("standalone", "rewrite") or not more_passages(answer):
        return None
    label = "More sources" if answer.answered else "Closest passages"
    key = state.store.remember(answer.to_json(), message.chat_id, user_id)
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=f"more:{key}")]])


async def _typing_while(context: Context, chat_id: int, work: Awaitable[T]) -> T:
    """Await `work`, showing "typing…" only once it takes longer than a moment (and keeping it up)."""
    task = asyncio.ensure_future(work)
    delay = TYPING_AFTER_S
    while True:
        done, _ = await asyncio.wait({task}, timeout=delay)
        if done:
            return task.result()
        with contextlib.suppress(TelegramError):
            await context.bot.send_chat_action(chat_id, ChatAction.TYPING)
        delay = 4.5  # the action fades after 5 s


async def _send(context: Context, to: Message, blocks: list[str], markup: InlineKeyboardMarkup | None = None,
                quote: bool = True) -> None:
    """Send HTML blocks to the chat of `to` in as many messages as needed; buttons go last."""
    parts = split_html(blocks)
    for i, part in enumerate(parts):
        last_markup = markup if i == len(parts) - 1 else None
        if i == 0 and quote:
            # Quotes the question in groups only (PTB's do_quote default), so threads stay clear.
            await to.reply_text(part, reply_markup=last_markup)
        else:
            await context.bot.send_message(to.chat_id, part, reply_markup=last_markup)


# -- inline mode -----------------------------------------------------------------------------------


async def inline_query(update: Update, context: Context) -> None:
    """"@bot how many soldiers left Damascus": the quoted answer, offered to share in any chat."""
    query = update.inline_query
    assert query is not None
    text = visible(query.query)
    personal = bool(context.bot_data.config.allowed_users or context.bot_data.config.allowed_chats)
    if not text:
        await query.answer([], cache_time=INLINE_CACHE_S, is_personal=personal)
        return
    try:
        answer = await asyncio.to_thread(context.bot_data.answerer.ask, text)
    except QuestionError as exc:
        await query.answer([], cache_time=0, is_personal=True)
        logger.debug("inline question not searched: %s", exc)
        return
    content = split_html(render_answer(answer, text))[0]
    if answer.answered and answer.passages:
        title = f"“{shorten(answer.quote or '', 80)}”"
        description = re.sub(r"<[^>]+>", "", source_line(answer.passages[0].source))
    else:
        title, description = "Not found in the articles", shorten(text, 80)
    result = InlineQueryResultArticle(
        id=str(abs(hash((text, answer.quote))))[:32],
        title=title,
        description=description,
        input_message_content=InputTextMessageContent(
            content, parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)),
    )
    await query.answer([result], cache_time=INLINE_CACHE_S, is_personal=personal)


# -- errors ----------------------------------------------------------------------------------------


async def on_error(update: object, context: Context) -> None:
    """Log the failure with its traceback and tell the user; the bot keeps serving."""
    error = context.error
    if update is None and isinstance(error, TelegramError):
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
            await context.bot.send_message(update.effective_chat.id, escape(SOMETHING_WENT_WRONG))


class _AddressedToBot(filters.MessageFilter):
    """A message that mentions the bot or replies to one of its messages."""

    def filter(self, message: Message) -> bool:
        bot = message.get_bot()
        replied = message.reply_to_message
        if replied and replied.from_user and replied.from_user.id == bot.id:
            return True
        mention = f"@{bot.username}".lower()
        mentions = message.parse_entities([MessageEntity.MENTION, MessageEntity.TEXT_MENTION])
        for entity, text in mentions.items():
            if text.lower() == mention or (entity.user and entity.user.id == bot.id):
                return True
        return False


def add_handlers(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """The access check in group -1 for everything the bot answers, then one handler per kind."""
    private = filters.ChatType.PRIVATE
    addressed = filters.ChatType.GROUPS & _AddressedToBot()
    asked = filters.COMMAND | (filters.TEXT & (private | addressed))
    application.add_handler(MessageHandler(asked, check_access), group=-1)
    application.add_handler(CallbackQueryHandler(check_access), group=-1)
    application.add_handler(InlineQueryHandler(check_access), group=-1)

    application.add_handler(CommandHandler("start", start))
    application.add_handler(CommandHandler("help", help_command))
    application.add_handler(CommandHandler("sources", sources))
    application.add_handler(CommandHandler("ask", ask))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & (private | addressed), question))
    application.add_handler(MessageHandler(filters.COMMAND & private, unknown_command))
    application.add_handler(CallbackQueryHandler(example_pressed, pattern=r"^ex:\d+$"))
    application.add_handler(CallbackQueryHandler(more_pressed, pattern=r"^more:[\w-]+$"))
    application.add_handler(CallbackQueryHandler(unknown_pressed))
    application.add_handler(InlineQueryHandler(inline_query))
    application.add_error_handler(on_error)
