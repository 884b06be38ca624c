"""The fake Bot API behaves like Telegram where the bot's tests rely on it."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fake_telegram_api import VALID_TOKEN, EntityParseError, FakeTelegramAPI, parse_html

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy


@pytest.fixture
def api() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as fake:
        yield fake


def call(api: FakeTelegramAPI, method: str, token: str = VALID_TOKEN, **params: Any) -> tuple:
    request = urllib.request.Request(
        f"http://127.0.0.1:{api.port}/bot{token}/{method}",
        data=json.dumps(params).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<b>bold</b> &amp; <i>it</i> &lt;3 &#33; &#x41;", "bold & it <3 ! A"),
        ('<blockquote>q <a href="https://x.org/?a=1&amp;b=2">l</a></blockquote>', "q l"),
        ("😀" * 3, "😀😀😀"),
    ],
)
def test_valid_html_parses_to_its_text(html: str, text: str) -> None:
    assert parse_html(html) == text


@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("<script>x</script>", 'Unsupported start tag "script"'),
        ("<b>x", "Can't find end tag"),
        ("<b>x</i>", "Unmatched end tag"),
        ("a & b", "unsupported HTML entity"),
        ("&nbsp;", "unsupported HTML entity"),
        ("1 < 2", "Unexpected end of name token"),
    ],
)
def test_invalid_html_is_refused(html: str, error: str) -> None:
    with pytest.raises(EntityParseError, match=error):
        parse_html(html)


def test_send_message_validates_like_telegram(api: FakeTelegramAPI) -> None:
    assert call(api, "getMe")[1]["result"]["username"] == "qa_test_bot"
    status, body = call(api, "sendMessage", chat_id=5, text="<b>hi</b>", parse_mode="HTML")
    assert status == 200 and body["result"]["text"] == "hi"
    status, body = call(api, "sendMessage", chat_id=5, text="<x>", parse_mode="HTML")
    assert status == 400 and body["description"].startswith("Bad Request: Can't parse entities")
    status, body = call(api, "sendMessage", chat_id=5, text="x" * 4097)
    assert (status, body["description"]) == (400, "Bad Request: message is too long")
    # The limit counts the text after entity parsing, in UTF-16 code units.
    assert call(api, "sendMessage", chat_id=5, text="<b>" + "x" * 4096 + "</b>", parse_mode="HTML")[0] == 200
    assert call(api, "sendMessage", chat_id=5, text="😀" * 2049)[0] == 400
    assert call(api, "sendMessage", token="1:bad", chat_id=5, text="x")[0] == 401


def test_injected_failures_carry_telegrams_shape(api: FakeTelegramAPI) -> None:
    api.inject("sendMessage", 429, retry_after=3, chat_id=7)
    assert call(api, "sendMessage", chat_id=8, text="other chat")[0] == 200
    status, body = call(api, "sendMessage", chat_id=7, text="x")
    assert status == 429 and body == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }
    assert call(api, "sendMessage", chat_id=7, text="x")[0] == 200


def test_get_updates_long_polls_and_confirms_by_offset(api: FakeTelegramAPI) -> None:
    started = time.monotonic()
    assert call(api, "getUpdates", timeout=0.3)[1]["result"] == []
    assert 0.3 <= time.monotonic() - started < 2

    timer = threading.Timer(0.2, api.send_text, args=(42, "hello"))
    timer.start()
    status, body = call(api, "getUpdates", timeout=5)
    timer.join()
    [update] = body["result"]
    assert update["message"]["text"] == "hello" and time.monotonic() - started < 3
    # Not confirmed yet: delivered again; confirmed with offset = id + 1: gone.
    assert call(api, "getUpdates", offset=update["update_id"])[1]["result"] == [update]
    assert call(api, "getUpdates", offset=update["update_id"] + 1)[1]["result"] == []


def test_commands_and_mentions_get_entities(api: FakeTelegramAPI) -> None:
    command = api.send_text(1, "/ask@qa_test_bot why?")["message"]
    assert command["entities"] == [{"type": "bot_command", "offset": 0, "length": 16}]
    mention = api.send_text(1, "hey @qa_test_bot", chat_id=-5)["message"]
    assert mention["entities"] == [{"type": "mention", "offset": 4, "length": 12}]
    assert mention["chat"]["type"] == "supergroup"
