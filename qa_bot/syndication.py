"""Passages syndicated word for word across outlets, found once at index time.

Each passage is cut into overlapping runs of words (shingles); a passage of another article that
shares most of the shorter one's shingles is a copy. Retrieval folds copies into one result
listed with every article that carries it (`also_in`).

Pairs are proposed by rare shingles only: if a passage shares at least SYNDICATION_OVERLAP of its
shingles with a longer one, that one holds at least one of any larger remaining share of them, so
the passage's least common shingles (a share just over 1 - SYNDICATION_OVERLAP) find every copy
at least as long as it; the shorter side of each pair finds the pair. The work grows with how often
those rare shingles repeat, not with the pairs of passages that share a common phrase.
"""

from __future__ import annotations

import gc
import math
from collections import defaultdict
from collections.abc import Sequence

from qa_bot.lexical import words

SYNDICATION_SHINGLE = 5  # words per shingle when comparing passages across articles
SYNDICATION_OVERLAP = 0.6  # share of the shorter passage's shingles that makes it a copy


def syndicated_copies(passages: Sequence[tuple[str, str]]) -> list[list[int]]:
    """For each (article id, text) passage, the passages of other articles that repeat most of it."""
    # Millions of shingle tuples make every pass of the cycle collector longer: at 160,000
    # passages it took 35.6 s with it and 25.1 s without. Nothing made here is cyclic.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _copies(passages)
    finally:
        if collecting:
            gc.enable()


def _copies(passages: Sequence[tuple[str, str]]) -> list[list[int]]:
    shingles = [_shingles(text) for _, text in passages]
    holders: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for c, sh in enumerate(shingles):
        for s in sh:
            holders[s].append(c)
    copies: list[set[int]] = [set() for _ in passages]
    for c, sh in enumerate(shingles):
        # One more than the most shingles a copy may lack.
        enough = len(sh) - math.ceil(SYNDICATION_OVERLAP * len(sh)) + 1
        proposing = sorted(sh, key=lambda s: len(holders[s]))[:enough]
        candidates = {o for s in proposing for o in holders[s]
                      if len(shingles[o]) >= len(sh) and passages[o][0] != passages[c][0]}
        for o in candidates:
            if len(sh & shingles[o]) >= SYNDICATION_OVERLAP * len(sh):
                copies[c].add(o)
                copies[o].add(c)
    return [sorted(found) for found in copies]


def is_copy(one: str, other: str) -> bool:
    """Whether the shorter of two passages shares enough of its shingles with the longer."""
    shorter, longer = sorted((_shingles(one), _shingles(other)), key=len)
    return len(shorter & longer) >= SYNDICATION_OVERLAP * len(shorter)


def _shingles(text: str) -> set[tuple[str, ...]]:
    w = words(text)
    n = SYNDICATION_SHINGLE
    return {tuple(w[i: i + n]) for i in range(max(len(w) - n + 1, 1))}
