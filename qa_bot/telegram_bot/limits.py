"""Rate limits: each user's requests per minute, and Telegram's flood control on what the bot sends."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from telegram.error import BadRequest, NetworkError, TimedOut
from telegram.ext import AIORateLimiter

from qa_bot.telegram_bot.store import ChatStore

logger = logging.getLogger(__name__)

RATE_WINDOW_S = 60.0


class UserRateLimit:
    """At most `limit` requests per user in any `window` seconds; a warning once per burst.

    The windows are kept in the state file when one is given, so a restart does not reset them."""

    def __init__(self, limit: int, window: float = RATE_WINDOW_S, store: ChatStore | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.window = window
        self.store = store
        self.clock = clock
        self._windows: dict[int, tuple[list[float], bool]] = {}

    def check(self, user_id: int) -> Literal["ok", "warn", "drop"]:
        """Record a request: 'ok' to serve it, 'warn' to say slow down, 'drop' to ignore it."""
        if self.limit <= 0:
            return "ok"
        now = self.clock()
        hits, warned = self._window(user_id)
        hits = [t for t in hits if now - t < self.window]
        if len(hits) < self.limit:
            verdict: Literal["ok", "warn", "drop"] = "ok"
            hits.append(now)
            warned = False
        else:
            verdict = "drop" if warned else "warn"
            warned = True
        self._save(user_id, hits, warned)
        return verdict

    def wait_s(self, user_id: int) -> int:
        """Seconds until this user may ask again."""
        hits, _ = self._window(user_id)
        if not hits:
            return 0
        return max(1, int(self.window - (self.clock() - hits[0])) + 1)

    def _window(self, user_id: int) -> tuple[list[float], bool]:
        if self.store is not None:
            return self.store.rate_window(user_id)
        return self._windows.get(user_id, ([], False))

    def _save(self, user_id: int, hits: list[float], warned: bool) -> None:
        if self.store is not None:
            self.store.save_rate_window(user_id, hits, warned)
        elif hits or warned:
            self._windows[user_id] = (hits, warned)
        else:
            self._windows.pop(user_id, None)


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
        """Send through the flood-control limiter; retry network failures with back-off.

        "typing…" goes around the limiter: it must not take the answers' place in the budget."""
        if endpoint == "sendChatAction":
            return await callback(*args, **kwargs)
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
