"""Load-test the real `qa-bot telegram` process against the fake Bot API, and print the numbers.

    .venv/bin/python scripts/telegram_load.py [--users 50] [--questions 10] [--timeout 300] [--json]

Builds (or reuses) an index of seeds/ first, so indexing is not measured; starts the fake Telegram
API and the bot (long polling, rate limit off); measures the idle bot's resident memory; then pushes
users x questions messages at once (a burst, as after an outage) and times every answer from its
push. Finally stops the bot with SIGTERM and reports its exit code and how long it took.

In private chats the bot does not quote the question, so an answer is matched to its question by
the reply parameters when present, else by its content (the quote or the 'not found' echo that
`qa-bot ask --json` gives for that question), else by order (the user's oldest unanswered one).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python scripts/...` finds tests/

from tests.fake_telegram_api import VALID_TOKEN, Call, FakeTelegramAPI

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
FIRST_USER = 10_001
STARTUP_USER = 9_999  # asks the first questions after start-up, one at a time
READY_TIMEOUT_S = 180.0
IDLE_S = 3.0
STOP_TIMEOUT_S = 30.0
# Replies that answer no question: the error handler's apology, the rate limiter's warning.
NOT_ANSWERS = ("Sorry, something went wrong", "You're asking faster than I can keep up")
QUESTIONS = (
    "how many soldiers left Damascus?",
    "Which bases does Russia want to keep in Syria?",
    "Where did Assad publish his statement?",
    "Who is Kamal Lababidi?",
    "Has Putin commented on the fall of Damascus?",
    "How long had the Baath party ruled Syria?",
    "What did the Russian Foreign Ministry urge everyone to do?",
    "Which embassies' staff did Russia evacuate besides its own?",
    "When did the Kremlin confirm Assad had fled to Moscow?",
    "Why did the Russian military evacuate Assad?",
    "Did Assad intend to leave Syria when Damascus fell?",
    "Who currently leads Hezbollah?",
    "According to Moscow, who should decide Syria's future?",
    "What kind of offensive did the rebels use to take Damascus?",
    "Which office reported that Russia had evacuated diplomatic staff from Damascus?",
    "Where is the Russian naval base in Syria?",
    "How many planes flew from Hmeimim to Russia?",
    "Who leads the rebel group that took Damascus?",
    "What happened to the Assad family's rule?",
    "Who won the football world cup in 2022?",  # off-topic: the 'not found' path
)


@dataclass
class Question:
    user: int
    text: str
    message_id: int
    pushed_at: float
    answered_at: float | None = None
    matched_by: str | None = None


@dataclass
class Report:
    users: int
    questions_per_user: int
    total: int = 0
    answered: int = 0
    wall_s: float | None = None
    questions_per_s: float | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    latency_max_s: float | None = None
    matched_by: dict[str, int] = field(default_factory=dict)
    unmatched_messages: int = 0
    chat_actions: int = 0
    rejected_calls: int = 0
    rejected_examples: list[str] = field(default_factory=list)
    idle_rss_mib: float | None = None
    first_answers_s: list[float] = field(default_factory=list)
    peak_rss_mib: float | None = None
    bot_pid: int | None = None
    bot_children: int = 0
    bot_exit_code: int | None = None
    bot_exit_s: float | None = None


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=50, help="simulated users (default 50)")
    parser.add_argument(
        "--questions", type=int, default=10,
        help=f"distinct questions per user, at most {len(QUESTIONS)} (default 10)",
    )  # fmt: skip
    parser.add_argument("--first", type=int, default=20,
                        help="questions asked one at a time right after start-up, timed (default 20)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for answers")
    parser.add_argument("--index-dir", type=Path, help="index folder to build or reuse (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args(argv)
    if args.users < 1 or not 1 <= args.questions <= len(QUESTIONS):
        parser.error(f"--users must be >= 1 and --questions between 1 and {len(QUESTIONS)}")
    return args


def _env(fake: FakeTelegramAPI | None) -> dict[str, str]:
    """The environment of the bot's tests: no QA_BOT_/TELEGRAM_ settings leak in, offline model."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QA_BOT_", "TELEGRAM_"))}
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    env.update(PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if fake is not None:
        env.update(TELEGRAM_BOT_TOKEN=VALID_TOKEN, TELEGRAM_API_BASE_URL=fake.base_url, QA_BOT_RATE_LIMIT="0")
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "qa_bot.cli", *args]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_index(index_dir: Path) -> None:
    started = time.monotonic()
    subprocess.run(
        _cli("index", "--corpus", str(SEEDS), "--index-dir", str(index_dir)),
        cwd=REPO, env=_env(None), check=True, stdout=subprocess.DEVNULL, timeout=900,
    )  # fmt: skip
    _log(f"index ready in {index_dir} ({time.monotonic() - started:.1f} s)")


def signatures(index_dir: Path, questions: Sequence[str]) -> dict[str, str]:
    """Per question, HTML that its answer message contains: the bold quote, or the echoed question."""
    result = subprocess.run(
        _cli("ask", "--json", "--corpus", str(SEEDS), "--index-dir", str(index_dir)),
        cwd=REPO, env=_env(None), input="\n".join(questions) + "\n", capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    found: dict[str, str] = {}
    for line in result.stdout.splitlines():
        try:
            answer: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError:
            continue
        question = str(answer.get("question", ""))
        if answer.get("answered") and answer.get("answer"):
            found[question] = f"<b>{html.escape(str(answer['answer']), quote=False)}</b>"
        else:
            found[question] = f"“{html.escape(question, quote=False)}”"
    if len(found) < len(questions):
        _log(f"warning: no expected answer for {len(questions) - len(found)} questions; matching by order")
    return found


def rss_kib(pid: int) -> tuple[int, int, int]:
    """VmRSS and VmHWM (KiB) of `pid` plus all its descendants, and how many descendants."""
    rss = hwm = 0
    pids = [pid]
    for current in pids:
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm += int(line.split()[1])
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                pids += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
    return rss, hwm, len(pids) - 1


def start_bot(fake: FakeTelegramAPI, index_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start `qa-bot telegram` and wait until it long-polls (getUpdates)."""
    command = _cli("telegram", "--corpus", str(SEEDS), "--index-dir", str(index_dir))
    with log.open("wb") as sink:
        popen = subprocess.Popen(command, cwd=REPO, env=_env(fake), stdout=sink, stderr=subprocess.STDOUT)
    started = time.monotonic()
    while not fake.calls("getUpdates"):
        if popen.poll() is not None:
            raise RuntimeError(f"the bot exited with {popen.returncode} before polling")
        if time.monotonic() - started > READY_TIMEOUT_S:
            raise RuntimeError(f"the bot did not poll within {READY_TIMEOUT_S:.0f} s")
        time.sleep(0.1)
    _log(f"bot pid {popen.pid} polling after {time.monotonic() - started:.1f} s")
    return popen


def stop_bot(popen: subprocess.Popen[bytes]) -> tuple[int | None, float]:
    """SIGTERM, then wait; killed (and None returned) if it does not exit in time."""
    started = time.monotonic()
    if popen.poll() is not None:
        return popen.returncode, 0.0
    popen.send_signal(signal.SIGTERM)
    try:
        code: int | None = popen.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait(10)
        code = None
    return code, time.monotonic() - started


def push_burst(fake: FakeTelegramAPI, users: int, per_user: int) -> list[Question]:
    """Every user's questions at once, round by round, each user starting at a different question."""
    pushed: list[tuple[int, str, int, int]] = []
    for round_ in range(per_user):
        for u in range(users):
            user = FIRST_USER + u
            text = QUESTIONS[(u + round_) % len(QUESTIONS)]
            update = fake.send_text(user, text)
            pushed.append((user, text, update["message"]["message_id"], update["update_id"]))
    at = {p.update["update_id"]: p.at for p in fake.updates}
    return [Question(user, text, message_id, at[update_id]) for user, text, message_id, update_id in pushed]


def _reply_to(call: Call) -> int | None:
    reply = call.params.get("reply_parameters")
    if isinstance(reply, dict) and isinstance(reply.get("message_id"), int):
        return int(reply["message_id"])
    value = call.params.get("reply_to_message_id")
    return value if isinstance(value, int) else None


def match(questions: list[Question], calls: list[Call], expected: dict[str, str]) -> int:
    """Mark the questions the bot's successful messages answer; returns the count of unmatched ones."""
    by_chat: dict[int, list[Question]] = {}
    for q in questions:
        q.answered_at = q.matched_by = None
        by_chat.setdefault(q.user, []).append(q)
    unmatched = 0
    for call in sorted(calls, key=lambda c: c.at):
        text = str(call.params.get("text", ""))
        if call.method != "sendMessage" or call.status != 200 or text.startswith(NOT_ANSWERS):
            continue
        chat = call.params.get("chat_id")
        pending = [q for q in by_chat.get(chat, []) if q.answered_at is None] if isinstance(chat, int) else []
        reply_to = _reply_to(call)
        chosen, how = next(((q, "reply") for q in pending if q.message_id == reply_to), (None, ""))
        if chosen is None:
            chosen, how = next(((q, "content") for q in pending if expected.get(q.text, "\0") in text),
                               (None, ""))  # fmt: skip
        if chosen is None and pending:
            chosen, how = pending[0], "order"
        if chosen is None:
            unmatched += 1
            continue
        chosen.answered_at, chosen.matched_by = call.at, how
    return unmatched


def percentile(values: Sequence[float], share: float) -> float:
    """Linear interpolation between the closest ranks (as numpy's default)."""
    ordered = sorted(values)
    rank = share * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def wait_for_answers(
    fake: FakeTelegramAPI, popen: subprocess.Popen[bytes], questions: list[Question],
    expected: dict[str, str], timeout: float,
) -> int:  # fmt: skip
    deadline = time.monotonic() + timeout
    last_log = time.monotonic()
    while True:
        burst = [c for c in fake.calls("sendMessage") if c.params.get("chat_id") != STARTUP_USER]
        unmatched = match(questions, burst, expected)
        done = sum(q.answered_at is not None for q in questions)
        if done == len(questions) or time.monotonic() > deadline or popen.poll() is not None:
            return unmatched
        if time.monotonic() - last_log > 10:
            _log(f"  {done}/{len(questions)} answered")
            last_log = time.monotonic()
        time.sleep(0.25)


def summarise(report: Report, questions: list[Question], fake: FakeTelegramAPI) -> None:
    report.total = len(questions)
    answered = [q for q in questions if q.answered_at is not None]
    report.answered = len(answered)
    report.matched_by = dict(Counter(str(q.matched_by) for q in answered))
    if answered:
        first_push = min(q.pushed_at for q in questions)
        wall = max(q.answered_at or 0.0 for q in answered) - first_push
        latencies = [(q.answered_at or 0.0) - q.pushed_at for q in answered]
        report.wall_s = round(wall, 3)
        report.questions_per_s = round(len(answered) / wall, 2) if wall > 0 else None
        report.latency_p50_s = round(percentile(latencies, 0.50), 3)
        report.latency_p95_s = round(percentile(latencies, 0.95), 3)
        report.latency_max_s = round(max(latencies), 3)
    calls = fake.calls()
    report.chat_actions = sum(c.method == "sendChatAction" for c in calls)
    rejected = [c for c in calls if c.status != 200]
    report.rejected_calls = len(rejected)
    kinds = Counter(f"{c.method} {c.status}: {c.description}" for c in rejected)
    report.rejected_examples = [f"{kind} (x{n})" for kind, n in kinds.most_common(5)]


def run(args: argparse.Namespace, workdir: Path) -> Report:
    index_dir: Path = args.index_dir or workdir / "index"
    build_index(index_dir)
    asked = sorted(
        {QUESTIONS[(u + r) % len(QUESTIONS)] for u in range(args.users) for r in range(args.questions)}
    )
    expected = signatures(index_dir, asked)
    report = Report(args.users, args.questions)
    with FakeTelegramAPI() as fake:
        popen = start_bot(fake, index_dir, workdir / "bot.log")
        try:
            report.bot_pid = popen.pid
            time.sleep(IDLE_S)
            rss, _, report.bot_children = rss_kib(popen.pid)
            report.idle_rss_mib = round(rss / 1024, 1)
            report.first_answers_s = first_answers(fake, args.first)
            _log(f"idle RSS {report.idle_rss_mib} MiB; pushing {args.users * args.questions} questions")
            questions = push_burst(fake, args.users, args.questions)
            report.unmatched_messages = wait_for_answers(fake, popen, questions, expected, args.timeout)
            _, hwm, _ = rss_kib(popen.pid)
            report.peak_rss_mib = round(hwm / 1024, 1) if hwm else None
            summarise(report, questions, fake)
        finally:
            report.bot_exit_code, exit_s = stop_bot(popen)
            report.bot_exit_s = round(exit_s, 2)
    return report


def first_answers(fake: FakeTelegramAPI, count: int) -> list[float]:
    """Seconds from push to answer of the first questions after start-up, asked one at a time."""
    latencies = []
    for i in range(count):
        pushed = time.monotonic()
        fake.send_text(STARTUP_USER, QUESTIONS[i % len(QUESTIONS)])
        [answer] = fake.wait_for_messages(STARTUP_USER, 1, after=pushed, timeout=60)
        latencies.append(round(answer.at - pushed, 3))
    return latencies


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def print_text(r: Report) -> None:
    rows = [
        ("answered", f"{r.answered}/{r.total} ({r.users} users x {r.questions_per_user} questions)"),
        ("wall time", f"{_seconds(r.wall_s)} (first push to last answer)"),
        ("throughput", "-" if r.questions_per_s is None else f"{r.questions_per_s:.2f} questions/s"),
        ("latency", f"p50 {_seconds(r.latency_p50_s)}, p95 {_seconds(r.latency_p95_s)}, "
                    f"max {_seconds(r.latency_max_s)} (push to answer)"),
        ("matched by", ", ".join(f"{k} {v}" for k, v in sorted(r.matched_by.items())) or "-"),
        ("unmatched msgs", str(r.unmatched_messages)),
        ("sendChatAction", str(r.chat_actions)),
        ("rejected calls", str(r.rejected_calls)),
        ("first answers", "-" if not r.first_answers_s else
         f"{len(r.first_answers_s)} after start, one at a time: first {r.first_answers_s[0] * 1000:.0f} ms, "
         f"median {statistics.median(r.first_answers_s) * 1000:.0f} ms, "
         f"max {max(r.first_answers_s) * 1000:.0f} ms"),
        ("idle RSS", f"{r.idle_rss_mib} MiB (pid {r.bot_pid}, {r.bot_children} children)"),
        ("peak RSS", f"{r.peak_rss_mib} MiB (VmHWM after the load)"),
        ("bot exit", f"code {r.bot_exit_code} after {_seconds(r.bot_exit_s)} (SIGTERM)"),
    ]  # fmt: skip
    for name, value in rows:
        print(f"{name:<16}{value}")
    for example in r.rejected_examples:
        print(f"  {example}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="telegram_load_") as scratch:
        workdir = Path(scratch)
        try:
            report = run(args, workdir)
        except BaseException:
            log = workdir / "bot.log"
            if log.exists():
                tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
                _log("bot log (last lines):\n" + "\n".join(tail))
            raise
        if report.answered < report.total or report.bot_exit_code != 0:
            tail = (workdir / "bot.log").read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
            _log("bot log (last lines):\n" + "\n".join(tail))
    if args.json:
        print(json.dumps(report.__dict__))
    else:
        print_text(report)
    return 0 if report.answered == report.total and report.bot_exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
