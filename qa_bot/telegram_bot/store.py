"""What the bot must not forget on a restart, in one SQLite file on the index volume.

Per chat (per user in groups): the conversation's recent turns. Per 'More sources' button: the
answer behind it and the chat and user it was sent to. Per user: the rate-limit window. Reset it
by stopping the bot and deleting the file; nothing else is kept in it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from qa_bot.errors import ConfigError

logger = logging.getLogger(__name__)

BUTTON_KEY_BYTES = 12  # 16 URL-safe characters: unguessable, and well inside the 64-byte callback data
BUTTON_TTL_S = 7 * 24 * 3600.0  # a 'More sources' button older than this says the answer expired
MAX_BUTTONS = 100_000
CHAT_TTL_S = 24 * 3600.0  # conversations idle this long are dropped from the file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (chat TEXT PRIMARY KEY, turns TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS buttons (key TEXT PRIMARY KEY, chat_id INTEGER NOT NULL, user_id INTEGER,
                                    answer TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rate_windows (user_id INTEGER PRIMARY KEY, hits TEXT NOT NULL,
                                         warned INTEGER NOT NULL);
"""


class ChatStore:
    """The bot's state file; every method is a short transaction, safe from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not os.access(path.parent, os.W_OK):
                raise PermissionError(f"{path.parent} is not writable")
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except PermissionError as exc:
            # A read-only container without a volume: the bot works, it only forgets on a restart.
            logger.warning("Chats, 'More sources' buttons and rate limits will not survive a restart: %s "
                           "(mount a writable volume there, or set QA_BOT_STATE_FILE)", exc)
            self._db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot use the bot's state file {path}: {exc}",
                              hint="make its folder writable, or set QA_BOT_STATE_FILE; delete a "
                                   "damaged file to start afresh") from None
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    def _run(self, sql: str, *params: Any) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- conversations ---------------------------------------------------------------------------

    def conversation(self, chat: str) -> list[dict[str, Any]]:
        """The saved turns of a chat, oldest first (none when it is new or idle too long)."""
        rows = self._run("SELECT turns, updated FROM conversations WHERE chat = ?", chat)
        if not rows or time.time() - rows[0][1] > CHAT_TTL_S:
            return []
        turns = json.loads(rows[0][0])
        return turns if isinstance(turns, list) else []

    def save_conversation(self, chat: str, turns: list[dict[str, Any]]) -> None:
        """Replace a chat's turns."""
        self._run("INSERT OR REPLACE INTO conversations VALUES (?, ?, ?)", chat, json.dumps(turns),
                  time.time())

    # -- 'More sources' buttons ------------------------------------------------------------------

    def remember(self, answer: dict[str, Any], chat_id: int, user_id: int | None) -> str:
        """Keep an answer for its button; the key is random and bound to this chat and user."""
        key = secrets.token_urlsafe(BUTTON_KEY_BYTES)
        self._run("INSERT INTO buttons VALUES (?, ?, ?, ?, ?)", key, chat_id, user_id, json.dumps(answer),
                  time.time())
        return key

    def recall(self, key: str, chat_id: int, user_id: int) -> dict[str, Any] | None:
        """The answer kept under `key`, once, if it was given in this chat to this user."""
        rows = self._run("SELECT chat_id, user_id, answer, created FROM buttons WHERE key = ?", key)
        if not rows:
            return None
        kept_chat, kept_user, answer, created = rows[0]
        if kept_chat != chat_id or kept_user not in (None, user_id) or time.time() - created > BUTTON_TTL_S:
            return None
        self._run("DELETE FROM buttons WHERE key = ?", key)
        try:
            result = json.loads(answer)
        except ValueError:
            return None
        return result if isinstance(result, dict) else None

    # -- rate-limit windows ----------------------------------------------------------------------

    def rate_window(self, user_id: int) -> tuple[list[float], bool]:
        """A user's recent request times (time.time()) and whether they were told to slow down."""
        rows = self._run("SELECT hits, warned FROM rate_windows WHERE user_id = ?", user_id)
        return (json.loads(rows[0][0]), bool(rows[0][1])) if rows else ([], False)

    def save_rate_window(self, user_id: int, hits: list[float], warned: bool) -> None:
        """Replace a user's window."""
        self._run("INSERT OR REPLACE INTO rate_windows VALUES (?, ?, ?)", user_id, json.dumps(hits),
                  int(warned))

    def prune(self, rate_window_s: float) -> None:
        """Drop idle conversations, expired buttons and empty rate windows."""
        now = time.time()
        self._run("DELETE FROM conversations WHERE updated < ?", now - CHAT_TTL_S)
        self._run("DELETE FROM buttons WHERE created < ?", now - BUTTON_TTL_S)
        self._run("DELETE FROM buttons WHERE key NOT IN "
                  "(SELECT key FROM buttons ORDER BY created DESC LIMIT ?)", MAX_BUTTONS)
        stale = [u for u, hits in self._run("SELECT user_id, hits FROM rate_windows")
                 if not any(now - t < rate_window_s for t in json.loads(hits))]
        for user_id in stale:
            self._run("DELETE FROM rate_windows WHERE user_id = ?", user_id)
