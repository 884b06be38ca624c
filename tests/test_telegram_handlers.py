"""The Telegram handlers in process: PTB's `process_update` with the session's Answerer, the bot's
requests going over HTTP to the fake Bot API. Faster than a bot process, and as real below it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from telegram import Update

from qa_bot.answer import Answerer
from qa_bot.telegram_bot import handlers
from qa_bot.telegram_bot.app import App, build_application, start_up
from qa_bot.telegram_bot.settings import BotSettings
from tests.fake_telegram_api import VALID_TOKEN, Call, FakeTelegramAPI, parse_html

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the loop the fixtures ran on
LISTED = 4001
UNLISTED = 4666


@pytest.fixture(scope="module")
def fake() -> Any:
    with FakeTelegramAPI() as api:
        yield api


@pytest.fixture
async def app(fake: FakeTelegramAPI, answerer: Answerer, tmp_path: Path) -> AsyncIterator[App]:
    config = BotSettings(token=VALID_TOKEN, api_base_url=fake.base_url, allowed_users=frozenset({LISTED}),
                         state_file=tmp_path / "state.sqlite3", heartbeat_file=tmp_path / "heartbeat")
    application = build_application(config, answerer.settings, answerer)
    await application.initialize()
    await start_up(application)
    yield application
    if application.bot_data.heartbeat is not None:
        application.bot_data.heartbeat.cancel()
    await application.shutdown()
    application.bot_data.store.close()


async def handle(application: App, update: dict[str, Any]) -> None:
    await application.process_update(Update.de_json(update, application.bot))


def sent(fake: FakeTelegramAPI, chat: int, method: str = "sendMessage") -> list[Call]:
    return fake.calls(method, chat_id=chat)


async def test_a_follow_up_shows_how_it_was_read(fake: FakeTelegramAPI, app: App) -> None:
    await handle(app, fake.send_text(LISTED, "how many soldiers left Damascus?"))
    await handle(app, fake.send_text(LISTED, "and from Latakia?"))
    reply = parse_html(sent(fake, LISTED)[-1].params["text"])
    assert reply.startswith("Reading that as: how many soldiers left Latakia?")
    assert "Latakia" in reply.split("\n", 1)[1]


async def test_invisible_text_is_an_empty_message(fake: FakeTelegramAPI, app: App) -> None:
    before = len(sent(fake, LISTED))
    await handle(app, fake.send_text(LISTED, "\u200b\u200b\u2060"))
    [reply] = sent(fake, LISTED)[before:]
    assert reply.params["text"].startswith("Yes? Ask me a question")


async def test_typing_is_shown_only_for_a_slow_answer(fake: FakeTelegramAPI, app: App,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers, "TYPING_AFTER_S", 60.0)  # no answer is "slow", however busy the machine
    await handle(app, fake.send_text(LISTED, "Where did Assad publish his statement?"))
    assert not sent(fake, LISTED, "sendChatAction")
    monkeypatch.setattr(handlers, "TYPING_AFTER_S", 0.0)  # every answer is "slow" now
    await handle(app, fake.send_text(LISTED, "Who is Kamal Lababidi?"))
    [typing] = sent(fake, LISTED, "sendChatAction")
    assert typing.params["action"] == "typing" and typing.at < sent(fake, LISTED)[-1].at


async def test_inline_mode_offers_the_quoted_answer_to_listed_users_only(fake: FakeTelegramAPI,
                                                                         app: App) -> None:
    query = fake.send_inline(LISTED, "how many soldiers left Damascus")
    await handle(app, query)
    [result] = fake.inline_answer(query["inline_query"]["id"])
    assert result["title"].startswith("“After negotiations") and "Financial Times" in result["description"]
    text = parse_html(result["input_message_content"]["message_text"])
    assert "400 soldiers" in text and "Financial Times" in text
    refused = fake.send_inline(UNLISTED, "how many soldiers left Damascus")
    await handle(app, refused)
    assert [c for c in fake.calls("answerInlineQuery")
            if str(c.params["inline_query_id"]) == refused["inline_query"]["id"]][0].params["results"] == []


async def test_the_access_check_runs_before_every_handler(fake: FakeTelegramAPI, app: App) -> None:
    await handle(app, fake.send_text(UNLISTED, "/start"))
    await handle(app, fake.send_text(UNLISTED, "how many soldiers left Damascus?"))
    replies = sent(fake, UNLISTED)
    assert [parse_html(r.params["text"]) for r in replies] == [handlers.REFUSAL]  # once, then silence


async def test_unknown_buttons_are_answered(fake: FakeTelegramAPI, app: App) -> None:
    await handle(app, fake.send_text(LISTED, "how many soldiers left Damascus?"))
    message = sent(fake, LISTED)[-1].result
    for data in ("garbage", "ex:-1", "more:not-a-key"):
        await handle(app, fake.press_button(LISTED, message, data))
    answers = fake.calls("answerCallbackQuery")[-3:]
    assert all(c.status == 200 for c in answers)
    assert answers[-1].params["text"] == handlers.EXPIRED


async def test_damaged_state_is_dropped_not_a_failure(fake: FakeTelegramAPI, app: App) -> None:
    store = app.bot_data.store
    await handle(app, fake.send_text(LISTED, "how many soldiers left Damascus?"))
    answer = sent(fake, LISTED)[-1]
    key = answer.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"].partition(":")[2]
    store._run("UPDATE conversations SET turns = ?", '[{"asked": "from an older version"}]')
    store._run("UPDATE buttons SET answer = ? WHERE key = ?", '{"passages": 3}', key)
    await handle(app, fake.send_text(LISTED, "and from Latakia?"))  # no previous turn to read it by
    reply = parse_html(sent(fake, LISTED)[-1].params["text"])
    assert not reply.startswith("Reading that as") and handlers.SOMETHING_WENT_WRONG not in reply
    await handle(app, fake.press_button(LISTED, answer.result, f"more:{key}"))
    assert fake.calls("answerCallbackQuery")[-1].params["text"] == handlers.EXPIRED
