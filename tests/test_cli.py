"""The `qa-bot` command end to end, as a user runs it: real processes, real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qa_bot.answer import RULES, Answerer
from qa_bot.cli import _ablation, _ProgressBar, main
from qa_bot.config import Settings
from qa_bot.evaluation import read_questions
from tests.conftest import DATA, REPO

pytestmark = pytest.mark.slow


def qa_bot(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
           timeout: int = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qa_bot.cli", *args], input=stdin, capture_output=True, text=True,
        timeout=timeout, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


@pytest.fixture(scope="module")
def index_dir(seed_settings: Settings, answerer: object) -> str:
    """The session's seed index, already built in-process, so commands find it up to date."""
    return str(seed_settings.index_dir)


def test_ask_json_has_the_documented_shape(index_dir: str) -> None:
    run = qa_bot("ask", "--json", "--index-dir", index_dir, "how many soldiers left Damascus?")
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert set(answer) == {"question", "answered", "answer", "passages"}
    assert answer["answered"] is True and "400" in answer["answer"]
    assert 1 <= len(answer["passages"]) <= 5
    first = answer["passages"][0]
    assert set(first) == {"text", "source", "title", "published", "score", "also_in"}
    assert answer["answer"] in first["text"]
    assert first["source"].endswith(".txt") and isinstance(first["also_in"], list)
    assert "building" not in run.stderr and "updating" not in run.stderr  # nothing re-embedded


def test_ask_json_reads_questions_from_stdin_in_order(index_dir: str) -> None:
    questions = ["When did the Syrian revolution begin?", "", "Who is the CEO of Apple?"]
    run = qa_bot("ask", "--json", "--index-dir", index_dir, stdin="\n".join(questions) + "\n")
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["question"] for line in lines] == ["When did the Syrian revolution begin?", "",
                                                    "Who is the CEO of Apple?"]
    assert "2011" in lines[0]["answer"]
    assert lines[1] == {"question": "", "answered": False, "answer": None, "passages": []}
    assert "the question is empty" in run.stderr
    assert lines[2]["answered"] is False and lines[2]["answer"] is None and lines[2]["passages"]


def test_ask_prints_a_readable_answer(index_dir: str) -> None:
    run = qa_bot("ask", "--index-dir", index_dir, "Did the opposition meet resistance entering Damascus?")
    assert run.returncode == 0
    assert "“On the morning of December 8, opposition forces entered Damascus without a fight.”" \
        in run.stdout
    assert "— " in run.stdout and "003_142838458007a1eb.txt" in run.stdout


def test_off_topic_question_says_so(index_dir: str) -> None:
    run = qa_bot("ask", "--index-dir", index_dir, "What is the weather in Berlin tomorrow?")
    assert "I couldn't find that in the 5 articles" in run.stdout


def test_bad_questions_are_refused_with_exit_code_2(index_dir: str) -> None:
    empty = qa_bot("ask", "--index-dir", index_dir, "  ")
    assert empty.returncode == 2 and "empty" in empty.stderr
    huge = qa_bot("ask", "--index-dir", index_dir, "x" * 2001)
    assert huge.returncode == 2 and "limit is 2000" in huge.stderr


def test_index_reports_up_to_date_and_adds_only_new_articles(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(next((REPO / "seeds").glob("003_*.txt")), corpus)
    env = {"QA_BOT_CORPUS": str(corpus), "QA_BOT_INDEX_DIR": str(tmp_path / "idx")}
    first = qa_bot("index", env=env)
    assert first.returncode == 0 and "Index built" in first.stderr
    assert qa_bot("index", env=env).stderr.count("up to date") == 1
    (corpus / "extra.md").write_text(
        "The ferry between the two islands will run twice a day from June, the operator said.",
        encoding="utf-8")
    (corpus / "broken.txt").write_bytes(b"\xff\xfe\x00garbage")
    run = qa_bot("ask", "--json", "When will the ferry run twice a day?", env=env)
    assert "added broken.txt, extra.md" in run.stderr
    assert "warning: skipped broken.txt" in run.stderr
    assert "(1 texts embedded" in run.stderr
    assert json.loads(run.stdout)["passages"][0]["source"] == "extra.md"


def test_empty_corpus_is_exit_code_2(tmp_path: Path) -> None:
    run = qa_bot("ask", "--corpus", str(tmp_path), "--index-dir", str(tmp_path / "i"), "q?")
    assert run.returncode == 2
    assert "no readable article" in run.stderr and "fix:" in run.stderr
    assert "Traceback" not in run.stderr


def test_eval_prints_the_metrics(index_dir: str) -> None:
    run = qa_bot("eval", "--index-dir", index_dir, str(DATA / "dev_questions.jsonl"))
    assert run.returncode == 0
    for metric in ("hit@1", "hit@3", "mrr", "quote_contains_answer", "abstention",
                   "false_abstention", "misses"):
        assert metric in run.stdout


def test_health_answers_a_probe(index_dir: str) -> None:
    run = qa_bot("health", "--index-dir", index_dir)
    assert run.returncode == 0 and run.stdout.startswith("ok: 5 articles")


def test_chat_answers_lists_sources_and_quits_on_eof(index_dir: str) -> None:
    script = "/help\n/sources\nhow many soldiers left Damascus?\n/more\n/bogus\n"
    run = qa_bot("chat", "--index-dir", index_dir, stdin=script)
    assert run.returncode == 0, run.stderr
    assert "/sources" in run.stdout and "Financial Times" in run.stdout
    assert "400 soldiers" in run.stdout and "Unknown command /bogus" in run.stdout


def test_ablation_measures_each_rule_switched_off(answerer: Answerer,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert _ablation(answerer, read_questions(DATA / "dev_questions.jsonl"), RULES) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["rules", "hit@1", "hit@3"]
    assert lines[1].startswith("all") and len(lines) == 2 + len(RULES)
    assert {line.split()[1] for line in lines[2:]} == RULES


def test_an_unknown_rule_is_named_and_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--without", "no-such-rule", str(DATA / "dev_questions.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "no rule named no-such-rule" in err and "answer-type" in err


def test_the_progress_bar_shows_rate_and_time_left(capsys: pytest.CaptureFixture[str]) -> None:
    now = [100.0]
    bar = _ProgressBar(clock=lambda: now[0])
    bar(0, 1000)
    now[0] = 110.0
    bar(250, 1000)
    now[0] = 140.0
    bar(1000, 1000)
    lines = capsys.readouterr().err.split("\r")
    assert "250/1000, 25 texts/s, 30 s left" in lines[2]
    assert lines[3].startswith("Embedding [" + "#" * 30 + "] 1000/1000, 25 texts/s in 40 s")
