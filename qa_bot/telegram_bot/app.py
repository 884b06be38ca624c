"""Start-up, the update loop and shut-down of `qa-bot telegram`.

Long polling fetches at most `update_batch` updates, answers all of them, and only then fetches
the next batch, which is what confirms the previous one to Telegram. A stop (SIGTERM from
`docker stop`) finishes the batch in hand, confirms it and exits: an update is either answered or
still waiting at Telegram for the next start, never lost in between.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from telegram import BotCommand, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import Application, ContextTypes, Defaults, ExtBot

from qa_bot.config import Settings
from qa_bot.errors import ConfigError, QABotError, QuestionError, StoreUnavailable
from qa_bot.telegram_bot.handlers import BotState, Context, add_handlers
from qa_bot.telegram_bot.limits import RATE_WINDOW_S, RetryingRateLimiter, UserRateLimit
from qa_bot.telegram_bot.settings import BotSettings
from qa_bot.telegram_bot.store import ChatStore

logger = logging.getLogger(__name__)

App = Application[ExtBot[Any], Context, dict[Any, Any], dict[Any, Any], BotState, Any]
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.INLINE_QUERY]
LONG_POLL_S = 10
HEARTBEAT_S = 5.0  # how often the running bot touches its heartbeat file
WARM_UP_QUESTIONS = 3  # the first answers after start-up are slow until the model has run a few times
COMMANDS = (
    BotCommand("start", "What I know and how to ask"),
    BotCommand("ask", "Ask a question: /ask <question>"),
    BotCommand("sources", "The articles I answer from"),
    BotCommand("help", "How to use this bot"),
)


def build_application(config: BotSettings, settings: Settings, answerer: Any = None) -> App:
    """The Application with its handlers; the Answerer and state file are opened in `start_up`."""
    builder = (
        Application.builder()
        .token(config.token)
        .base_url(config.api_base_url)
        .defaults(Defaults(parse_mode=ParseMode.HTML, allow_sending_without_reply=True,
                           link_preview_options=LinkPreviewOptions(is_disabled=True)))
        .context_types(ContextTypes(bot_data=BotState))
        .concurrent_updates(True)
        .rate_limiter(RetryingRateLimiter())
        .post_init(start_up)
    )
    if not config.webhook_url:
        builder = builder.updater(None)  # long polling is `poll` below
    application: App = builder.build()
    state = application.bot_data
    state.settings, state.config = settings, config
    if answerer is not None:
        state.answerer = answerer
    add_handlers(application)
    return application


async def start_up(application: App) -> None:
    """Open the state file, load the model and index, warm them up, and register the commands."""
    state = application.bot_data
    state.store = ChatStore(state.config.state_file)
    state.store.prune(RATE_WINDOW_S)
    state.limiter = UserRateLimit(state.config.rate_limit, store=state.store)
    if not state.loaded:
        from qa_bot.answer import Answerer

        logger.info("Loading the model and the index for %s", state.settings.corpus_dir)
        state.answerer = await asyncio.to_thread(Answerer.open, state.settings, logger.info)
    await asyncio.to_thread(_warm_up, state)
    await application.bot.set_my_commands(list(COMMANDS))
    state.heartbeat = asyncio.ensure_future(_heartbeat(state.config.heartbeat_file))
    logger.info("@%s is ready: %s articles; %s", application.bot.username, _article_count(state),
                f"webhook {state.config.webhook_url}" if state.config.webhook_url else "long polling")


def _warm_up(state: BotState) -> None:
    try:
        for question in (state.config.examples * WARM_UP_QUESTIONS)[:WARM_UP_QUESTIONS]:
            with contextlib.suppress(QuestionError):
                state.answerer.ask(question)
    except StoreUnavailable as e:
        logger.warning("Not warmed up: %s. Questions wait for it to come back.", e.message)


def _article_count(state: BotState) -> str:
    try:
        return str(len(state.answerer.index.articles))
    except StoreUnavailable:
        return "(the archive is unreachable for now)"


def touch(path: Path) -> None:
    """Say "alive" to `qa-bot health --bot`: the file's modification time is the heartbeat."""
    with contextlib.suppress(OSError):
        path.touch()


async def _heartbeat(path: Path) -> None:
    while True:
        await asyncio.to_thread(touch, path)
        await asyncio.sleep(HEARTBEAT_S)


async def poll(application: App, stop: asyncio.Event) -> None:
    """Fetch a batch, answer it all, repeat; on `stop`, finish the batch and confirm it."""
    bot, batch = application.bot, application.bot_data.config.update_batch
    offset: int | None = None
    failures = 0
    while not stop.is_set():
        fetch = asyncio.ensure_future(bot.get_updates(offset=offset, limit=batch, timeout=LONG_POLL_S,
                                                      allowed_updates=ALLOWED_UPDATES))
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not fetch.done():  # stopping: what this request would bring stays unconfirmed at Telegram
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError, TelegramError):
                await fetch
            break
        try:
            updates = fetch.result()
            failures = 0
        except TelegramError as error:
            failures += 1
            logger.warning("Fetching updates failed: %s", error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(30.0, 0.5 * 2**failures))
            continue
        if updates:
            await asyncio.gather(*(application.process_update(u) for u in updates))
            offset = updates[-1].update_id + 1
    if offset is not None:
        with contextlib.suppress(TelegramError):
            await bot.get_updates(offset=offset, limit=1, timeout=0, allowed_updates=ALLOWED_UPDATES)


async def _serve_polling(application: App) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await _connect(application)
    try:
        await start_up(application)
        await application.bot.delete_webhook()
        await poll(application, stop)
        logger.info("Stopping: every update fetched was answered and confirmed.")
    finally:
        if application.bot_data.heartbeat is not None:
            application.bot_data.heartbeat.cancel()
        await application.shutdown()
        with contextlib.suppress(RuntimeError):
            application.bot_data.store.close()


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
        raise QABotError(f"cannot reach the Telegram Bot API: {exc}",
                         hint="check the network, or TELEGRAM_API_BASE_URL") from None


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


def _setup_logging(config: BotSettings) -> None:
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
    config = BotSettings.from_args(args, index_dir=settings.index_dir)
    _setup_logging(config)
    application = build_application(config, settings)
    if not config.webhook_url:
        asyncio.run(_serve_polling(application))
        logger.info("Stopped.")
        return 0
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_connect(application))
        application.run_webhook(
            listen=config.listen,
            port=config.port,
            url_path=urlsplit(config.webhook_url).path.lstrip("/"),
            webhook_url=config.webhook_url,
            secret_token=config.webhook_secret,
            allowed_updates=ALLOWED_UPDATES,
        )
    finally:
        if not loop.is_closed():
            loop.close()
        asyncio.set_event_loop(None)
    logger.info("Stopped.")
    return 0
