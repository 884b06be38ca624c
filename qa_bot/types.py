"""The small dataclasses (and the one convention) that cross module boundaries."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# A follow-up read with context is searched as its own words, this, then what it is asked about:
# "why is that unusual — what did the head of the Russian delegation say mattered to Russia?"
CONTEXT_SEPARATOR = " — "


@dataclass(frozen=True)
class ArticleInfo:
    """What a reader needs to know about where a passage comes from."""

    id: str  # the file name, e.g. "002_0fe2ab4afbeef895.txt"
    title: str | None
    outlet: str | None
    author: str | None
    published: str | None  # ISO date, "2024-12-16"
    url: str | None = None


@dataclass(frozen=True)
class Passage:
    """A verbatim span of one article, ranked for a question."""

    text: str
    source: ArticleInfo
    score: float
    start: int  # character offsets into the source article's cleaned text
    end: int
    quote: str | None  # the answering sentence(s): a substring of `text`
    also_in: tuple[ArticleInfo, ...]  # other articles that carry the same passage

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Passage:
        """A Passage saved with `dataclasses.asdict`."""
        return cls(**{**data, "source": ArticleInfo(**data["source"]),
                      "also_in": tuple(ArticleInfo(**a) for a in data["also_in"])})


@dataclass(frozen=True)
class Answer:
    """The reply to one question: a quote when the corpus answers it, the closest passages always."""

    question: str
    answered: bool
    quote: str | None
    confidence: float
    passages: tuple[Passage, ...]
    article_count: int

    def to_json(self) -> dict[str, Any]:
        """Everything, as JSON-ready data (for state kept across restarts)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Answer:
        """An Answer saved by `to_json`."""
        return cls(**{**data, "passages": tuple(Passage.from_json(p) for p in data["passages"])})
