"""The Telegram front end, end to end: the real `qa-bot telegram` process against a fake Bot API.

One bot process (long polling) serves most scenarios, each played by its own user so that the
per-user rate limit and the allowlist do not couple the tests; the webhook mode and the token
errors get processes of their own. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from qa_bot.answer import Answerer
from qa_bot.errors import ConfigError
from qa_bot.telegram_bot.handlers import REFUSAL
from qa_bot.telegram_bot.limits import UserRateLimit
from qa_bot.telegram_bot.render import MAX_LENGTH, render_answer, render_more, render_passage, split_html
from qa_bot.telegram_bot.settings import BotSettings
from qa_bot.types import Answer
from tests.fake_telegram_api import VALID_TOKEN, Call, FakeTelegramAPI, parse_html, utf16_len

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
RATE_LIMIT = 6  # per user per minute in the shared bot process
TOP_K = 40  # enough passages behind "More sources" to need several messages
UNLISTED_USER = 666
GROUP = -100_500  # an allowed chat: anyone in it may ask
GROUP_MEMBER = 2001  # not on the user allowlist, but in GROUP
ALLOWED_USERS = list(range(1001, 1031))
OFF_TOPIC = "Who won the football world cup in 2022?"
SOLDIERS = "how many soldiers left Damascus?"
INJECTION = "<b>x</b> & <script>"


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as api:
        yield api


@dataclass
class BotProcess:
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 20) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
            raise


def bot_command(*args: str) -> list[str]:
    """`qa-bot telegram ...` (as `python -m qa_bot.cli`: works without `pip install -e .`)."""
    return [sys.executable, "-m", "qa_bot.cli", "telegram", *args]


def bot_env(fake: FakeTelegramAPI | None, token: str | None = VALID_TOKEN, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QA_BOT_", "TELEGRAM_"))}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    env.update(PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if token is not None:
        env["TELEGRAM_BOT_TOKEN"] = token
    if fake is not None:
        env["TELEGRAM_API_BASE_URL"] = fake.base_url
    env.update(extra)
    return env


def start_bot(
    fake: FakeTelegramAPI, index_dir: Path, log: Path, ready_on: str, *args: str, **env: str
) -> BotProcess:
    """Start the bot and wait until it calls `ready_on` (getUpdates, setWebhook)."""
    command = bot_command("--corpus", str(SEEDS), "--index-dir", str(index_dir), *args)
    with log.open("wb") as sink:
        popen = subprocess.Popen(
            command, cwd=ROOT, env=bot_env(fake, **env), stdout=sink, stderr=subprocess.STDOUT
        )
    bot = BotProcess(popen, log)
    deadline = time.monotonic() + 120
    while not fake.calls(ready_on):
        if popen.poll() is not None or time.monotonic() > deadline:
            bot.stop()
            pytest.fail(f"the bot did not start (rc={popen.returncode}):\n{bot.output()}")
        time.sleep(0.1)
    return bot


@pytest.fixture(scope="module")
def bot(
    fake: FakeTelegramAPI, answerer: Answerer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BotProcess]:
    """The shared long-polling bot process."""
    log = tmp_path_factory.mktemp("bot") / "bot.log"
    process = start_bot(
        fake,
        answerer.settings.index_dir,
        log,
        "getUpdates",
        QA_BOT_ALLOWED_USERS=",".join(map(str, ALLOWED_USERS)),
        QA_BOT_ALLOWED_CHATS=str(GROUP),
        QA_BOT_RATE_LIMIT=str(RATE_LIMIT),
        QA_BOT_TOP_K=str(TOP_K),
    )
    yield process
    assert process.stop() == 0, process.output()
    output = process.output()
    assert "Stopped." in output
    assert VALID_TOKEN not in output and VALID_TOKEN.split(":")[1] not in output


def say(
    fake: FakeTelegramAPI,
    user: int,
    text: str,
    chat: int | None = None,
    replies: int = 1,
    reply_to: dict | None = None,
    timeout: float = 20,
) -> list[Call]:
    """Send `text` as `user` and wait for the bot's `replies` messages in that chat."""
    chat = user if chat is None else chat
    sent_at = time.monotonic()
    fake.send_text(user, text, chat_id=chat, reply_to=reply_to)
    return fake.wait_for_messages(chat, replies, after=sent_at, timeout=timeout)


def plain(call: Call) -> str:
    return str(call.result["text"])


def buttons(call: Call) -> list[dict]:
    markup = call.params.get("reply_markup") or {}
    return [button for row in markup.get("inline_keyboard", []) for button in row]


def settle(fake: FakeTelegramAPI, chat: int, after: float, seconds: float = 1.0) -> list[Call]:
    """The messages sent to `chat` since `after`, once `seconds` passed with nothing new."""
    time.sleep(seconds)
    return [c for c in fake.calls("sendMessage", chat_id=chat) if c.at >= after]


# -- formatting, without Telegram ------------------------------------------------------------


def test_answer_is_a_bold_quote_in_a_blockquote_with_its_source(answerer: Answerer) -> None:
    answer = answerer.ask(SOLDIERS)
    [block] = render_answer(answer)
    text = parse_html(block)
    assert answer.answered and answer.quote and "400" in answer.quote
    assert block.startswith("<blockquote>") and f"<b>{answer.quote}</b>" in block
    assert "Financial Times" in text and "also in: euronews" in text


def test_corpus_text_is_escaped(answerer: Answerer) -> None:
    answer = answerer.ask(SOLDIERS)
    top = answer.passages[0]
    hostile = replace(
        top,
        text="Profits <up> 5% & more </blockquote> " + top.text,
        source=replace(top.source, title="A <i>title</i> & co", url="https://x.org/?a=1&b=<2>"),
    )
    block = render_passage(hostile)
    text = parse_html(block)  # raises on anything Telegram would refuse
    assert "Profits <up> 5% & more </blockquote>" in text and "A <i>title</i> & co" in text


def test_split_html_never_exceeds_the_limit_nor_cuts_a_tag(answerer: Answerer) -> None:
    answer = answerer.ask(SOLDIERS, top_k=TOP_K)
    long_quote = " ".join(["Damascus & <Moscow>"] * 900)  # one passage far over 4096
    giant = replace(answer.passages[1], text=f"Start. {long_quote} End.", quote=long_quote)
    blocks = render_more(replace(answer, passages=(*answer.passages, giant)))
    messages = split_html(blocks)
    assert len(messages) >= 4
    for message in messages:
        assert utf16_len(message) <= MAX_LENGTH
        parse_html(message)
    joined = " ".join(" ".join(parse_html(m).split()) for m in messages)
    expected = " ".join(" ".join(parse_html(b).split()) for b in blocks)
    assert joined == expected


def test_config_errors_never_echo_the_token(tmp_path: Path) -> None:
    no_args = argparse.Namespace()
    with pytest.raises(ConfigError, match="not set"):
        BotSettings.from_args(no_args, {})
    with pytest.raises(ConfigError, match="malformed") as caught:
        BotSettings.from_args(no_args, {"TELEGRAM_BOT_TOKEN": "12345:short-secret"})
    assert "short-secret" not in str(caught.value)
    token_file = tmp_path / "token"
    token_file.write_text(VALID_TOKEN + "\n")
    config = BotSettings.from_args(
        argparse.Namespace(token_file=str(token_file)),
        {"QA_BOT_ALLOWED_USERS": "1, 2 3", "QA_BOT_ALLOWED_CHATS": "-100"},
    )
    assert config.token == VALID_TOKEN and VALID_TOKEN not in repr(config)
    assert config.allows(2, 99) and config.allows(7, -100) and not config.allows(7, 99)
    with pytest.raises(ConfigError, match="QA_BOT_ALLOWED_USERS"):
        BotSettings.from_args(no_args, {"TELEGRAM_BOT_TOKEN": VALID_TOKEN, "QA_BOT_ALLOWED_USERS": "@me"})


def test_user_rate_limit_warns_once_per_burst() -> None:
    limit = UserRateLimit(2, window=60)
    assert [limit.check(1) for _ in range(4)] == ["ok", "ok", "warn", "drop"]
    assert limit.check(2) == "ok" and 0 < limit.wait_s(1) <= 61


# -- the bot process, over real HTTP ---------------------------------------------------------


@pytest.mark.slow
def test_start_greets_describes_the_corpus_and_offers_examples(
    fake: FakeTelegramAPI, bot: BotProcess
) -> None:
    assert [c["command"] for c in fake.commands] == ["start", "ask", "sources", "help"]
    [reply] = say(fake, 1001, "/start")
    assert "5 news articles" in plain(reply) and "2024-12-16" in plain(reply)
    examples = buttons(reply)
    assert len(examples) == 3 and all(b["callback_data"].startswith("ex:") for b in examples)

    # Tapping an example asks it.
    pressed_at = time.monotonic()
    fake.press_button(1001, reply.result, examples[0]["callback_data"])
    [answer] = fake.wait_for_messages(1001, after=pressed_at)
    assert examples[0]["text"] in plain(answer) and "400" in plain(answer)
    assert fake.calls("answerCallbackQuery")


@pytest.mark.slow
def test_question_gets_the_verbatim_quote_with_its_source(fake: FakeTelegramAPI, bot: BotProcess) -> None:
    sent_at = time.monotonic()
    [reply] = say(fake, 1002, SOLDIERS)
    html = reply.params["text"]
    assert reply.params["parse_mode"] == "HTML"
    assert "<blockquote>" in html and "<b>" in html and "400 soldiers" in plain(reply)
    assert "Financial Times (FT), 2024-12-16" in plain(reply)
    assert "also in: euronews" in plain(reply)
    assert [b["text"] for b in buttons(reply)] == ["More sources"]
    # A warm answer takes milliseconds: no "typing…" spends the send budget on it.
    assert not [c for c in fake.calls("sendChatAction", chat_id=1002) if c.at >= sent_at]


@pytest.mark.slow
def test_off_topic_question_is_plainly_not_found(fake: FakeTelegramAPI, bot: BotProcess) -> None:
    [reply] = say(fake, 1003, OFF_TOPIC)
    assert plain(reply).startswith("I couldn't find an answer to “Who won the football")
    assert "<blockquote>" not in reply.params["text"]
    assert [b["text"] for b in buttons(reply)] == ["Closest passages"]


@pytest.mark.slow
def test_closest_passages_and_overlong_questions(fake: FakeTelegramAPI, bot: BotProcess) -> None:
    [reply] = say(fake, 1013, OFF_TOPIC)
    pressed_at = time.monotonic()
    fake.press_button(1013, reply.result, buttons(reply)[0]["callback_data"])
    first = fake.wait_for_messages(1013, after=pressed_at)[0]
    assert plain(first).startswith(f"The closest passages to {OFF_TOPIC}, none of which answers it:")
    assert "\n1. " in plain(first)
    [reply] = say(fake, 1014, "why " * 600)
    assert "the limit is 2000" in plain(reply)


@pytest.mark.slow
def test_html_in_a_question_comes_back_literally(fake: FakeTelegramAPI, bot: BotProcess) -> None:
    [reply] = say(fake, 1004, INJECTION)
    assert f"“{INJECTION}”" in plain(reply)
    assert "&lt;b&gt;x&lt;/b&gt; &amp; &lt;script&gt;" in reply.params["text"]
    [reply] = say(fake, 1004, f"/ask {INJECTION}")
    assert f"“{INJECTION}”" in plain(reply)


@pytest.mark.slow
def test_sources_lists_the_articles(fake: FakeTelegramAPI, bot: BotProcess) -> None:
    [reply] = say(fake, 1005, "/sources")
    text = plain(reply)
    assert "The 5 articles I answer from" in text
    assert "Russia pulls hundreds of soldiers out of Damaskus, Financial Times (FT), 2024-12-16" in text
    assert "euronews" in text


@pytest.mark.slow
def test_more_sources_sends_the_next_passages_split_in_valid_messages(
    fake: FakeTelegramAPI, bot: BotProcess
) -> None:
    [answer] = say(fake, 1006, SOLDIERS)
    [more] = buttons(answer)
    pressed_at = time.monotonic()
    fake.press_button(1006, answer.result, more["callback_data"])
    # TOP_K - 1 passages do not fit one message: several, each valid and under 4096.
    fake.wait_for_messages(1006, 2, after=pressed_at)
    parts = settle(fake, 1006, pressed_at)
    assert len(parts) >= 2
    assert plain(parts[0]).startswith(f"More passages for {SOLDIERS}")
    assert all(utf16_len(p.result["text"]) <= MAX_LENGTH for p in parts)
    assert all(c.status == 200 for c in fake.calls("sendMessage", chat_id=1006))
    numbers = [line.split(".")[0] for p in parts for line in plain(p).splitlines()]
    assert str(TOP_K) in numbers and "2" in numbers
    # The press is answered and the button taken off the answer.
    assert fake.calls("answerCallbackQuery")[-1].status == 200
    assert "reply_markup" not in fake.message(1006, answer.result["message_id"])
    # Pressing again (a stale button) is answered, not an error.
    again_at = time.monotonic()
    fake.press_button(1006, answer.result, more["callback_data"])
    fake.wait_for(lambda calls: [c for c in calls if c.method == "answerCallbackQuery"
                                 and c.at >= again_at])  # fmt: skip
    assert settle(fake, 1006, again_at, 0.3) == []


@pytest.mark.slow
def test_in_groups_only_ask_mentions_and_replies_are_answered(fake: FakeTelegramAPI, bot: BotProcess) -> None:
    sent_at = time.monotonic()
    fake.send_text(GROUP_MEMBER, SOLDIERS, chat_id=GROUP)  # chatter: must be ignored
    mention = fake.send_text(GROUP_MEMBER, f"@qa_test_bot {SOLDIERS}", chat_id=GROUP)
    [reply] = fake.wait_for_messages(GROUP, after=sent_at)
    assert reply.params["reply_parameters"]["message_id"] == mention["message"]["message_id"]
    assert "400 soldiers" in plain(reply)

    [reply] = say(fake, GROUP_MEMBER, f"/ask {OFF_TOPIC}", chat=GROUP)
    assert "couldn't find" in plain(reply)
    # A reply to one of the bot's messages is a question too.
    [reply] = say(fake, GROUP_MEMBER, SOLDIERS, chat=GROUP, reply_to=reply.result)
    assert "400 soldiers" in plain(reply)
    assert len(settle(fake, GROUP, sent_at, 0.5)) == 3


@pytest.mark.slow
def test_unlisted_user_gets_one_polite_refusal(fake: FakeTelegramAPI, bot: BotProcess) -> None:
    sent_at = time.monotonic()
    [reply] = say(fake, UNLISTED_USER, SOLDIERS)
    assert plain(reply) == REFUSAL
    fake.send_text(UNLISTED_USER, "/start")
    fake.send_text(UNLISTED_USER, "/sources")
    assert len(settle(fake, UNLISTED_USER, sent_at)) == 1
    assert not fake.calls("sendChatAction", chat_id=UNLISTED_USER)


@pytest.mark.slow
def test_per_user_rate_limit_says_slow_down_once(fake: FakeTelegramAPI, bot: BotProcess) -> None:
    sent_at = time.monotonic()
    for _ in range(RATE_LIMIT + 3):
        fake.send_text(1008, "/help")
    fake.wait_for_messages(1008, RATE_LIMIT + 1, after=sent_at)
    replies = [plain(c) for c in settle(fake, 1008, sent_at, 0.5)]
    assert len(replies) == RATE_LIMIT + 1
    assert sum("please slow down" in r for r in replies) == 1
    # Others are not slowed down by it.
    assert "How to ask" in plain(say(fake, 1009, "/help")[0])


@pytest.mark.slow
def test_flood_control_429_is_honoured_and_retried(fake: FakeTelegramAPI, bot: BotProcess) -> None:
    fake.inject("sendMessage", 429, retry_after=1, chat_id=1010)
    [reply] = say(fake, 1010, "/help")
    refused, delivered = fake.calls("sendMessage", chat_id=1010)
    assert refused.status == 429 and delivered is reply and delivered.status == 200
    assert delivered.at - refused.at >= 1.0


@pytest.mark.slow
def test_network_errors_are_retried(fake: FakeTelegramAPI, bot: BotProcess) -> None:
    fake.inject("sendMessage", 502, chat_id=1011, times=2)
    [reply] = say(fake, 1011, "/help")
    assert [c.status for c in fake.calls("sendMessage", chat_id=1011)] == [502, 502, 200]
    assert "How to ask" in plain(reply)
    # A failed long poll is retried too.
    fake.inject("getUpdates", 502)
    say(fake, 1011, "/help")  # ends the current long poll; the next one fails
    fake.wait_for(lambda calls: [c for c in calls if c.method == "getUpdates" and c.status == 502])
    assert "How to ask" in plain(say(fake, 1011, "/help")[0])


@pytest.mark.slow
def test_a_400_is_reported_and_the_bot_keeps_serving(fake: FakeTelegramAPI, bot: BotProcess) -> None:
    fake.inject("sendMessage", 400, chat_id=1012)
    [apology] = say(fake, 1012, SOLDIERS)
    assert plain(apology).startswith("Sorry, something went wrong")
    [reply] = say(fake, 1012, SOLDIERS)
    assert "400 soldiers" in plain(reply)
    log = bot.output()
    assert "Exception while handling an update" in log and "Traceback" in log
    assert "telegram.error.BadRequest: Injected failure" in log


@pytest.mark.slow
def test_users_are_served_concurrently_and_fast(fake: FakeTelegramAPI, bot: BotProcess) -> None:
    users = range(1020, 1030)
    sent_at = time.monotonic()
    for user in users:
        fake.send_text(user, SOLDIERS)
    for user in users:
        fake.wait_for_messages(user, after=sent_at)
    latencies = []
    for _ in range(5):
        [reply] = say(fake, 1030, SOLDIERS)
        pushed = fake.updates[-1]
        latencies.append(reply.at - pushed.at)
    latencies.sort()
    print(f"\nmessage -> reply: median {latencies[2] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
    assert latencies[-1] < 3.0


# -- processes of their own ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_webhook_mode_answers_an_update_posted_to_it(answerer: Answerer, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram-hook"
    with FakeTelegramAPI() as fake:
        bot = start_bot(
            fake, answerer.settings.index_dir, tmp_path / "webhook.log", "setWebhook",
            "--webhook-url", url, "--port", str(port), "--listen", "127.0.0.1",
        )  # fmt: skip
        try:
            hook, secret = fake.webhook
            assert hook == url and secret and len(secret) >= 32
            # The server is up once setWebhook was called; give Tornado a moment at most.
            [reply] = say(fake, 1001, SOLDIERS)
            assert fake.updates[-1].webhook_status == 200
            assert "400 soldiers" in plain(reply)
            assert not fake.calls("getUpdates")
            forged = urllib.request.Request(
                url,
                data=json.dumps({"update_id": 999}).encode(),
                headers={"Content-Type": "application/json",
                         "X-Telegram-Bot-Api-Secret-Token": "wrong"},
            )  # fmt: skip
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with pytest.raises(urllib.error.HTTPError) as refused:
                opener.open(forged, timeout=5)
            assert refused.value.code == 403
            refused.value.close()
        finally:
            rc = bot.stop()
        assert rc == 0, bot.output()
        assert secret not in bot.output() and VALID_TOKEN not in bot.output()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, "TELEGRAM_BOT_TOKEN is not set"),
        ("12345:this-is-not-a-token", "TELEGRAM_BOT_TOKEN is malformed"),
        ("987654321:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Telegram rejected the bot token"),
    ],
)
def test_token_problems_are_one_line_errors_with_exit_code_2(
    fake: FakeTelegramAPI, token: str | None, expected: str
) -> None:
    result = subprocess.run(
        bot_command("--corpus", str(SEEDS)),
        cwd=ROOT,
        env=bot_env(fake, token=token),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert expected in error
    assert "Traceback" not in result.stderr and "Loading the model" not in result.stderr
    if token:
        assert token.split(":")[1] not in result.stderr + result.stdout


def test_answer_type_is_what_the_bot_formats(answerer: Answerer) -> None:
    # Guards the contract the bot relies on: the quote is a substring of the top passage.
    answer: Answer = answerer.ask(SOLDIERS)
    assert answer.quote and answer.quote in answer.passages[0].text


@pytest.mark.slow
def test_a_more_sources_button_shows_nothing_to_anyone_else(fake: FakeTelegramAPI, bot: BotProcess) -> None:
    [answer] = say(fake, 1014, SOLDIERS)
    [more] = buttons(answer)
    key = more["callback_data"].partition(":")[2]
    assert len(key) >= 16 and not key.isdigit()  # random, not a counter another user can guess
    other_chat = {**answer.result, "chat": {"id": 1015, "type": "private"}}
    pressed_at = time.monotonic()
    fake.press_button(1015, other_chat, more["callback_data"])  # forged into another chat
    fake.press_button(1015, answer.result, more["callback_data"])  # another user, same message
    fake.press_button(1015, other_chat, "garbage")  # no handler knows it: still answered
    fake.wait_for(lambda calls: len([c for c in calls if c.method == "answerCallbackQuery"
                                     and c.at >= pressed_at]) >= 3)  # fmt: skip
    assert settle(fake, 1015, pressed_at, 0.5) == [] and settle(fake, 1014, pressed_at, 0.1) == []
    replies = [c for c in fake.calls("answerCallbackQuery") if c.at >= pressed_at]
    assert all(c.status == 200 and c.params.get("text") for c in replies)
    owner_at = time.monotonic()
    fake.press_button(1014, answer.result, more["callback_data"])  # the owner: still works
    [first, *_] = fake.wait_for_messages(1014, after=owner_at)
    assert plain(first).startswith(f"More passages for {SOLDIERS}")


# -- stopping, restarting, and what survives -------------------------------------------------------

GRACE_S = 10  # shorter than compose's stop_grace_period: SIGKILL comes this long after SIGTERM
QUEUED_USERS = range(5001, 5031)  # 30 users x 10 questions queued at once
QUESTIONS = ["how many soldiers left Damascus?", "Who is Kamal Lababidi?",
             "Where did Assad publish his statement?", "Which bases does Russia want to keep in Syria?",
             "When did the revolution begin?"]


def docker_stop(process: BotProcess, grace: float = GRACE_S) -> int:
    """SIGTERM, then SIGKILL after the grace period, as `docker stop` does."""
    process.popen.send_signal(signal.SIGTERM)
    try:
        return process.popen.wait(grace)
    except subprocess.TimeoutExpired:
        process.popen.kill()
        return process.popen.wait(5)


@pytest.mark.slow
def test_a_stop_under_load_loses_no_question_and_state_survives_the_restart(
    answerer: Answerer, tmp_path: Path
) -> None:
    state = {"QA_BOT_RATE_LIMIT": "0", "QA_BOT_STATE_FILE": str(tmp_path / "state.sqlite3"),
             "QA_BOT_HEARTBEAT_FILE": str(tmp_path / "heartbeat")}
    index_dir = answerer.settings.index_dir
    with FakeTelegramAPI() as api:
        first = start_bot(api, index_dir, tmp_path / "first.log", "getUpdates", **state)
        [answer] = say(api, 5000, SOLDIERS)
        say(api, 5000, "and from Latakia?")
        [more] = buttons(answer)
        pushed_at = time.monotonic()
        for round_ in range(10):
            for user in QUEUED_USERS:
                api.send_text(user, QUESTIONS[(user + round_) % len(QUESTIONS)])
        api.wait_for(lambda calls: len([c for c in calls if c.method == "sendMessage"
                                        and c.at > pushed_at]) >= 30)
        assert docker_stop(first) == 0, first.output()  # finished its batch within the grace period
        answered_before = len([c for c in api.calls("sendMessage") if c.at > pushed_at])
        assert answered_before < 300  # the stop came mid-way

        second = start_bot(api, index_dir, tmp_path / "second.log", "getUpdates", **state)
        try:
            api.wait_for(lambda calls: len([c for c in calls if c.method == "sendMessage"
                                            and c.at > pushed_at]) >= 300, timeout=120)
            time.sleep(1)
            for user in QUEUED_USERS:  # every question answered once: none lost, none twice
                replies = [c for c in api.calls("sendMessage", chat_id=user) if c.at > pushed_at]
                assert len(replies) == 10 and all(c.status == 200 for c in replies), user
            # A button from before the restart: its owner gets the passages, anyone else nothing.
            pressed_at = time.monotonic()
            api.press_button(5999, {**answer.result, "chat": {"id": 5999, "type": "private"}},
                             more["callback_data"])
            api.press_button(5000, answer.result, more["callback_data"])
            [passages, *_] = api.wait_for_messages(5000, after=pressed_at)
            assert plain(passages).startswith(f"More passages for {SOLDIERS}")
            assert settle(api, 5999, pressed_at, 0.5) == []
            # The conversation too: a follow-up of the question asked before the restart.
            [follow_up] = say(api, 5000, "what about Tartus?")
            assert plain(follow_up).startswith("Reading that as: how many soldiers left Tartus?")
        finally:
            assert second.stop() == 0, second.output()


@pytest.mark.slow
def test_health_check_reads_the_running_bots_heartbeat(bot: BotProcess, answerer: Answerer,
                                                       tmp_path: Path) -> None:
    def health(index_dir: Path) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "qa_bot.cli", "health", "--bot", "--index-dir", str(index_dir)]
        return subprocess.run(command, cwd=ROOT, env=bot_env(None, None), capture_output=True, text=True,
                              timeout=30)

    alive = health(answerer.settings.index_dir)
    assert alive.returncode == 0 and alive.stdout.startswith("ok: the bot's heartbeat is"), alive.stderr
    gone = health(tmp_path)
    assert gone.returncode == 1 and "no heartbeat" in gone.stderr
