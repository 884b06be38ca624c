"""Score the JSON lines of `qa-bot ask --json` (stdin batch) against a question file, per shape.

    .venv/bin/python -c 'import json,sys; [print(json.loads(l)["q"]) for l in open(sys.argv[1])]' \
        QUESTIONS | .venv/bin/qa-bot ask --json --corpus DIR --index-dir IDX > ANSWERS
    .venv/bin/python scripts/score_answers.py QUESTIONS ANSWERS

This is how release bars are measured: through the command's documented output, not the library.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from qa_bot.evaluation import EvalQuestion, EvalReport, Outcome, contains_answer, read_questions, shape_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("questions", type=Path)
    parser.add_argument("answers", type=Path, help="one `qa-bot ask --json` line per question, same order")
    args = parser.parse_args()
    questions = read_questions(args.questions)
    answers = [json.loads(line) for line in args.answers.read_text(encoding="utf-8").splitlines() if line]
    if len(answers) != len(questions):
        raise SystemExit(f"{len(questions)} questions but {len(answers)} answers")
    report = EvalReport(outcomes=[score(q, a) for q, a in zip(questions, answers, strict=True)])
    m = report.metrics()
    print(f"{report.answerable} answerable, {report.unanswerable} unanswerable: "
          + "  ".join(f"{k} {v:.3f}" for k, v in m.items() if k != "duplicate_top3")
          + f"  duplicate_top3 {int(m['duplicate_top3'])}")
    print("\n".join(shape_table(report)))


def score(q: EvalQuestion, answer: dict[str, Any]) -> Outcome:
    """Judge one JSON answer the way `qa_bot.evaluation.score` judges an Answer."""
    passages = answer["passages"]
    rank = None if q.unanswerable else next(
        (i for i, p in enumerate(passages, 1) if contains_answer(p["text"], q.answers)), None)
    quote = answer["answer"] if answer["answered"] else None
    texts = [" ".join(p["text"].lower().split()) for p in passages[:3]]
    duplicate = any(a in b or b in a for i, a in enumerate(texts) for b in texts[i + 1:])
    return Outcome(q, rank, bool(answer["answered"]), contains_answer(quote, q.answers), duplicate)


if __name__ == "__main__":
    main()
