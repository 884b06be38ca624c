"""Passages syndicated word for word across outlets, found once at index time.

Each passage is cut into overlapping runs of words (shingles); a passage of another article that
shares most of the shorter one's shingles is a copy. Retrieval folds copies into one result
listed with every article that carries it (`also_in`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from qa_bot.lexical import words

SYNDICATION_SHINGLE = 5  # words per shingle when comparing passages across articles
SYNDICATION_OVERLAP = 0.6  # share of the shorter passage's shingles that makes it a copy


def syndicated_copies(passages: Sequence[tuple[str, str]]) -> list[list[int]]:
    """For each (article id, text) passage, the passages of other articles that repeat most of it."""
    shingles = [_shingles(text) for _, text in passages]
    holders: dict[tuple[str, ...], set[int]] = defaultdict(set)
    for c, sh in enumerate(shingles):
        for s in sh:
            holders[s].add(c)
    copies: list[list[int]] = []
    for c, sh in enumerate(shingles):
        shared: Counter[int] = Counter()
        for s in sh:
            shared.update(o for o in holders[s] if passages[o][0] != passages[c][0])
        copies.append(sorted(other for other, n in shared.items()
                             if n >= SYNDICATION_OVERLAP * min(len(sh), len(shingles[other]))))
    return copies


def _shingles(text: str) -> set[tuple[str, ...]]:
    w = words(text)
    n = SYNDICATION_SHINGLE
    return {tuple(w[i: i + n]) for i in range(max(len(w) - n + 1, 1))}
