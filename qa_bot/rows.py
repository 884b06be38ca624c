"""An index's rows on disk: what each passage and sentence is, read on demand, never parsed whole.

Glossary. A *sentence* is a span of one article's cleaned text. A *passage* (`Chunk`) is a window of
consecutive sentences of one article: the unit that is embedded and ranked. A *candidate*
(`retrieval.Candidate`) is a passage ranked for a question; the `types.Passage` a user sees is a
candidate's sentences, widened to its quote.

Files of a version folder:
    rows.sqlite3        articles (metadata, text, their sentence rows), the words of names and
                        their entity labels, the corpus words the model knows (for close words)
    sentences.rows.npy  per sentence row: article row, start, end (offsets into the article text)
    sentences.passage.npy  per sentence row, the last passage that holds it
    passages.rows.npy   per passage row: article row, start, end, first and last sentence row + 1
    entities.npy        per sentence, its entities (start, end, label number), found through
    entities.offsets.npy  the sentence's offset into the entity rows; labels in the manifest
    copies.npy, copies.offsets.npy   per passage, the passages of other articles that repeat it
Arrays are memory-mapped and articles are read from SQLite when first asked for, so opening a
folder reads a few small tables whatever the size of the corpus.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar, overload

import numpy as np

from qa_bot.answer_types import NAMES
from qa_bot.arrays import Ragged, mapped, save_ragged, select_in
from qa_bot.chunking import Chunk
from qa_bot.corpus import Article, key_hash
from qa_bot.entities import Entity
from qa_bot.lexical import WORD, words
from qa_bot.types import ArticleInfo

T = TypeVar("T")
ARTICLE_CACHE = 4096  # articles kept in memory once read (their texts are a few kB each)


class Sentence(NamedTuple):
    """A sentence row: a span of one article's cleaned text."""

    article_id: str
    start: int
    end: int


@dataclass
class Rows:
    """The rows of an index in memory, as built (or migrated) and about to be written."""

    articles: list[Article]
    chunks: list[Chunk]
    sentences: list[Sentence]
    chunk_sentences: list[list[int]]  # per passage, its (consecutive) sentence rows
    entities: list[tuple[Entity, ...]]  # per sentence row
    copies: list[list[int]]  # per passage row
    lines: Mapping[str, int] = field(default_factory=dict)  # see `corpus.Corpus`
    headlines: frozenset[str] = frozenset()
    teasers: frozenset[int] = frozenset()


def write_rows(folder: Path, rows: Rows, vocabulary: Collection[str]) -> list[str]:
    """Write the row files into a version folder; returns the entity labels, by number."""
    article_row = {a.info.id: i for i, a in enumerate(rows.articles)}
    sentences = np.array([(article_row[a], s, e) for a, s, e in rows.sentences],
                         dtype=np.int64).reshape(-1, 3)
    article_sentences: dict[int, list[int]] = {}  # article row -> [first, end) of its sentence rows
    for row, (a, _, _) in enumerate(sentences.tolist()):
        article_sentences.setdefault(a, [row, row])[1] = row + 1
    passages = []
    for chunk, members in zip(rows.chunks, rows.chunk_sentences, strict=True):
        if members != list(range(members[0], members[-1] + 1)):
            raise ValueError(f"the sentences of a passage of {chunk.article_id} are not consecutive")
        passages.append((article_row[chunk.article_id], chunk.start, chunk.end, members[0], members[-1] + 1))
    sentence_passage = np.zeros(len(rows.sentences), dtype=np.int64)
    for passage, members in enumerate(rows.chunk_sentences):
        sentence_passage[members] = passage
    labels = sorted({e.label for entities in rows.entities for e in entities})
    label_number = {label: i for i, label in enumerate(labels)}
    np.save(folder / "sentences.rows.npy", sentences)
    np.save(folder / "passages.rows.npy", np.array(passages, dtype=np.int64).reshape(-1, 5))
    np.save(folder / "sentences.passage.npy", sentence_passage)
    save_ragged(folder / "entities", [[(e.start, e.end, label_number[e.label]) for e in entities]
                                      for entities in rows.entities], width=3)
    save_ragged(folder / "copies", [[(o,) for o in others] for others in rows.copies], width=1)
    with sqlite3.connect(folder / "rows.sqlite3") as db:
        db.executescript("""
            CREATE TABLE articles (row INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, info TEXT NOT NULL,
                                   text TEXT NOT NULL, first_sentence INTEGER, end_sentence INTEGER);
            CREATE TABLE name_words (word TEXT PRIMARY KEY, labels TEXT NOT NULL) WITHOUT ROWID;
            CREATE TABLE known_words (word TEXT PRIMARY KEY) WITHOUT ROWID;
            CREATE TABLE corpus_lines (key TEXT PRIMARY KEY, texts INTEGER NOT NULL) WITHOUT ROWID;
            CREATE TABLE headlines (key TEXT PRIMARY KEY) WITHOUT ROWID;
            CREATE TABLE teasers (key INTEGER PRIMARY KEY);  -- `corpus.key_hash` of the line's key
        """)
        db.executemany("INSERT INTO teasers VALUES (?)", ((h,) for h in sorted(rows.teasers)))
        db.executemany("INSERT INTO corpus_lines VALUES (?, ?)", sorted(rows.lines.items()))
        db.executemany("INSERT INTO headlines VALUES (?)", ((k,) for k in sorted(rows.headlines)))
        db.executemany("INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?)", (
            (i, a.info.id, json.dumps(asdict(a.info), ensure_ascii=False), a.text,
             *article_sentences.get(i, (0, 0)))
            for i, a in enumerate(rows.articles)))
        db.executemany("INSERT INTO name_words VALUES (?, ?)",
                       sorted((w, " ".join(sorted(ls))) for w, ls in _name_words(rows).items()))
        corpus_words = {w for a in rows.articles for w in words(a.text)}
        db.executemany("INSERT INTO known_words VALUES (?)",
                       ((w,) for w in sorted(corpus_words & set(vocabulary))))
    return labels


def _name_words(rows: Rows) -> dict[str, set[str]]:
    """Every word of a name, with its labels when it is capitalised and the corpus never writes it
    in lower case ("latakia": GPE; "embassy": none)."""
    written_lower = {w for a in rows.articles for w in WORD.findall(a.text) if w.islower()}
    texts = {a.info.id: a.text for a in rows.articles}
    found: dict[str, set[str]] = {}
    for (article, start, _), entities in zip(rows.sentences, rows.entities, strict=True):
        for e in entities:
            if e.label not in NAMES:
                continue
            for w in WORD.findall(texts[article][start + e.start: start + e.end]):
                lowered = w.lower().replace("’", "'")
                labels = found.setdefault(lowered, set())
                if w[:1].isupper() and w.lower() not in written_lower:
                    labels.add(e.label)
    return found


class StoredRows:
    """The row files of one version folder, opened for reading; safe to share between threads."""

    def __init__(self, folder: Path, labels: Sequence[str]) -> None:
        self._db = sqlite3.connect(f"file:{folder / 'rows.sqlite3'}?mode=ro", uri=True,
                                   check_same_thread=False)
        self._lock = threading.Lock()
        self._sentences = mapped(folder / "sentences.rows.npy")
        self._passages = mapped(folder / "passages.rows.npy")
        self._sentence_passage = mapped(folder / "sentences.passage.npy")
        self._entities = Ragged(folder / "entities")
        self._copies = Ragged(folder / "copies")
        self._labels = list(labels)
        self.article_count = self._one("SELECT count(*) FROM articles")
        # Indexes written before they were kept cannot take an added file without the others.
        self.keeps_lines = self._one("SELECT count(*) FROM sqlite_master WHERE name = 'teasers'") > 0
        self._article_by_row = lru_cache(maxsize=ARTICLE_CACHE)(self._read_article)
        self._row_of_id = lru_cache(maxsize=ARTICLE_CACHE)(self._read_row_of_id)
        self.articles = ArticleMap(self)
        self.sentences = RowView(len(self._sentences), self.sentence)
        self.chunks = RowView(len(self._passages), self.chunk)
        self.chunk_sentences = RowView(len(self._passages), self.passage_sentences)
        self.sentence_entities = RowView(len(self._entities), self.entities)
        self.copies = RowView(len(self._copies), self.passage_copies)

    def _one(self, sql: str, *args: object) -> int:
        with self._lock:
            return int(self._db.execute(sql, args).fetchone()[0])

    def _read_article(self, row: int) -> tuple[Article, range]:
        with self._lock:
            found = self._db.execute("SELECT info, text, first_sentence, end_sentence FROM articles "
                                     "WHERE row = ?", (row,)).fetchone()
        if found is None:
            raise KeyError(row)
        info, text, first, end = found
        return Article(ArticleInfo(**json.loads(info)), text), range(first, end)

    def _read_row_of_id(self, article_id: str) -> int:
        with self._lock:
            found = self._db.execute("SELECT row FROM articles WHERE id = ?", (article_id,)).fetchone()
        if found is None:
            raise KeyError(article_id)
        return int(found[0])

    def article(self, article_id: str) -> Article:
        """An article by id (KeyError if the index has none)."""
        return self._article_by_row(self._row_of_id(article_id))[0]

    def has_article(self, article_id: str) -> bool:
        """Whether the index holds an article (without reading its text)."""
        try:
            self._row_of_id(article_id)
        except KeyError:
            return False
        return True

    def article_ids(self) -> Iterator[str]:
        """Every article id, in row order."""
        with self._lock:
            found = self._db.execute("SELECT id FROM articles ORDER BY row").fetchall()
        return (str(i) for (i,) in found)

    def article_sentences(self, article_id: str) -> range:
        """The sentence rows of an article (empty when it has none, or is not indexed)."""
        try:
            return self._article_by_row(self._row_of_id(article_id))[1]
        except KeyError:
            return range(0)

    def sentence(self, row: int) -> Sentence:
        """Which article a sentence row is in, and where."""
        article, start, end = self._sentences[row].tolist()
        return Sentence(self._article_by_row(article)[0].info.id, start, end)

    def sentence_article(self, row: int) -> Article:
        """The article a sentence row is in."""
        return self._article_by_row(int(self._sentences[row, 0]))[0]

    def sentence_text(self, row: int) -> str:
        """The verbatim text of a sentence row."""
        article, start, end = self._sentences[row].tolist()
        return self._article_by_row(article)[0].text[start:end]

    def chunk(self, row: int) -> Chunk:
        """A passage row with its text and sentence spans."""
        article_row, start, end, first, last = self._passages[row].tolist()
        article = self._article_by_row(article_row)[0]
        spans = tuple((s, e) for _, s, e in self._sentences[first:last].tolist())
        return Chunk(article.info.id, start, end, article.text[start:end], spans)

    def passage_sentences(self, row: int) -> list[int]:
        """The sentence rows of a passage, in order."""
        _, _, _, first, last = self._passages[row].tolist()
        return list(range(first, last))

    def passage_of_sentence(self, row: int) -> int:
        """The last passage that holds a sentence row."""
        return int(self._sentence_passage[row])

    def entities(self, row: int) -> tuple[Entity, ...]:
        """The entities of a sentence row, offsets into the sentence."""
        return tuple(Entity(s, e, self._labels[label]) for s, e, label in self._entities[row].tolist())

    def passage_copies(self, row: int) -> list[int]:
        """The passages of other articles that repeat a passage row."""
        return [int(o) for o in self._copies[row][:, 0]]

    def name_labels(self, word: str) -> frozenset[str] | None:
        """The labels of a lower-cased word of a name (empty when the corpus also writes it in
        lower case); None when the word is in no name."""
        with self._lock:
            found = self._db.execute("SELECT labels FROM name_words WHERE word = ?", (word,)).fetchone()
        return None if found is None else frozenset(found[0].split())

    def known_words(self) -> list[str]:
        """The corpus's words that the model has a vector for (at most the model's vocabulary)."""
        with self._lock:
            return [w for (w,) in self._db.execute("SELECT word FROM known_words")]

    def line_counts(self, keys: Collection[str]) -> dict[str, int]:
        """How many indexed texts hold each of these short lines (see `corpus.IndexedLines`)."""
        return {str(k): int(n) for k, n in self._lookup("SELECT key, texts FROM corpus_lines", keys)}

    def headlines_among(self, keys: Collection[str]) -> set[str]:
        """Which of these keys are headlines of indexed articles."""
        return {str(k) for (k,) in self._lookup("SELECT key FROM headlines", keys)}

    def teasers_among(self, keys: Collection[str]) -> set[str]:
        """Which of these keys are paragraphs of indexed articles that such a headline removes."""
        hashes = {key_hash(k): k for k in keys}
        return {hashes[int(h)] for (h,) in self._lookup("SELECT key FROM teasers", hashes)}

    def kept_lines(self) -> tuple[dict[str, int], frozenset[str], frozenset[int]]:
        """Every short line with how many texts hold it, every headline and every teaser hash: what
        `corpus.Corpus` says of these articles for cleaning files added later."""
        with self._lock:
            return ({str(k): int(n) for k, n in self._db.execute("SELECT key, texts FROM corpus_lines")},
                    frozenset(str(k) for (k,) in self._db.execute("SELECT key FROM headlines")),
                    frozenset(int(h) for (h,) in self._db.execute("SELECT key FROM teasers")))

    def _lookup(self, select: str, keys: Collection[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            return select_in(self._db, select, "key", keys)

    def prefetch(self, passages: Iterable[int] = (), sentences: Iterable[int] = ()) -> None:
        """Nothing to do: the row files are memory-mapped (see `RowReader.prefetch`)."""

    def close(self) -> None:
        """Close the database (the arrays are unmapped when no longer referenced)."""
        self._db.close()


class StackedRows:
    """A base's rows with an appended tail's after them (see `index.py`): the tail's passage and
    sentence rows are numbered on from the base's (its stored copies already are), and
    `base_copies` adds the tail passages that repeat a base passage to that passage's copies."""

    def __init__(self, base: StoredRows, tail: StoredRows, base_copies: Mapping[int, list[int]]) -> None:
        self.base, self.tail = base, tail
        self._first_tail_passage = len(base.chunks)
        self._first_tail_sentence = len(base.sentences)
        self._base_copies = base_copies
        self.article_count = base.article_count + tail.article_count
        self.keeps_lines = base.keeps_lines and tail.keeps_lines
        self.articles = ArticleMap(self)
        self.sentences = RowView(len(base.sentences) + len(tail.sentences), self.sentence)
        self.chunks = RowView(len(base.chunks) + len(tail.chunks), self.chunk)
        self.chunk_sentences = RowView(len(self.chunks), self.passage_sentences)
        self.sentence_entities = RowView(len(self.sentences), self.entities)
        self.copies = RowView(len(self.chunks), self.passage_copies)

    def _by_sentence(self, row: int) -> tuple[StoredRows, int]:
        first = self._first_tail_sentence
        return (self.base, row) if row < first else (self.tail, row - first)

    def _part_of(self, article_id: str) -> StoredRows:
        return self.tail if self.tail.has_article(article_id) else self.base

    def article(self, article_id: str) -> Article:
        return self._part_of(article_id).article(article_id)

    def has_article(self, article_id: str) -> bool:
        return self.tail.has_article(article_id) or self.base.has_article(article_id)

    def article_ids(self) -> Iterator[str]:
        yield from self.base.article_ids()
        yield from self.tail.article_ids()

    def article_sentences(self, article_id: str) -> range:
        if self.tail.has_article(article_id):
            found = self.tail.article_sentences(article_id)
            return range(found.start + self._first_tail_sentence, found.stop + self._first_tail_sentence)
        return self.base.article_sentences(article_id)

    def sentence(self, row: int) -> Sentence:
        part, local = self._by_sentence(row)
        return part.sentence(local)

    def sentence_article(self, row: int) -> Article:
        part, local = self._by_sentence(row)
        return part.sentence_article(local)

    def sentence_text(self, row: int) -> str:
        part, local = self._by_sentence(row)
        return part.sentence_text(local)

    def entities(self, row: int) -> tuple[Entity, ...]:
        part, local = self._by_sentence(row)
        return part.entities(local)

    def chunk(self, row: int) -> Chunk:
        first = self._first_tail_passage
        return self.base.chunk(row) if row < first else self.tail.chunk(row - first)

    def passage_sentences(self, row: int) -> list[int]:
        first = self._first_tail_passage
        if row < first:
            return self.base.passage_sentences(row)
        return [r + self._first_tail_sentence for r in self.tail.passage_sentences(row - first)]

    def passage_of_sentence(self, row: int) -> int:
        part, local = self._by_sentence(row)
        return part.passage_of_sentence(local) + (0 if part is self.base else self._first_tail_passage)

    def passage_copies(self, row: int) -> list[int]:
        first = self._first_tail_passage
        if row >= first:
            return self.tail.passage_copies(row - first)
        return self.base.passage_copies(row) + list(self._base_copies.get(row, ()))

    def name_labels(self, word: str) -> frozenset[str] | None:
        found = [labels for labels in (self.base.name_labels(word), self.tail.name_labels(word))
                 if labels is not None]
        return frozenset().union(*found) if found else None

    def known_words(self) -> list[str]:
        return sorted(set(self.base.known_words()) | set(self.tail.known_words()))

    def line_counts(self, keys: Collection[str]) -> dict[str, int]:
        counts = self.base.line_counts(keys)
        for key, n in self.tail.line_counts(keys).items():
            counts[key] = counts.get(key, 0) + n
        return counts

    def headlines_among(self, keys: Collection[str]) -> set[str]:
        return self.base.headlines_among(keys) | self.tail.headlines_among(keys)

    def teasers_among(self, keys: Collection[str]) -> set[str]:
        return self.base.teasers_among(keys) | self.tail.teasers_among(keys)

    def prefetch(self, passages: Iterable[int] = (), sentences: Iterable[int] = ()) -> None:
        """Nothing to do: the row files are memory-mapped."""

    def close(self) -> None:
        self.base.close()
        self.tail.close()


class RowReader(Protocol):
    """What the answer layer reads of an index's rows, whichever store holds them (these files,
    or PostgreSQL: `postgres.PgRows`)."""

    @property
    def articles(self) -> Mapping[str, Article]: ...
    @property
    def chunks(self) -> Sequence[Chunk]: ...
    @property
    def sentences(self) -> Sequence[Sentence]: ...
    @property
    def chunk_sentences(self) -> Sequence[list[int]]: ...
    @property
    def sentence_entities(self) -> Sequence[tuple[Entity, ...]]: ...
    @property
    def copies(self) -> Sequence[list[int]]: ...
    def article_sentences(self, article_id: str) -> range: ...
    def sentence_article(self, row: int) -> Article: ...
    def sentence_text(self, row: int) -> str: ...
    def passage_of_sentence(self, row: int) -> int: ...
    def name_labels(self, word: str) -> frozenset[str] | None: ...
    def known_words(self) -> list[str]: ...
    def prefetch(self, passages: Iterable[int] = (), sentences: Iterable[int] = ()) -> None:
        """Read these rows ahead, in a few round trips, where reading one at a time costs one each."""
    def close(self) -> None: ...


class ArticleSource(Protocol):
    """Where an `ArticleMap` reads its articles."""

    @property
    def article_count(self) -> int: ...
    def article(self, article_id: str) -> Article: ...
    def article_ids(self) -> Iterator[str]: ...
    def has_article(self, article_id: str) -> bool: ...


class ArticleMap(Mapping[str, Article]):
    """The articles of an index by id, read when first asked for."""

    def __init__(self, rows: ArticleSource) -> None:
        self._rows = rows

    def __getitem__(self, article_id: str) -> Article:
        return self._rows.article(article_id)

    def __iter__(self) -> Iterator[str]:
        return self._rows.article_ids()

    def __len__(self) -> int:
        return self._rows.article_count

    def __contains__(self, article_id: object) -> bool:
        return self._rows.has_article(str(article_id))


class RowView(Sequence[T]):
    """A read-only sequence whose items are made on demand from stored rows; its length fixed, or
    asked for each time (a store that grows while it is read)."""

    def __init__(self, length: int | Callable[[], int], item: Callable[[int], T]) -> None:
        self._length = length
        self._item = item

    def __len__(self) -> int:
        return self._length if isinstance(self._length, int) else self._length()

    @overload
    def __getitem__(self, row: int) -> T: ...
    @overload
    def __getitem__(self, row: slice) -> list[T]: ...
    def __getitem__(self, row: int | slice) -> T | list[T]:
        length = len(self)
        if isinstance(row, slice):
            return [self._item(r) for r in range(*row.indices(length))]
        if not 0 <= row < length:
            if -length <= row < 0:
                return self._item(row + length)
            raise IndexError(row)
        return self._item(row)
