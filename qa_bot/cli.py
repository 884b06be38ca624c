"""The `qa-bot` command: index, ask, chat, telegram, eval, health. All errors are presented here."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from qa_bot import __version__
from qa_bot.allocator import reuse_freed_memory
from qa_bot.config import Settings, env_name
from qa_bot.errors import QABotError
from qa_bot.telegram_bot.settings import configure_parser as configure_telegram

if TYPE_CHECKING:
    from qa_bot.answer import Answerer
    from qa_bot.evaluation import EvalQuestion

EXAMPLE = "how many soldiers left Damascus?"
BOT_HEARTBEAT_STALE_S = 60.0


def main(argv: list[str] | None = None) -> int:
    """Run one command; domain errors become one readable line and their exit code."""
    # As PID 1 in a container a process gets no default SIGTERM handling: make it an exit.
    signal.signal(signal.SIGTERM, _terminate)
    reuse_freed_memory()
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(corpus_dir=getattr(args, "corpus", None),
                                     index_dir=getattr(args, "index_dir", None),
                                     database_url=getattr(args, "database", None))
        return int(args.run(args, settings))
    except QABotError as e:
        print(f"error: {e.message}", file=sys.stderr)
        if e.hint:
            print(f"  fix: {e.hint}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--corpus", type=Path, metavar="DIR", default=argparse.SUPPRESS,
                        help=f"folder of articles (env {env_name('corpus_dir')}; default seeds/)")
    common.add_argument("--index-dir", type=Path, metavar="DIR", default=argparse.SUPPRESS,
                        help=f"where the index is kept (env {env_name('index_dir')}; "
                             "default embeddings/)")
    common.add_argument("--database", metavar="URL", default=argparse.SUPPRESS,
                        help=f"PostgreSQL URL of a shared store, instead of --index-dir "
                             f"(env {env_name('database_url')}; password in the URL or in "
                             f"{env_name('database_password_file')})")
    parser = argparse.ArgumentParser(
        prog="qa-bot", parents=[common],
        description="Answers questions about news articles with verbatim quoted passages.",
    )
    parser.add_argument("--version", action="version", version=f"qa-bot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = commands.add_parser("index", parents=[common], help="build or update the index")
    index.add_argument("--rebuild", action="store_true", help="re-embed everything from scratch")
    index.set_defaults(run=_index)

    ask = commands.add_parser("ask", parents=[common], help="answer one question (or stdin lines)")
    ask.add_argument("question", nargs="*", help=f'e.g. "{EXAMPLE}"; none: one per stdin line')
    ask.add_argument("--json", action="store_true", help="print one JSON object per question")
    ask.add_argument("--top-k", type=int, metavar="N", help="passages to return (default 5)")
    ask.set_defaults(run=_ask)

    chat = commands.add_parser("chat", parents=[common], help="interactive question prompt")
    chat.set_defaults(run=_chat)

    telegram = commands.add_parser("telegram", parents=[common], help="run the Telegram bot")
    configure_telegram(telegram)
    telegram.set_defaults(run=_telegram)

    evaluate = commands.add_parser("eval", parents=[common], help="measure answer quality")
    evaluate.add_argument("questions", type=Path, help="JSONL file of questions and answers")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.add_argument("--without", action="append", default=[], metavar="RULE",
                          help="switch a hand-set rule off (repeatable); --ablate lists them")
    evaluate.add_argument("--ablate", action="store_true",
                          help="measure the set with every rule, then with each rule switched off")
    evaluate.add_argument("--as-meant", action="store_true",
                          help="conversations: ask each follow-up as the question it means, on its own")
    evaluate.set_defaults(run=_eval)

    health = commands.add_parser("health", parents=[common],
                                 help="check that the index loads and answers (exit 0 if so)")
    health.add_argument("--bot", action="store_true",
                        help="check the running Telegram bot's heartbeat instead (loads no model)")
    health.set_defaults(run=_health)
    return parser


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _open(settings: Settings, rebuild: bool = False, progress: bool = False,
          update_store: bool = False) -> Answerer:
    from qa_bot.answer import Answerer  # loads torch: only for commands that need the model

    return Answerer.open(settings, report=_say, progress=_ProgressBar() if progress else None,
                         rebuild=rebuild, update_store=update_store)


def _index(args: argparse.Namespace, settings: Settings) -> int:
    started = time.perf_counter()
    answerer = _open(settings, rebuild=args.rebuild, progress=True, update_store=True)
    index = answerer.index
    if answerer.update.action == "loaded":
        _say("The index is up to date.")
    where = "the shared store" if settings.database_url else settings.index_dir
    _say(f"{len(index.articles)} articles, {len(index.chunks)} passages, "
         f"{len(index.sentences)} sentences in {where} "
         f"({time.perf_counter() - started:.1f} s).")
    return 0


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    from qa_bot.console import ask_once, ask_stream

    if args.top_k is not None:
        if args.top_k < 1:
            raise QABotError("--top-k must be at least 1")
        settings = replace(settings, top_k=args.top_k)
    question = " ".join(args.question)
    if args.question and not question.strip():
        _say(f'error: the question is empty. Try: qa-bot ask "{EXAMPLE}"')
        return 2
    answerer = _open(settings)
    if args.question:
        return ask_once(answerer, question, args.json, sys.stdout)
    if sys.stdin.isatty():
        _say("Reading one question per line; Ctrl-D ends.")
    return ask_stream(answerer, sys.stdin, args.json, sys.stdout)


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    from qa_bot.console import chat

    return chat(_open(settings))


def _telegram(args: argparse.Namespace, settings: Settings) -> int:
    from qa_bot.telegram_bot.app import run  # python-telegram-bot: only for this command

    return run(args, settings)


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from qa_bot.answer import RULES
    from qa_bot.evaluation import evaluate, is_conversation_file, read_questions, shape_table

    unknown = sorted(set(args.without) - RULES)
    if unknown:
        raise QABotError(f"no rule named {', '.join(unknown)}", hint=f"rules: {', '.join(sorted(RULES))}")
    if is_conversation_file(args.questions):
        return _eval_conversations(args, settings)
    questions = read_questions(args.questions)
    answerer = _open(settings)
    if args.ablate:
        return _ablation(answerer, questions, RULES - set(args.without))
    report = evaluate(answerer.with_rules(RULES - set(args.without)), questions)
    metrics = report.metrics()
    if args.json:
        print(json.dumps(metrics | {"by_shape": report.by_shape(), "misses": report.misses}, indent=2))
        return 0
    print(f"{report.answerable} answerable and {report.unanswerable} unanswerable questions "
          f"from {args.questions}" + (f", without {', '.join(args.without)}" if args.without else ""))
    for name, value in metrics.items():
        shown = f"{int(value)}" if name == "duplicate_top3" else f"{value:.3f}"
        print(f"  {name:<24}{shown}")
    for line in shape_table(report):
        print(f"  {line}")
    print("misses:" if report.misses else "misses: none")
    for miss in report.misses:
        print(f"  {miss}")
    return 0


def _eval_conversations(args: argparse.Namespace, settings: Settings) -> int:
    """Follow-up quality: each conversation played through a fresh chat, later turns scored."""
    from qa_bot.evaluation import conversation_table, evaluate_conversations, read_conversations

    records = read_conversations(args.questions)
    outcomes = evaluate_conversations(_open(settings), records, as_meant=args.as_meant)
    if args.json:
        print(json.dumps([vars(o) for o in outcomes], indent=2))
        return 0
    print(f"{len(records)} conversations, {len(outcomes)} turns from {args.questions}")
    for line in conversation_table(outcomes):
        print(f"  {line}")
    misses = [o for o in outcomes if o.turn > 1 and not (o.read_right and o.quote_holds_answer)]
    print("misses:" if misses else "misses: none")
    for o in misses:
        print(f"  {o.conversation}.{o.turn} [{o.kind}] {o.asked!r} read as {o.read_as!r}"
              + ("" if o.read_right else " (misread)")
              + ("" if o.quote_holds_answer else " (quote lacks it)"))
    return 0


def _ablation(answerer: Answerer, questions: list[EvalQuestion], rules: frozenset[str]) -> int:
    """One line per rule: the metrics with it switched off, beside those with every rule on."""
    from qa_bot.evaluation import evaluate

    columns = {"hit@1": "hit@1", "hit@3": "hit@3", "quote_contains_answer": "quote",
               "abstention": "abstains", "false_abstention": "false"}
    print(f"{'rules':<30}" + "".join(f"{title:>10}" for title in columns.values()) + f"{'dup. top 3':>12}")
    for label, active in [("all", rules)] + [(f"without {r}", rules - {r}) for r in sorted(rules)]:
        m = evaluate(answerer.with_rules(active), questions).metrics()
        print(f"{label:<30}" + "".join(f"{m[c]:>10.3f}" for c in columns) + f"{int(m['duplicate_top3']):>12}")
    return 0


def _health(args: argparse.Namespace, settings: Settings) -> int:
    if args.bot:
        return _bot_health(settings)
    answerer = _open(settings)
    index = answerer.index
    article = index.articles[next(iter(index.articles))]
    passage = index.rows.passage_of_sentence(index.rows.article_sentences(article.info.id)[0])
    # The longest sentence of its first passage: a headline or a name alone is no question.
    probe = max((index.sentence_text(r) for r in index.chunk_sentences[passage]), key=len)
    started = time.perf_counter()
    answer = answerer.ask(probe)
    elapsed_ms = (time.perf_counter() - started) * 1000
    top = answer.passages[:3]
    found = {p.source.id for p in top} | {a.id for p in top for a in p.also_in}
    if article.info.id not in found:
        _say(f"unhealthy: a probe sentence of {article.info.id} did not find its own article")
        return 1
    print(f"ok: {len(answerer.index.articles)} articles, {len(answerer.index.chunks)} passages; "
          f"probe answered in {elapsed_ms:.0f} ms")
    return 0


def _bot_health(settings: Settings) -> int:
    """The running bot touches its heartbeat file every few seconds; a stale one means it hangs."""
    from qa_bot.config import from_env
    from qa_bot.telegram_bot.settings import BotSettings, heartbeat_path

    path = heartbeat_path(from_env(BotSettings), settings.index_dir)
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        _say(f"unhealthy: no heartbeat at {path}: the bot is not running (yet)")
        return 1
    if age > BOT_HEARTBEAT_STALE_S:
        _say(f"unhealthy: the bot's last heartbeat was {age:.0f} s ago ({path})")
        return 1
    print(f"ok: the bot's heartbeat is {age:.0f} s old")
    return 0


class _ProgressBar:
    """A one-line embedding progress bar on stderr, with the rate so far and the time left at it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started: float | None = None
        self._last = -1.0

    def __call__(self, done: int, total: int) -> None:
        if total == 0:
            return
        now = self._clock()
        if self._started is None:
            self._started = now
        if done < total and now - self._last < 0.2:
            return
        self._last = now
        width = 30
        filled = width * done // total
        elapsed = now - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        pace = f", {rate:.0f} texts/s" if rate else ""
        # Texts are embedded longest first, so the time left is an upper bound.
        left = f", {(total - done) / rate:.0f} s left" if rate and done < total else ""
        took = f" in {elapsed:.0f} s" if done >= total else ""
        sys.stderr.write(f"\rEmbedding [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
                         f"{pace}{left}{took}\x1b[K")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
