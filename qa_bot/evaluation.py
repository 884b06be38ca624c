"""Answer quality on a question set: ranking, quoting and abstention metrics, and the misses."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from qa_bot.answer import Answerer
from qa_bot.errors import QABotError
from qa_bot.types import Answer


@dataclass(frozen=True)
class EvalQuestion:
    """One line of a question file: the answer strings any correct passage contains."""

    id: str
    question: str
    answers: tuple[str, ...]
    unanswerable: bool


@dataclass
class EvalReport:
    """The metrics of one run, and the questions that missed."""

    answerable: int = 0
    unanswerable: int = 0
    hits_at_1: int = 0
    hits_at_3: int = 0
    reciprocal_ranks: float = 0.0
    quotes_with_answer: int = 0
    abstained: int = 0
    false_abstentions: int = 0
    duplicate_top3: int = 0
    misses: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        """The headline numbers, as fractions."""
        a, u = max(self.answerable, 1), max(self.unanswerable, 1)
        return {
            "hit@1": self.hits_at_1 / a,
            "hit@3": self.hits_at_3 / a,
            "mrr": self.reciprocal_ranks / a,
            "quote_contains_answer": self.quotes_with_answer / a,
            "abstention": self.abstained / u if self.unanswerable else 1.0,
            "false_abstention": self.false_abstentions / a,
            "duplicate_top3": float(self.duplicate_top3),
        }


def read_questions(path: Path) -> list[EvalQuestion]:
    """Parse a JSONL file of {"id", "q", "answers", "unanswerable"?} records."""
    questions = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise QABotError(f"cannot read question file {path}: {e}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            questions.append(EvalQuestion(
                id=str(record.get("id", number)), question=record["q"],
                answers=tuple(record.get("answers", ())),
                unanswerable=bool(record.get("unanswerable", False)),
            ))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise QABotError(f"{path}:{number}: not a question record ({e})",
                             hint='each line needs {"q": ..., "answers": [...]}') from None
    return questions


def contains_answer(text: str | None, answers: tuple[str, ...]) -> bool:
    """Whether a text contains any of the answer strings (case and quote style ignored)."""
    if not text:
        return False
    haystack = _normal(text)
    return any(_normal(a) in haystack for a in answers)


def evaluate(answerer: Answerer, questions: list[EvalQuestion]) -> EvalReport:
    """Ask every question and score the answers."""
    report = EvalReport()
    for q in questions:
        answer = answerer.ask(q.question)
        if _has_duplicates(answer):
            report.duplicate_top3 += 1
            report.misses.append(f"{q.id}: duplicate passages in the top 3")
        if q.unanswerable:
            report.unanswerable += 1
            if answer.answered:
                report.misses.append(f"{q.id}: answered an unanswerable question: {answer.quote!r}")
            else:
                report.abstained += 1
            continue
        report.answerable += 1
        rank = next((i for i, p in enumerate(answer.passages, 1)
                     if contains_answer(p.text, q.answers)), None)
        report.hits_at_1 += rank == 1
        report.hits_at_3 += rank is not None and rank <= 3
        report.reciprocal_ranks += 1 / rank if rank else 0.0
        if not answer.answered:
            report.false_abstentions += 1
            report.misses.append(f"{q.id}: abstained (confidence {answer.confidence}) "
                                 f"on {q.question!r}")
        elif contains_answer(answer.quote, q.answers):
            report.quotes_with_answer += 1
        else:
            report.misses.append(f"{q.id}: quote lacks {q.answers!r}: {answer.quote!r}")
        if rank != 1:
            report.misses.append(f"{q.id}: answer passage at rank {rank} for {q.question!r}")
    return report


def _has_duplicates(answer: Answer) -> bool:
    top = [_normal(p.text) for p in answer.passages[:3]]
    return any(a in b or b in a for i, a in enumerate(top) for b in top[i + 1:])


def _normal(text: str) -> str:
    for fancy, plain in (("’", "'"), ("‘", "'"), ("“", '"'), ("”", '"')):
        text = text.replace(fancy, plain)
    return " ".join(text.lower().split())
