"""Answer quality on a question set: ranking, quoting and abstention metrics, per question shape."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa_bot.answer import Answerer
from qa_bot.conversation import Conversation
from qa_bot.errors import QABotError
from qa_bot.types import Answer


@dataclass(frozen=True)
class EvalQuestion:
    """One line of a question file: the answer strings any correct passage contains."""

    id: str
    question: str
    answers: tuple[str, ...]
    unanswerable: bool
    shape: str = ""  # "which-place", "how-many", "furniture-only"…, for per-shape numbers


@dataclass(frozen=True)
class Outcome:
    """How one question was answered."""

    question: EvalQuestion
    rank: int | None  # of the first passage holding an answer string
    answered: bool
    quote_holds_answer: bool  # the top passage's quote, whether or not the bot dared to give it
    duplicate_top3: bool


@dataclass
class EvalReport:
    """The outcomes of one run, their metrics, and the questions that missed."""

    outcomes: list[Outcome] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    @property
    def answerable(self) -> int:
        return sum(not o.question.unanswerable for o in self.outcomes)

    @property
    def unanswerable(self) -> int:
        return sum(o.question.unanswerable for o in self.outcomes)

    @property
    def duplicate_top3(self) -> int:
        return sum(o.duplicate_top3 for o in self.outcomes)

    def metrics(self) -> dict[str, float]:
        """The headline numbers, as fractions."""
        return _metrics(self.outcomes)

    def by_shape(self) -> dict[str, dict[str, float]]:
        """The same numbers for each question shape that the question file names."""
        groups: dict[str, list[Outcome]] = defaultdict(list)
        for o in self.outcomes:
            if o.question.shape:
                groups[o.question.shape].append(o)
        return {shape: _metrics(group) | {"questions": float(len(group))}
                for shape, group in sorted(groups.items())}


def shape_table(report: EvalReport) -> list[str]:
    """The per-shape numbers as lines of text, a header first; none without shapes."""
    shapes = report.by_shape()
    if not shapes:
        return []
    lines = [f"{'shape':<30}{'n':>4}{'hit@1':>7}{'hit@3':>7}{'quote':>7}{'abst.':>7}{'false':>7}"]
    lines += [f"{shape:<30}{int(m['questions']):>4}{m['hit@1']:>7.2f}{m['hit@3']:>7.2f}"
              f"{m['quote_contains_answer']:>7.2f}{m['abstention']:>7.2f}{m['false_abstention']:>7.2f}"
              for shape, m in shapes.items()]
    return lines


def _metrics(outcomes: list[Outcome]) -> dict[str, float]:
    answerable = [o for o in outcomes if not o.question.unanswerable]
    unanswerable = [o for o in outcomes if o.question.unanswerable]
    a = max(len(answerable), 1)
    return {
        "hit@1": sum(o.rank == 1 for o in answerable) / a,
        "hit@3": sum(o.rank is not None and o.rank <= 3 for o in answerable) / a,
        "mrr": sum(1 / o.rank for o in answerable if o.rank) / a,
        "quote_contains_answer": sum(o.answered and o.quote_holds_answer for o in answerable) / a,
        "abstention": (sum(not o.answered for o in unanswerable) / len(unanswerable)
                       if unanswerable else 1.0),
        "false_abstention": sum(not o.answered for o in answerable) / a,
        "duplicate_top3": float(sum(o.duplicate_top3 for o in outcomes)),
    }


def read_questions(path: Path) -> list[EvalQuestion]:
    """Parse a JSONL file of {"id", "q", "answers", "unanswerable"?, "shape"?} records."""
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
                shape=str(record.get("shape", "")),
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
        outcome = score(q, answer)
        report.outcomes.append(outcome)
        report.misses.extend(_misses(outcome, answer))
    return report


def score(q: EvalQuestion, answer: Answer) -> Outcome:
    """Judge one answer against the question's answer strings."""
    rank = None if q.unanswerable else next(
        (i for i, p in enumerate(answer.passages, 1) if contains_answer(p.text, q.answers)), None)
    quote = answer.passages[0].quote if answer.passages else None  # given or held back
    return Outcome(q, rank, answer.answered, contains_answer(quote, q.answers), _has_duplicates(answer))


def _misses(o: Outcome, answer: Answer) -> list[str]:
    q = o.question
    misses = [f"{q.id}: duplicate passages in the top 3"] if o.duplicate_top3 else []
    if q.unanswerable:
        if o.answered:
            misses.append(f"{q.id}: answered an unanswerable question: {answer.quote!r}")
        return misses
    if not o.answered:
        misses.append(f"{q.id}: abstained (confidence {answer.confidence}) on {q.question!r}")
    elif not o.quote_holds_answer:
        misses.append(f"{q.id}: quote lacks {q.answers!r}: {answer.quote!r}")
    if o.rank != 1:
        misses.append(f"{q.id}: answer passage at rank {o.rank} for {q.question!r}")
    return misses


def _has_duplicates(answer: Answer) -> bool:
    """Two of the top three passages share text: the same article's overlapping spans, or one
    passage inside another."""
    top = answer.passages[:3]
    for i, a in enumerate(top):
        for b in top[i + 1:]:
            if a.source.id == b.source.id and a.start < b.end and b.start < a.end:
                return True
            na, nb = _normal(a.text), _normal(b.text)
            if na in nb or nb in na:
                return True
    return False


def _normal(text: str) -> str:
    for fancy, plain in (("’", "'"), ("‘", "'"), ("“", '"'), ("”", '"')):
        text = text.replace(fancy, plain)
    return " ".join(text.lower().split())


# -- conversations: follow-up questions ------------------------------------------------------------


@dataclass(frozen=True)
class TurnOutcome:
    """How one turn of a conversation was read and answered."""

    conversation: str
    turn: int  # 1 for the opening question
    kind: str  # "standalone", "wh", "swap", "pronoun", "speaker", "more", "confirm"
    asked: str
    read_as: str  # what the bot searched, or how it took the message
    read_right: bool  # a follow-up read as one; a question of its own never rewritten
    quote_holds_answer: bool
    passage_holds_answer: bool


def read_conversations(path: Path) -> list[dict[str, Any]]:
    """Parse a JSONL file of {"id", "turns": [{"q", "answers", "standalone", "kind"}]} records."""
    try:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise QABotError(f"cannot read conversation file {path}: {e}") from None
    if not all(isinstance(r, dict) and isinstance(r.get("turns"), list) for r in records):
        raise QABotError(f"{path}: every line needs a list of turns")
    return records


def is_conversation_file(path: Path) -> bool:
    """Whether a JSONL file holds conversations rather than single questions."""
    try:
        with path.open(encoding="utf-8") as lines:
            first = next((line for line in lines if line.strip()), "{}")
        return "turns" in json.loads(first)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False


def evaluate_conversations(answerer: Answerer, records: list[dict[str, Any]],
                           as_meant: bool = False) -> list[TurnOutcome]:
    """Play every conversation through a fresh `Conversation`, and score each turn. `as_meant`
    asks each follow-up as the standalone question its writer meant (its "means"), in a fresh
    chat: the most a perfect reading of follow-ups could reach with today's answers."""
    outcomes = []
    for record in records:
        conversation = Conversation(answerer)
        for number, turn in enumerate(record["turns"], start=1):
            answers = tuple(turn["answers"])
            meant = turn.get("means") if as_meant else None
            try:
                reply = Conversation(answerer).ask(meant) if meant else conversation.ask(turn["q"])
            except QABotError as e:
                outcomes.append(TurnOutcome(record["id"], number, turn["kind"], turn["q"], f"error: {e}",
                                            False, False, False))
                continue
            standalone = bool(turn.get("standalone", number == 1)) or bool(meant)
            read_as = reply.rewritten if reply.reading.kind == "rewrite" else reply.reading.kind
            outcomes.append(TurnOutcome(
                record["id"], number, turn["kind"], turn["q"], str(read_as),
                (reply.reading.kind == "standalone") == standalone,
                any(contains_answer(p.quote, answers) for p in reply.passages),
                any(contains_answer(p.text, answers) for p in reply.passages),
            ))
    return outcomes


def conversation_table(outcomes: list[TurnOutcome]) -> list[str]:
    """Per kind of later turn (and all of them): how many, read right, quote and passage hold the gold."""
    groups: dict[str, list[TurnOutcome]] = defaultdict(list)
    for o in outcomes:
        if o.turn > 1:
            groups[o.kind].append(o)
            groups["all later turns"].append(o)
    groups["opening questions"] = [o for o in outcomes if o.turn == 1]
    lines = [f"{'turns':<20}{'n':>4}{'read right':>12}{'quote':>8}{'passage':>9}"]
    for kind in sorted(groups, key=lambda k: (k in ("all later turns", "opening questions"), k)):
        group = groups[kind]
        lines.append(f"{kind:<20}{len(group):>4}" + "".join(
            f"{sum(getattr(o, f) for o in group) / len(group):>{w}.3f}"
            for f, w in (("read_right", 12), ("quote_holds_answer", 8), ("passage_holds_answer", 9))))
    return lines
