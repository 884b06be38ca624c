"""A fake Telegram Bot API server over real HTTP, for driving the bot in tests.

It runs an aiohttp server on 127.0.0.1 in a background thread, so a bot process (or an
in-process Application) talks to it exactly as it talks to api.telegram.org. Tests play users
(`send_text`, `press_button`), inject faults (`inject`), and read back every call the bot made.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import ClientSession, ClientTimeout, web

VALID_TOKEN = "123456789:AAF-fake-token-for-tests-0123456789ab"
MAX_MESSAGE_LENGTH = 4096
MAX_CALLBACK_ANSWER_LENGTH = 200

# Telegram's HTML subset: https://core.telegram.org/bots/api#html-style
ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
    "a", "code", "pre", "blockquote", "tg-emoji",
}  # fmt: skip
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
CHAT_ACTIONS = {
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note",
    "upload_video_note",
}  # fmt: skip
JSON_FIELDS = {
    "results", "button", "reply_markup", "commands", "entities", "reply_parameters", "link_preview_options",
    "allowed_updates", "scope",
}  # fmt: skip

_TAG_RE = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)"
    r"((?:\s+[a-zA-Z_-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'<>=]+))?)*)\s*>"
)
_ENTITY_RE = re.compile(r"&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]+));")
_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{5,32})?")
_MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}")


class EntityParseError(ValueError):
    """Raised for HTML Telegram refuses; the message is Telegram's description."""


def utf16_len(text: str) -> int:
    """Telegram counts lengths and offsets in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def parse_html(html: str) -> str:
    """Validate `html` the way Telegram's parse_mode=HTML does; return the plain text."""

    def offset(pos: int) -> int:
        return len(html[:pos].encode())

    out: list[str] = []
    stack: list[str] = []
    pos = 0
    while pos < len(html):
        char = html[pos]
        if char == "<":
            tag = _TAG_RE.match(html, pos)
            if not tag:
                raise EntityParseError(
                    f"Can't parse entities: Unexpected end of name token at byte offset {offset(pos)}"
                )
            closing, name = tag.group(1) == "/", tag.group(2).lower()
            if closing:
                if not stack:
                    raise EntityParseError(
                        f"Can't parse entities: Unexpected end tag at byte offset {offset(pos)}"
                    )
                if stack[-1] != name:
                    raise EntityParseError(
                        f"Can't parse entities: Unmatched end tag at byte offset {offset(pos)}, "
                        f'expected "</{stack[-1]}>", found "</{name}>"'
                    )
                stack.pop()
            else:
                if name not in ALLOWED_TAGS:
                    raise EntityParseError(
                        f'Can\'t parse entities: Unsupported start tag "{name}" at byte offset {offset(pos)}'
                    )
                stack.append(name)
            pos = tag.end()
        elif char == "&":
            entity = _ENTITY_RE.match(html, pos)
            if entity and entity.group(3) is None:
                number = int(entity.group(1) or entity.group(2), 10 if entity.group(1) else 16)
                out.append(chr(min(number, 0x10FFFF)))
            elif entity and entity.group(3) in NAMED_ENTITIES:
                out.append(NAMED_ENTITIES[entity.group(3)])
            else:
                # Telegram tolerates a few bare '&'; being strict here catches unescaped text.
                raise EntityParseError(
                    f"Can't parse entities: unsupported HTML entity at byte offset {offset(pos)}"
                )
            pos = entity.end()
        elif char == ">":
            raise EntityParseError(f"Can't parse entities: unexpected '>' at byte offset {offset(pos)}")
        else:
            out.append(char)
            pos += 1
    if stack:
        raise EntityParseError(
            f"Can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]}\""
        )
    return "".join(out)


@dataclass
class Call:
    """One request the bot made, with what the fake answered."""

    method: str
    params: dict[str, Any]
    at: float  # time.monotonic()
    status: int = 200
    result: Any = None
    description: str | None = None


@dataclass
class Injection:
    method: str
    status: int
    description: str
    retry_after: int | None
    chat_id: int | None
    times: int


@dataclass
class PushedUpdate:
    update: dict[str, Any]
    at: float
    webhook_status: int | None = None


@dataclass
class _State:
    updates: list[PushedUpdate] = field(default_factory=list)  # not yet confirmed
    history: list[PushedUpdate] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    callback_queries: dict[str, dict[str, Any]] = field(default_factory=dict)
    answered_callbacks: set[str] = field(default_factory=set)
    inline_queries: dict[str, dict[str, Any]] = field(default_factory=dict)
    inline_answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    injections: list[Injection] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    webhook_url: str = ""
    webhook_secret: str | None = None


class ApiError(Exception):
    """A Telegram error reply: HTTP status plus `{"ok": false, ...}` body."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


class FakeTelegramAPI:
    """Bot API server on 127.0.0.1 (random port) plus helpers that play users."""

    def __init__(self, token: str = VALID_TOKEN, username: str = "qa_test_bot") -> None:
        self.token = token
        self.bot_user = {
            "id": int(token.split(":")[0]),
            "is_bot": True,
            "first_name": "QA Test Bot",
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self._state = _State()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._ids = itertools.count(1)
        self._update_ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._new_update: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The value for TELEGRAM_API_BASE_URL (the token is appended to it)."""
        return f"http://127.0.0.1:{self.port}/bot"

    def start(self) -> FakeTelegramAPI:
        """Start serving in a background thread; returns self once the port is bound."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake Telegram API did not start")
        return self

    def stop(self) -> None:
        """Stop the server and its thread."""
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)

    async def _shutdown(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:  # long polls still waiting
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def __enter__(self) -> FakeTelegramAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._new_update = asyncio.Event()
        app = web.Application(client_max_size=10 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = int(self._runner.addresses[0][1])
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    # -- playing users -----------------------------------------------------------------------

    @staticmethod
    def user(user_id: int) -> dict[str, Any]:
        """A Telegram User object for a test user."""
        return {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}

    @staticmethod
    def chat(chat_id: int) -> dict[str, Any]:
        """A private chat for positive ids, a supergroup for negative ones."""
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": f"User{chat_id}"}
        return {"id": chat_id, "type": "supergroup", "title": f"Group {chat_id}"}

    def send_text(
        self,
        user_id: int,
        text: str,
        chat_id: int | None = None,
        reply_to: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A user sends `text` (commands and @mentions get their entities); returns the update."""
        chat_id = user_id if chat_id is None else chat_id
        entities = []
        command = _COMMAND_RE.match(text)
        if command:
            entities.append({"type": "bot_command", "offset": 0, "length": utf16_len(command[0])})
        for mention in _MENTION_RE.finditer(text):
            entities.append(
                {
                    "type": "mention",
                    "offset": utf16_len(text[: mention.start()]),
                    "length": utf16_len(mention[0]),
                }
            )
        message: dict[str, Any] = {
            "message_id": next(self._ids),
            "from": self.user(user_id),
            "chat": self.chat(chat_id),
            "date": int(time.time()),
            "text": text,
        }
        if entities:
            message["entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        return self.push_update({"message": message})

    def press_button(self, user_id: int, message: dict[str, Any], data: str) -> dict[str, Any]:
        """A user taps the inline button with callback `data` under the bot's `message`."""
        query_id = str(next(self._ids) * 1000 + 7)
        query = {
            "id": query_id,
            "from": self.user(user_id),
            "message": message,
            "chat_instance": f"ci{message['chat']['id']}",
            "data": data,
        }
        with self._lock:
            self._state.callback_queries[query_id] = query
        return self.push_update({"callback_query": query})

    def send_inline(self, user_id: int, query: str) -> dict[str, Any]:
        """A user types "@bot <query>" in any chat; the bot's answerInlineQuery is kept by id."""
        query_id = str(next(self._ids) * 1000 + 9)
        inline = {"id": query_id, "from": self.user(user_id), "query": query, "offset": ""}
        with self._lock:
            self._state.inline_queries[query_id] = inline
        return self.push_update({"inline_query": inline})

    def push_update(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for getUpdates, or POST it to the webhook when one is set."""
        update = {"update_id": next(self._update_ids), **payload}
        pushed = PushedUpdate(update, time.monotonic())
        with self._changed:
            self._state.updates.append(pushed)
            self._state.history.append(pushed)
            webhook = self._state.webhook_url
            self._changed.notify_all()
        assert self._loop is not None and self._new_update is not None
        if webhook:
            asyncio.run_coroutine_threadsafe(self._deliver(pushed), self._loop).result(15)
        else:
            self._loop.call_soon_threadsafe(self._new_update.set)
        return update

    async def _deliver(self, pushed: PushedUpdate) -> None:
        headers = {}
        if self._state.webhook_secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self._state.webhook_secret
        async with ClientSession(timeout=ClientTimeout(total=10)) as session:
            async with session.post(self._state.webhook_url, json=pushed.update, headers=headers) as response:
                pushed.webhook_status = response.status

    def inject(
        self,
        method: str,
        status: int,
        description: str | None = None,
        retry_after: int | None = None,
        chat_id: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of `method` (for `chat_id`, if given) fail with `status`."""
        if description is None:
            description = {
                400: "Bad Request: injected failure",
                429: f"Too Many Requests: retry after {retry_after}",
                502: "Bad Gateway",
            }.get(status, "Injected failure")
        with self._lock:
            self._state.injections.append(Injection(method, status, description, retry_after, chat_id, times))

    # -- reading back ------------------------------------------------------------------------

    def calls(self, method: str | None = None, chat_id: int | None = None) -> list[Call]:
        """Every call so far (optionally of one method / for one chat), oldest first."""
        with self._lock:
            return [
                c
                for c in self._state.calls
                if (method is None or c.method == method)
                and (chat_id is None or c.params.get("chat_id") == chat_id)
            ]

    def wait_for(self, predicate: Callable[[list[Call]], Any], timeout: float = 15.0) -> Any:
        """Wait until `predicate(all calls)` is truthy and return its value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = predicate(list(self._state.calls))
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    methods = [(c.method, c.params.get("chat_id"), c.status) for c in self._state.calls[-15:]]
                    raise TimeoutError(f"condition not met in {timeout}s; last calls: {methods}")
                self._changed.wait(left)

    def wait_for_messages(
        self, chat_id: int, count: int = 1, after: float = 0.0, timeout: float = 15.0
    ) -> list[Call]:
        """Wait for `count` successful sendMessage calls to `chat_id` made after `after`."""

        def sent(calls: list[Call]) -> list[Call] | None:
            found = [
                c
                for c in calls
                if c.method == "sendMessage"
                and c.status == 200
                and c.params.get("chat_id") == chat_id
                and c.at >= after
            ]
            return found if len(found) >= count else None

        result: list[Call] = self.wait_for(sent, timeout)
        return result

    def message(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """The bot's message as it stands now (after any edits)."""
        with self._lock:
            return dict(self._state.messages[(chat_id, message_id)])

    @property
    def commands(self) -> list[dict[str, Any]]:
        """The command menu the bot registered with setMyCommands."""
        with self._lock:
            return list(self._state.commands)

    @property
    def updates(self) -> list[PushedUpdate]:
        """Every update pushed so far, oldest first."""
        with self._lock:
            return list(self._state.history)

    @property
    def webhook(self) -> tuple[str, str | None]:
        """The webhook URL and secret token last set (empty URL when polling)."""
        with self._lock:
            return self._state.webhook_url, self._state.webhook_secret

    # -- the HTTP side -----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        call = Call(method, params, time.monotonic())
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            self._check_injection(method, params)
            handler = getattr(self, f"_api_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            call.result = await handler(params)
            body: dict[str, Any] = {"ok": True, "result": call.result}
        except ApiError as exc:
            call.status, call.description = exc.status, exc.description
            body = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.retry_after is not None:
                body["parameters"] = {"retry_after": exc.retry_after}
        with self._changed:
            self._state.calls.append(call)
            self._changed.notify_all()
        return web.json_response(body, status=call.status)

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(parse_qsl(request.query_string))
        if request.can_read_body:
            if request.content_type == "application/json":
                raw.update(await request.json())
            else:
                raw.update(dict(await request.post()))
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if isinstance(value, str) and key in JSON_FIELDS:
                value = json.loads(value)
            elif isinstance(value, str) and re.fullmatch(r"-?\d+", value) and key != "text":
                value = int(value)
            params[key] = value
        return params

    def _check_injection(self, method: str, params: dict[str, Any]) -> None:
        with self._lock:
            for injection in self._state.injections:
                if injection.method == method and injection.chat_id in (
                    None,
                    params.get("chat_id"),
                ):
                    injection.times -= 1
                    if injection.times <= 0:
                        self._state.injections.remove(injection)
                    raise ApiError(injection.status, injection.description, injection.retry_after)

    @staticmethod
    def _render(params: dict[str, Any]) -> str:
        text = str(params.get("text", ""))
        if params.get("parse_mode") == "HTML":
            try:
                text = parse_html(text)
            except EntityParseError as exc:
                raise ApiError(400, f"Bad Request: {exc}") from None
        elif params.get("parse_mode") not in (None, ""):
            raise ApiError(400, "Bad Request: unsupported parse_mode in the fake")
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > MAX_MESSAGE_LENGTH:
            raise ApiError(400, "Bad Request: message is too long")
        return text

    @staticmethod
    def _check_markup(params: dict[str, Any]) -> None:
        markup = params.get("reply_markup")
        if not markup:
            return
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                if not button.get("text"):
                    raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")

    async def _api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        with self._lock:
            self._state.webhook_url, self._state.webhook_secret = "", None
            if params.get("drop_pending_updates") in (True, "true", "True"):
                self._state.updates.clear()
        return True

    async def _api_setWebhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url", ""))
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        with self._lock:
            self._state.webhook_url = url
            self._state.webhook_secret = None if secret is None else str(secret)
        return True

    async def _api_getWebhookInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"url": self._state.webhook_url, "has_custom_certificate": False,
                    "pending_update_count": 0}  # fmt: skip

    async def _api_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        assert self._new_update is not None
        with self._lock:
            if self._state.webhook_url:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._new_update.clear()
            with self._lock:
                if offset:  # confirms (forgets) every update below the offset, like Telegram
                    self._state.updates = [u for u in self._state.updates if u.update["update_id"] >= offset]
                pending = [u.update for u in self._state.updates][:limit]
            left = deadline - loop.time()
            if pending or left <= 0:
                return pending
            try:
                await asyncio.wait_for(self._new_update.wait(), left)
            except TimeoutError:
                pass

    def _chat_id(self, params: dict[str, Any]) -> int:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            raise ApiError(400, "Bad Request: chat not found")
        return chat_id

    async def _api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        text = self._render(params)
        self._check_markup(params)
        message: dict[str, Any] = {
            "message_id": next(self._ids),
            "from": self.bot_user,
            "chat": self.chat(chat_id),
            "date": int(time.time()),
            "text": text,
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        with self._lock:
            self._state.messages[(chat_id, message["message_id"])] = {
                **message,
                "html": params.get("text"),
            }
        return message

    def _stored(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (self._chat_id(params), int(params.get("message_id") or 0))
        with self._lock:
            if key not in self._state.messages:
                raise ApiError(400, "Bad Request: message to edit not found")
            return self._state.messages[key]

    async def _api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self._stored(params)
        text = self._render(params)
        self._check_markup(params)
        markup = params.get("reply_markup")
        with self._lock:
            if stored["html"] == params.get("text") and stored.get("reply_markup") == markup:
                raise ApiError(
                    400,
                    "Bad Request: message is not modified: specified new message content and "
                    "reply markup are exactly the same as a current content and reply markup "
                    "of the message",
                )
            stored.update(text=text, html=params.get("text"), edit_date=int(time.time()))
            stored.pop("reply_markup", None)
            if markup:
                stored["reply_markup"] = markup
            return {k: v for k, v in stored.items() if k != "html"}

    async def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self._stored(params)
        self._check_markup(params)
        markup = params.get("reply_markup")
        with self._lock:
            if stored.get("reply_markup") == markup:
                raise ApiError(400, "Bad Request: message is not modified")
            stored.pop("reply_markup", None)
            if markup:
                stored["reply_markup"] = markup
            stored["edit_date"] = int(time.time())
            return {k: v for k, v in stored.items() if k != "html"}

    async def _api_sendChatAction(self, params: dict[str, Any]) -> bool:
        self._chat_id(params)
        if params.get("action") not in CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    async def _api_setMyCommands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: commands must be a list of at most 100 items")
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        with self._lock:
            self._state.commands = commands
        return True

    async def _api_getMyCommands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.commands

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        with self._lock:
            if query_id not in self._state.callback_queries or query_id in self._state.answered_callbacks:
                raise ApiError(
                    400,
                    "Bad Request: query is too old and response timeout expired or query ID is invalid",
                )
            self._state.answered_callbacks.add(query_id)
        if len(str(params.get("text", ""))) > MAX_CALLBACK_ANSWER_LENGTH:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        return True

    async def _api_answerInlineQuery(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("inline_query_id", ""))
        results = params.get("results")
        with self._lock:
            if query_id not in self._state.inline_queries or query_id in self._state.inline_answers:
                raise ApiError(400, "Bad Request: query is too old and response timeout expired or "
                                    "query ID is invalid")
        if not isinstance(results, list) or len(results) > 50:
            raise ApiError(400, "Bad Request: RESULTS_TOO_MUCH")
        for result in results:
            content = result.get("input_message_content") or {}
            if not result.get("id") or len(str(result["id"]).encode()) > 64 or not result.get("title"):
                raise ApiError(400, "Bad Request: RESULT_ID_INVALID")
            text = str(content.get("message_text", ""))
            if not 1 <= utf16_len(text) <= MAX_MESSAGE_LENGTH:
                raise ApiError(400, "Bad Request: MESSAGE_TEXT_INVALID")
            if content.get("parse_mode") == "HTML":
                try:
                    parse_html(text)
                except EntityParseError as e:
                    raise ApiError(400, f"Bad Request: {e}") from None
        with self._lock:
            self._state.inline_answers[query_id] = results
        return True

    def inline_answer(self, query_id: str, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The results the bot gave for an inline query (waits for them)."""
        return list(self.wait_for(lambda _: self._state.inline_answers.get(query_id), timeout))
