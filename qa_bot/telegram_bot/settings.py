"""The Telegram front end's settings: TELEGRAM_* and QA_BOT_* variables, overridden by flags.

Read with the same mechanism as the core `Settings` (qa_bot.config), so one table in the README
documents every variable, and importing this costs nothing: python-telegram-bot is not loaded.
"""

from __future__ import annotations

import argparse
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from qa_bot.config import from_env
from qa_bot.errors import ConfigError

DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_EXAMPLES = (
    "How many soldiers did Russia withdraw from Damascus?",
    "Where did Assad publish his statement?",
    "Which bases does Russia want to keep in Syria?",
)
# A token as @BotFather issues it: the bot id, a colon, a 35-character secret.
TOKEN_RE = re.compile(r"\d{3,20}:[A-Za-z0-9_-]{30,100}")
WEBHOOK_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")


def telegram_ids(raw: str) -> frozenset[int]:
    """"123456789, -1001234567890" -> the numeric ids."""
    try:
        return frozenset(int(part) for part in re.split(r"[\s,]+", raw) if part)
    except ValueError:
        raise ValueError("not a comma-separated list of numeric Telegram ids (e.g. 123456789,-100123)") \
            from None


def questions(raw: str) -> tuple[str, ...]:
    """"q1 | q2 | q3" -> up to three example questions."""
    return tuple(q.strip() for q in raw.split("|") if q.strip())[:3]


@dataclass(frozen=True)
class BotSettings:
    """Everything the Telegram front end needs beyond the core Settings."""

    token: str = field(default="", repr=False, metadata={
        "env": "TELEGRAM_BOT_TOKEN", "secret": True, "help": "the token from @BotFather (or --token-file)"})
    api_base_url: str = field(default=DEFAULT_API_BASE_URL, metadata={
        "env": "TELEGRAM_API_BASE_URL", "help": "Bot API endpoint; the token is appended to it"})
    allowed_users: frozenset[int] = field(default=frozenset(), metadata={
        "parse": telegram_ids, "help": "comma-separated numeric user ids that may use the bot"})
    allowed_chats: frozenset[int] = field(default=frozenset(), metadata={
        "parse": telegram_ids, "help": "comma-separated chat ids whose members may ask"})
    rate_limit: int = field(default=10, metadata={
        "help": "requests per user per minute (--rate-limit); 0 turns the limit off"})
    examples: tuple[str, ...] = field(default=DEFAULT_EXAMPLES, metadata={
        "parse": questions, "help": "example questions offered by /start, separated by |"})
    state_file: Path = field(default=Path(""), metadata={
        "help": "SQLite file of chats, 'More sources' answers and rate windows "
                "(default: bot-state.sqlite3 in the index folder)"})
    heartbeat_file: Path = field(default=Path(""), metadata={
        "help": "file the running bot touches every few seconds, read by `qa-bot health --bot` "
                "(default: bot-heartbeat in the index folder)"})
    update_batch: int = field(default=50, metadata={
        "help": "updates fetched at once; each batch is answered before the next is fetched and "
                "confirmed, so a stop loses none"})
    webhook_url: str = field(default="", metadata={
        "env": "TELEGRAM_WEBHOOK_URL", "help": "public HTTPS URL for webhook mode (--webhook-url)"})
    webhook_secret: str = field(default="", repr=False, metadata={
        "env": "TELEGRAM_WEBHOOK_SECRET", "secret": True,
        "help": "secret Telegram sends with each webhook request (default: random per run)"})
    listen: str = field(default="0.0.0.0", metadata={"help": "address the webhook server binds (--listen)"})
    port: int = field(default=8443, metadata={"help": "port the webhook server listens on (--port)"})

    @classmethod
    def from_args(cls, args: argparse.Namespace, environ: Mapping[str, str] | None = None,
                  index_dir: Path = Path("embeddings")) -> BotSettings:
        """Variables, then flags; raise ConfigError when something is missing or malformed."""
        settings = from_env(cls, environ, rate_limit=getattr(args, "rate_limit", None),
                            webhook_url=getattr(args, "webhook_url", None),
                            webhook_secret=getattr(args, "webhook_secret", None),
                            listen=getattr(args, "listen", None), port=getattr(args, "port", None))
        token_file = getattr(args, "token_file", None)
        token = _read_token(token_file) if token_file else settings.token.strip()
        _check_token(token, f"the token in {token_file}" if token_file else "TELEGRAM_BOT_TOKEN")
        _check_webhook(settings)
        if settings.rate_limit < 0:
            raise ConfigError("the rate limit cannot be negative", hint="use 0 for no limit")
        if settings.update_batch < 1:
            raise ConfigError("QA_BOT_UPDATE_BATCH must be at least 1")
        return replace(
            settings, token=token,
            api_base_url=settings.api_base_url.strip() or DEFAULT_API_BASE_URL,
            examples=settings.examples or DEFAULT_EXAMPLES,
            webhook_secret=settings.webhook_secret or secrets.token_urlsafe(32),
            state_file=settings.state_file if str(settings.state_file) not in ("", ".")
            else index_dir / "bot-state.sqlite3",
            heartbeat_file=heartbeat_path(settings, index_dir),
        )

    def allows(self, user_id: int | None, chat_id: int | None) -> bool:
        """No allowlist: everyone may ask; else a listed user, or anyone in a listed chat."""
        if not self.allowed_users and not self.allowed_chats:
            return True
        return user_id in self.allowed_users or chat_id in self.allowed_chats


def heartbeat_path(settings: BotSettings, index_dir: Path) -> Path:
    """Where the running bot's heartbeat is (also what `qa-bot health --bot` reads)."""
    if str(settings.heartbeat_file) not in ("", "."):
        return settings.heartbeat_file
    return index_dir / "bot-heartbeat"


def _read_token(token_file: str) -> str:
    try:
        return Path(token_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the token file {token_file}: {exc.strerror}",
                          hint="pass the file @BotFather's token is saved in") from None


def _check_token(token: str, origin: str) -> None:
    if not token:
        raise ConfigError(
            "no Telegram bot token: TELEGRAM_BOT_TOKEN is not set",
            hint="create a bot with @BotFather and export TELEGRAM_BOT_TOKEN, or pass --token-file",
        )
    if not TOKEN_RE.fullmatch(token):
        # Never echo the value: a half-pasted token is still a secret.
        raise ConfigError(f"{origin} is malformed: expected <bot id>:<secret> as @BotFather gives it",
                          hint="copy the whole token, e.g. 123456789:AAH...")


def _check_webhook(settings: BotSettings) -> None:
    if settings.webhook_url:
        parts = urlsplit(settings.webhook_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"--webhook-url {settings.webhook_url!r} is not an http(s) URL",
                              hint="e.g. --webhook-url https://bot.example.org/telegram")
    if settings.webhook_secret and not WEBHOOK_SECRET_RE.fullmatch(settings.webhook_secret):
        raise ConfigError("the webhook secret may only hold A-Z, a-z, 0-9, _ and - (1-256 characters)",
                          hint="fix --webhook-secret / TELEGRAM_WEBHOOK_SECRET, or leave it unset")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the `qa-bot telegram` options (the corpus options come from the cli)."""
    parser.add_argument("--token-file", metavar="PATH",
                        help="read the bot token from this file instead of TELEGRAM_BOT_TOKEN")
    parser.add_argument("--webhook-url", metavar="URL",
                        help="public HTTPS URL Telegram should POST updates to; runs a webhook server "
                             "instead of long polling (TELEGRAM_WEBHOOK_URL)")
    parser.add_argument("--port", type=int, metavar="N",
                        help="port the webhook server listens on (default 8443)")
    parser.add_argument("--listen", metavar="ADDR", help="address the webhook server binds (default 0.0.0.0)")
    parser.add_argument("--webhook-secret", metavar="SECRET",
                        help="secret Telegram sends with each webhook request (TELEGRAM_WEBHOOK_SECRET; "
                             "default: a random one per run)")
    parser.add_argument("--rate-limit", type=int, metavar="N",
                        help="requests one user may make per minute, 0 for no limit "
                             "(QA_BOT_RATE_LIMIT, default 10)")
