"""The built index on disk: its versions, its manifest, and building or updating it from a corpus.

Layout of `index_dir`:
    CURRENT                   name of the live version folder (replaced atomically)
    v-<stamp>/manifest.json   what made it: model, dimension, chunker, cleaner, file fingerprints,
                              entity labels and how each vector file is searched
    v-<stamp>/rows.sqlite3, *.rows.npy, entities*.npy, copies*.npy   the rows (see `rows.py`)
    v-<stamp>/passages.npy    one vector per passage row (`.hnsw` beside it for big corpora)
    v-<stamp>/sentences.npy   one vector per sentence row (`.ivf` beside it for big corpora)
    v-<stamp>/bm25/, words.*, sentence_words*   the lexical index and each sentence's words
                              (see `lexical.py`)
    v-<stamp>/tail/           articles appended since (see below), in the same files
Opening a version memory-maps its files. A crash while writing leaves CURRENT pointing at the
previous, complete version.

Appending. When files are only added, the new articles go into a *tail*: the new version links
the previous one's files (nothing is copied or rewritten) and writes a small tail/ folder, holding
the articles appended so far, searched exactly and numbered on from the base's rows. The tail's
words keep the base's numbers, its passages are scored with the base's IDF, and its syndicated
copies are found among the base's passages through their vectors. A file changed or removed, a
tail grown past `TAIL_SHARE` of the base (or `TAIL_MAX` passages), or an added file that changes
how an indexed text is cleaned (see `corpus.load_added`), updates the whole index, which merges
the tail.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qa_bot.chunking import Chunk, chunk_article
from qa_bot.cleaning import CLEANER_VERSION
from qa_bot.config import Settings
from qa_bot.corpus import Article, Corpus, RecleanNeeded, SourceFile, load_added, load_corpus, scan
from qa_bot.encoder import HEADLINE_WEIGHT, Encoder, in_context, leans_to
from qa_bot.entities import Entity, EntityTagger
from qa_bot.errors import IndexStoreError
from qa_bot.lexical import BuiltLexicon, LexicalIndex, Lexicon, StackedLexicon, build_lexicon
from qa_bot.rows import RowReader, Rows, Sentence, StackedRows, StoredRows, write_rows
from qa_bot.syndication import is_copy, syndicated_copies
from qa_bot.types import ArticleInfo
from qa_bot.vectors import SavedVectors, SearchPlan, StackedVectors, VectorStore, write_vectors

FORMAT_VERSION = 5
SENTENCE_CONTEXT = f"headline {HEADLINE_WEIGHT}"  # how sentence vectors lean (`encoder.in_context`)
# An older format that can be brought up to date without re-embedding -> what changed.
MIGRATABLE = {
    2: "syndicated copies and the lexical index are built at index time, and the rows are read on demand",
    3: "the rows are read on demand instead of parsed whole",
    4: "each sentence's words are stored, so questions do not re-tokenise them",
}
CURRENT = "CURRENT"
WRITER_LOCK = ".writer.lock"  # held by the one process writing a version
TAIL = "tail"
ABANDONED_AFTER_S = 3600
# A tail is rebuilt whole on each append: at 1M base passages, adding one article took 2.6 s with
# a small tail, and a tail's lexicon and copies cost 0.9 s at 5,000 passages against 7.4 s at
# 20,000. Past a tenth of the base, the base's IDF would no longer speak for the corpus.
TAIL_SHARE = 0.1
TAIL_MAX = 5_000
COPY_CANDIDATES = 32  # base passages whose text is compared with an appended passage's

Report = Callable[[str], None]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Manifest:
    """What an index was built from and with; any difference but the files means a rebuild."""

    format: int
    model: str
    dim: int
    chunk_sentences: int
    chunk_overlap: int
    cleaner: int
    tagger: str
    files: dict[str, str]  # file name -> fingerprint
    built_at: str
    sentence_context: str = "none"  # how its sentence vectors lean toward their headline
    entity_labels: list[str] = field(default_factory=list)  # entity label numbers in `rows.py`
    search: dict[str, dict[str, Any]] = field(default_factory=dict)  # vector file -> SearchPlan
    stamps: dict[str, list[int]] = field(default_factory=dict)  # file name -> size, mtime (ns)
    # Appended articles: the tail's entity labels, and base passage row -> tail passages repeating it.
    tail: dict[str, Any] = field(default_factory=dict)

    def known_files(self) -> dict[str, tuple[str, tuple[int, int]]]:
        """File name -> its fingerprint and the size and time it had then (for `corpus.scan`)."""
        return {name: (fingerprint, (self.stamps[name][0], self.stamps[name][1]))
                for name, fingerprint in self.files.items() if len(self.stamps.get(name, ())) == 2}

    def recipe(self) -> tuple[int, str, int, int, int, int, str, str]:
        """Everything but the corpus: if this differs, nothing stored can be reused."""
        return (self.format, self.model, self.dim, self.chunk_sentences, self.chunk_overlap,
                self.cleaner, self.tagger, self.sentence_context)


@dataclass
class Index:
    """An opened index: its rows read on demand, its vectors memory-mapped."""

    manifest: Manifest
    rows: RowReader
    passage_vectors: VectorStore
    sentence_vectors: VectorStore
    lexicon: LexicalIndex  # BM25 over the passages, each term's IDF, each sentence's words
    base: Index | None = None  # with appended articles, the two parts, each numbered from 0
    tail: Index | None = None
    folder: Path | None = None  # the version folder it was opened from
    # What one question reads is read from one state of the store: files never change under a
    # reader; a database reads in one snapshot (see `postgres.py`).
    reading: Callable[[], AbstractContextManager[object]] = nullcontext

    @property
    def articles(self) -> Mapping[str, Article]:
        """Articles by id."""
        return self.rows.articles

    @property
    def chunks(self) -> Sequence[Chunk]:
        """Passages by row."""
        return self.rows.chunks

    @property
    def sentences(self) -> Sequence[Sentence]:
        """Sentences by row (the row of their vector)."""
        return self.rows.sentences

    @property
    def chunk_sentences(self) -> Sequence[list[int]]:
        """Per passage row, its sentence rows."""
        return self.rows.chunk_sentences

    @property
    def sentence_entities(self) -> Sequence[tuple[Entity, ...]]:
        """Per sentence row, its entities (offsets into the sentence)."""
        return self.rows.sentence_entities

    @property
    def copies(self) -> Sequence[list[int]]:
        """Per passage row, the passages of other articles that repeat it."""
        return self.rows.copies

    def sentence_text(self, row: int) -> str:
        """The verbatim text of a sentence row."""
        return self.rows.sentence_text(row)

    def sentence_article(self, row: int) -> Article:
        """The article a sentence row is in."""
        return self.rows.sentence_article(row)


@dataclass
class Built:
    """An index in memory, as built or migrated, before it is written."""

    manifest: Manifest
    rows: Rows
    passage_vectors: np.ndarray
    sentence_vectors: np.ndarray
    lexicon: BuiltLexicon
    base_copies: dict[int, list[int]] = field(default_factory=dict)  # a tail's, see Manifest.tail


@dataclass(frozen=True)
class IndexUpdate:
    """What `open_index` did, for the front ends to tell the user."""

    action: str  # "loaded", "built", "updated", "appended"
    embedded: int  # texts sent through the model
    reused: int  # texts whose stored vectors were kept
    skipped: tuple[str, ...]  # "file: reason" for corpus files left out
    untagged: int = 0  # sentences the entity tagger could not read (indexed without entities)
    migrated_from: int | None = None  # the format an older index was brought up from


def open_index(
    settings: Settings, encoder: Encoder, report: Report = lambda _: None,
    progress: Progress | None = None, force: bool = False, tagger: EntityTagger | None = None,
) -> tuple[Index, IndexUpdate]:
    """Load the index, first building or updating it if it is missing, stale or unreadable. One
    process at a time writes: another waits for it, then finds the index as it left it."""
    tagger = tagger or EntityTagger()
    if not force and (current := _current_index(settings, encoder, tagger)) is not None:
        return current
    with _writing(settings.index_dir, report):
        return _update_index(settings, encoder, report, progress, force, tagger)


def _current_index(settings: Settings, encoder: Encoder,
                   tagger: EntityTagger) -> tuple[Index, IndexUpdate] | None:
    """The index when it is up to date, found without writing it or saying anything; else None."""
    try:
        index = load_index(settings.index_dir)
    except (FileNotFoundError, IndexStoreError):
        return None
    files = scan(settings.corpus_dir, index.manifest.known_files())
    current = _if_current(index, _manifest(settings, encoder, tagger, files), settings.index_dir)
    if current is None:
        index.rows.close()
        index.lexicon.close()
    return current


def _if_current(index: Index, expected: Manifest, index_dir: Path,
                migrated_from: int | None = None) -> tuple[Index, IndexUpdate] | None:
    """The index as loaded when it was built from the files and with the recipe `expected` holds
    (their sizes and times recorded if they were touched); else None."""
    if index.manifest.recipe() != expected.recipe() or index.manifest.files != expected.files:
        return None
    if index.manifest.stamps != expected.stamps:
        _restamp(index_dir, expected.stamps)
    return index, IndexUpdate("loaded", 0, 0, (), migrated_from=migrated_from)


@contextmanager
def _writing(index_dir: Path, report: Report) -> Iterator[None]:
    """Hold the index folder's writer lock, waiting while another process holds it. Where no lock
    file can be made (a read-only folder), go on without: writing will then say what is wrong."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        lock = (index_dir / WRITER_LOCK).open("a")
    except OSError:
        lock = None
    if lock is None:
        yield
        return
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            report(f"Another qa-bot is writing the index in {index_dir}: waiting for it to finish.")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file lets the lock go


def _update_index(
    settings: Settings, encoder: Encoder, report: Report, progress: Progress | None, force: bool,
    tagger: EntityTagger,
) -> tuple[Index, IndexUpdate]:
    """`open_index` holding the writer lock: migrate, append, update or build, saying which and why."""
    vocabulary = encoder.word_vectors()[0].keys()
    previous: Index | None = None
    migrated_from = None
    try:
        migrated_from = migrate_index(settings.index_dir, vocabulary)
        if migrated_from is not None:
            report(f"The index was migrated from format {migrated_from} "
                   f"({MIGRATABLE[migrated_from]}); nothing was re-embedded.")
        previous = load_index(settings.index_dir)
    except FileNotFoundError:
        report(f"No index in {settings.index_dir} yet: building it from {settings.corpus_dir}.")
    except IndexStoreError as e:
        report(f"The index in {settings.index_dir} is unusable ({e.message}): rebuilding it.")
    files = scan(settings.corpus_dir, previous.manifest.known_files() if previous is not None else None)
    expected = _manifest(settings, encoder, tagger, files)
    if previous is not None and not force:
        if (current := _if_current(previous, expected, settings.index_dir, migrated_from)) is not None:
            return current  # only migrated, or brought up to date by the process this one waited for
        if previous.manifest.recipe() != expected.recipe():
            report("The index was built with other settings or another model: rebuilding it.")
            previous = None
        else:
            report(_describe_changes(previous.manifest.files, expected.files))
            if all(expected.files.get(name) == fingerprint
                   for name, fingerprint in previous.manifest.files.items()):
                added = [f for f in files if f.name not in previous.manifest.files]
                appended = append_files(settings, encoder, tagger, previous, expected, added, vocabulary,
                                        progress, report)
                if appended is not None:
                    return appended
    corpus = load_corpus(settings.corpus_dir)
    for skipped in corpus.skipped:
        report(f"warning: skipped {skipped.name}: {skipped.reason}")
    built, embedded, reused, untagged = build_index(corpus, encoder, tagger, settings, expected,
                                                    previous, progress, report)
    save_index(built, settings.index_dir, vocabulary)
    index = load_index(settings.index_dir)
    action = "updated" if previous is not None else "built"
    report(f"Index {action}: {len(index.articles)} articles, {len(index.chunks)} passages "
           f"({embedded} texts embedded, {reused} reused).")
    if untagged:
        report(f"warning: {untagged} sentences could not be tagged for names, dates and amounts; "
               "they are indexed and searchable, without those tags.")
    update = IndexUpdate(action, embedded, reused,
                         tuple(f"{s.name}: {s.reason}" for s in corpus.skipped), untagged)
    return index, update


def build_index(
    corpus: Corpus, encoder: Encoder, tagger: EntityTagger, settings: Settings, manifest: Manifest,
    previous: Index | None = None, progress: Progress | None = None, report: Report = lambda _: None,
    base: Index | None = None,
) -> tuple[Built, int, int, int]:
    """Chunk, embed and tag a corpus, reusing what the previous index had for the same texts;
    with a `base`, as the tail appended to it (`previous` is then the previous tail).

    Returns the index, the texts embedded, the texts reused and the sentences left untagged."""
    articles = {a.info.id: a for a in corpus.articles}
    chunks = [
        chunk
        for article in corpus.articles
        for chunk in chunk_article(article.info.id, article.text,
                                   settings.chunk_sentences, settings.chunk_overlap)
    ]
    sentence_rows: dict[Sentence, int] = {}
    chunk_sentences = [
        [sentence_rows.setdefault(Sentence(c.article_id, s, e), len(sentence_rows))
         for s, e in c.sentences]
        for c in chunks
    ]
    sentences = list(sentence_rows)
    passage_texts = [c.text for c in chunks]
    sentence_texts = [articles[a].text[s:e] for a, s, e in sentences]
    headlines = [leans_to(articles[a].info.title, t)
                 for (a, _, _), t in zip(sentences, sentence_texts, strict=True)]
    sentence_keys = [_sentence_key(h, t) for h, t in zip(headlines, sentence_texts, strict=True)]

    known = _known_vectors(previous)
    needed = {_text_key(t) for t in passage_texts} | set(sentence_keys)
    reused = len(needed & known.keys())
    # A sentence vector not known yet is made from the vectors of its text and its headline.
    to_lean = [i for i, key in enumerate(sentence_keys) if key not in known]
    missing = sorted({t for t in passage_texts if _text_key(t) not in known}
                     | {t for i in to_lean for t in (sentence_texts[i], headlines[i])
                        if t is not None and _text_key(t) not in known})
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, len(missing))

    known_entities = _known_entities(previous)
    untagged_texts = sorted({t for t in sentence_texts if _text_key(t) not in known_entities})
    if missing:
        encoder.prepare_bulk(report)
    if progress is not None:
        progress(0, len(missing))
    # Longest first, so each batch pads to texts of about its own length.
    missing.sort(key=len, reverse=True)
    with ThreadPoolExecutor(max_workers=1) as background:
        # Tagging runs while the model embeds (both release the GIL for their numeric work).
        tagging = background.submit(tagger.tag, untagged_texts) if untagged_texts else None
        fresh = encoder.encode(missing, settings.batch_size, advance) if missing else None
        tags, untagged = tagging.result() if tagging is not None else ([], 0)
    if fresh is not None:
        known.update({_text_key(t): (fresh, row) for row, t in enumerate(missing)})
    known_entities.update({_text_key(t): e for t, e in zip(untagged_texts, tags, strict=True)})

    def vectors_of(keys: list[str]) -> np.ndarray:
        """The vectors of these keys, each read once from where it is (no copy per key)."""
        out = np.zeros((len(keys), manifest.dim), dtype=np.float32)
        wanted: dict[int, tuple[VectorStore | np.ndarray, list[tuple[int, int]]]] = {}
        for i, key in enumerate(keys):
            source, row = known[key]
            wanted.setdefault(id(source), (source, []))[1].append((row, i))
        for source, pairs in wanted.values():
            pairs.sort()
            rows, at = [r for r, _ in pairs], [i for _, i in pairs]
            out[at] = source[rows] if isinstance(source, np.ndarray) else source.vectors_of(rows)
        return out

    if to_lean:
        plain = vectors_of([_text_key(sentence_texts[i]) for i in to_lean])
        leaning = [i for i in to_lean if headlines[i] is not None]
        headline_rows = dict(zip(leaning, vectors_of([_text_key(str(headlines[i])) for i in leaning]),
                                 strict=True))
        leaned = in_context(plain, [headline_rows.get(i) for i in to_lean])
        known.update({sentence_keys[i]: (leaned, row) for row, i in enumerate(to_lean)})
    passage_vectors = vectors_of([_text_key(t) for t in passage_texts])
    copies = syndicated_copies([(c.article_id, c.text) for c in chunks])
    base_copies: dict[int, list[int]] = {}
    if base is not None:
        copies, base_copies = _with_base_copies(base, previous, chunks, passage_vectors, copies)
    rows = Rows(list(corpus.articles), chunks, sentences, chunk_sentences,
                [known_entities[_text_key(t)] for t in sentence_texts], copies,
                corpus.lines, corpus.headlines, corpus.teasers)
    built = Built(manifest, rows, passage_vectors, vectors_of(sentence_keys),
                  build_lexicon(passage_texts, sentence_texts, _lexicon_file(base) if base else None),
                  base_copies)
    return built, len(missing), reused, untagged


def _with_base_copies(
    base: Index, previous_tail: Index | None, chunks: list[Chunk], vectors: np.ndarray,
    copies: list[list[int]],
) -> tuple[list[list[int]], dict[int, list[int]]]:
    """A tail's copies numbered on from the base's rows, with the base passages each repeats
    (found among a passage's nearest by vector, judged by the shingles), and per base passage
    the tail passages that repeat it."""
    first = len(base.chunks)
    known: dict[str, list[int]] = {}  # the previous tail's findings: the base has not changed
    if previous_tail is not None:
        known = {_text_key(c.text): [o for o in found if o < first]
                 for c, found in zip(previous_tail.chunks, previous_tail.copies, strict=True)}
    numbered = []
    base_copies: dict[int, list[int]] = {}
    for row, (chunk, vector, found) in enumerate(zip(chunks, vectors, copies, strict=True)):
        in_base = known.get(_text_key(chunk.text))
        if in_base is None:
            _, nearest = base.passage_vectors.search(vector, COPY_CANDIDATES)
            in_base = sorted(o for o in nearest.tolist() if base.chunks[o].article_id != chunk.article_id
                             and is_copy(base.chunks[o].text, chunk.text))
        for o in in_base:
            base_copies.setdefault(o, []).append(first + row)
        numbered.append(in_base + [first + o for o in found])
    return numbered, base_copies


def append_files(
    settings: Settings, encoder: Encoder, tagger: EntityTagger, previous: Index, expected: Manifest,
    added_files: Sequence[SourceFile], vocabulary: Collection[str], progress: Progress | None = None,
    report: Report = lambda _: None,
) -> tuple[Index, IndexUpdate] | None:
    """Index files added to the corpus as (or into) the tail, `expected` being the manifest of the
    whole corpus; None when the whole index must be updated instead (see the module's docstring)."""
    rows = previous.rows
    assert isinstance(rows, StoredRows | StackedRows)  # appending is for an index of files
    if not rows.keeps_lines:
        report("The index was written before appending was possible: updating it whole, once.")
        return None
    base = previous.base or previous
    try:
        added = load_added(added_files, rows)
    except RecleanNeeded as e:
        report(f"Updating the whole index: {e}, so the indexed texts are cleaned again.")
        return None
    kept = list(previous.tail.articles.values()) if previous.tail is not None else []
    passages = (len(previous.tail.chunks) if previous.tail is not None else 0) + sum(
        len(chunk_article(a.info.id, a.text, settings.chunk_sentences, settings.chunk_overlap))
        for a in added.articles)
    if passages > min(TAIL_SHARE * len(base.chunks), TAIL_MAX):
        report(f"The appended articles would hold {passages} passages, more than the index keeps "
               "beside its own: merging them into it.")
        return None
    for skipped in added.skipped:
        report(f"warning: skipped {skipped.name}: {skipped.reason}")
    lines, headlines, teasers = Counter(added.lines), added.headlines, added.teasers
    if previous.tail is not None and isinstance(previous.tail.rows, StoredRows):  # a tail is one folder
        kept_lines, kept_headlines, kept_teasers = previous.tail.rows.kept_lines()
        lines += Counter(kept_lines)
        headlines, teasers = headlines | kept_headlines, teasers | kept_teasers
    tail, embedded, reused, untagged = build_index(
        Corpus(tuple(kept) + added.articles, added.skipped, lines, headlines, teasers), encoder, tagger,
        settings, expected, previous.tail, progress, report, base=base)
    _save_tail(tail, previous, expected, settings.index_dir, vocabulary)
    index = load_index(settings.index_dir)
    report(f"Index updated: {len(added.articles)} articles appended beside the {len(previous.articles)} "
           f"indexed, which were left as they were ({embedded} texts embedded).")
    return index, IndexUpdate("appended", embedded, reused,
                              tuple(f"{s.name}: {s.reason}" for s in added.skipped), untagged)


def _save_tail(tail: Built, previous: Index, expected: Manifest, index_dir: Path,
               vocabulary: Collection[str]) -> None:
    """A new version: the previous one's files linked, and the tail written anew beside them."""
    # The folder the tail was built against, even if another writer has switched CURRENT since
    # (its files stay readable: they are linked, or this fails with the old index still live).
    source = previous.folder or _live_folder(index_dir)

    def write(folder: Path) -> None:
        _link_tree(source, folder, leave_out={"manifest.json", TAIL})
        (folder / TAIL).mkdir()
        labels = write_rows(folder / TAIL, tail.rows, vocabulary)
        for name, vectors in (("passages", tail.passage_vectors), ("sentences", tail.sentence_vectors)):
            write_vectors(folder / TAIL / name, vectors, SearchPlan("exact"))
        tail.lexicon.save(folder / TAIL)
        appended = {"entity_labels": labels,
                    "base_copies": {str(k): v for k, v in sorted(tail.base_copies.items())}}
        manifest = replace(previous.manifest, files=expected.files, stamps=expected.stamps,
                           built_at=expected.built_at, tail=appended)
        _write_json(folder / "manifest.json", asdict(manifest))

    _write_version(index_dir, write)


def _link_tree(source: Path, target: Path, leave_out: Collection[str] = ()) -> None:
    for entry in source.iterdir():
        if entry.name in leave_out:
            continue
        if entry.is_dir():
            (target / entry.name).mkdir()
            _link_tree(entry, target / entry.name)
        else:
            _link_or_copy(entry, target / entry.name)


def save_index(built: Built, index_dir: Path, vocabulary: Collection[str]) -> None:
    """Write a new version folder, then switch CURRENT to it in one atomic rename."""

    def write(folder: Path) -> None:
        labels = write_rows(folder, built.rows, vocabulary)
        plans = {}
        for name, vectors in (("passages", built.passage_vectors), ("sentences", built.sentence_vectors)):
            plan = SearchPlan.for_rows(len(vectors), repeated=name == "sentences")
            plans[name] = write_vectors(folder / name, vectors, plan).to_json()
        built.lexicon.save(folder)
        _write_json(folder / "manifest.json",
                    asdict(replace(built.manifest, entity_labels=labels, search=plans)))

    _write_version(index_dir, write)


def _write_version(index_dir: Path, write: Callable[[Path], None]) -> None:
    try:
        _switch_version(index_dir, write)
    except OSError as e:
        raise IndexStoreError(
            f"cannot write the index to {index_dir}: {e.strerror or e}",
            hint=f"make {index_dir} writable (in Docker: by UID 1000, or run with --user), "
                 "or pass --index-dir DIR",
        ) from e


def _switch_version(index_dir: Path, write: Callable[[Path], None]) -> None:
    index_dir.mkdir(parents=True, exist_ok=True)
    version = f"v-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    try:
        previous: str | None = (index_dir / CURRENT).read_text().strip()
    except OSError:
        previous = None
    folder = index_dir / version
    folder.mkdir()
    try:
        write(folder)
        _fsync_dir(folder)
        pointer = index_dir / f".{CURRENT}.{os.getpid()}.tmp"
        pointer.write_text(version + "\n")
        os.replace(pointer, index_dir / CURRENT)
        _fsync_dir(index_dir)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if previous and previous != version:
        shutil.rmtree(index_dir / previous, ignore_errors=True)
    _remove_abandoned(index_dir, keep=version)


def _remove_abandoned(index_dir: Path, keep: str) -> None:
    """Version folders left by crashed writers; young ones may belong to a writer still at work."""
    for folder in index_dir.glob("v-*"):
        if folder.name != keep and time.time() - folder.stat().st_mtime > ABANDONED_AFTER_S:
            shutil.rmtree(folder, ignore_errors=True)


def _live_folder(index_dir: Path) -> Path:
    try:
        return index_dir / (index_dir / CURRENT).read_text().strip()
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as e:
        raise IndexStoreError(f"cannot read {index_dir / CURRENT}: {e}") from None


def load_index(index_dir: Path) -> Index:
    """Open the live version; FileNotFoundError if there is none, IndexStoreError if corrupt."""
    folder = _live_folder(index_dir)
    try:
        fields = json.loads((folder / "manifest.json").read_text())
        if fields.get("format") != FORMAT_VERSION:
            raise IndexStoreError(f"it was written by another version of qa-bot (format "
                                  f"{fields.get('format')}, this one reads {FORMAT_VERSION})",
                                  hint="run `qa-bot index`")
        manifest = Manifest(**fields)
        rows = StoredRows(folder, manifest.entity_labels)
        index = Index(
            manifest, rows,
            SavedVectors.open(folder / "passages", SearchPlan(**manifest.search["passages"])),
            SavedVectors.open(folder / "sentences", SearchPlan(**manifest.search["sentences"])),
            Lexicon(folder))
        if manifest.tail:
            index = _with_tail(index, rows, folder / TAIL)
        index.folder = folder
    except (OSError, ValueError, TypeError, KeyError, RuntimeError, sqlite3.Error) as e:
        raise IndexStoreError(f"{folder.name} is damaged ({type(e).__name__}: {e})",
                              hint="run `qa-bot index --rebuild`") from None
    _check_consistent(index)
    return index


def _with_tail(base: Index, base_rows: StoredRows, folder: Path) -> Index:
    """The base and the tail appended to it, opened as one index."""
    manifest = base.manifest
    tail_rows = StoredRows(folder, manifest.tail["entity_labels"])
    tail = Index(manifest, tail_rows, SavedVectors.open(folder / "passages", SearchPlan("exact")),
                 SavedVectors.open(folder / "sentences", SearchPlan("exact")), Lexicon(folder))
    base_copies = {int(row): [int(o) for o in found] for row, found in manifest.tail["base_copies"].items()}
    return Index(manifest, StackedRows(base_rows, tail_rows, base_copies),
                 StackedVectors(base.passage_vectors, tail.passage_vectors),
                 StackedVectors(base.sentence_vectors, tail.sentence_vectors),
                 StackedLexicon(_lexicon_file(base), _lexicon_file(tail)), base=base, tail=tail)


def _lexicon_file(index: Index) -> Lexicon:
    assert isinstance(index.lexicon, Lexicon)  # an index of files has its lexicon in files
    return index.lexicon


def migrate_index(index_dir: Path, vocabulary: Collection[str]) -> int | None:
    """Bring an index of an older format up to date in place, without re-embedding; returns the
    format it was in, or None when it needed nothing."""
    folder = _live_folder(index_dir)
    try:
        fields = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise IndexStoreError(f"{folder.name} is damaged ({type(e).__name__}: {e})") from None
    old = fields.get("format")
    if old not in MIGRATABLE:
        return None
    try:
        manifest = Manifest(**fields | {"format": FORMAT_VERSION})
        if old == 4:
            lexicon = _lexicon_of(StoredRows(folder, manifest.entity_labels))
        else:
            store = json.loads((folder / "store.json").read_text())
            built = _built_from_json(manifest, store, _faiss_vectors(folder / "passages.faiss"),
                                     _faiss_vectors(folder / "sentences.faiss"))
    except (OSError, ValueError, TypeError, KeyError, RuntimeError, sqlite3.Error) as e:
        raise IndexStoreError(f"{folder.name} is damaged ({type(e).__name__}: {e})",
                              hint="run `qa-bot index --rebuild`") from None
    if old != 4:
        save_index(built, index_dir, vocabulary)
        return int(old)

    def write(new: Path) -> None:
        # The rows and vectors stay as they are (linked, not copied); the lexicon (bm25/ and
        # idf.json in format 4) is new.
        for old_file in folder.iterdir():
            if old_file.is_file() and old_file.name not in ("manifest.json", "idf.json"):
                _link_or_copy(old_file, new / old_file.name)
        lexicon.save(new)
        _write_json(new / "manifest.json", asdict(manifest))

    _write_version(index_dir, write)
    return 4


def _restamp(index_dir: Path, stamps: dict[str, list[int]]) -> None:
    """Record the files' sizes and times in the live manifest (files touched, or an index written
    before stamps were kept), so the next start need not read them. Best effort: replaced whole."""
    manifest = _live_folder(index_dir) / "manifest.json"
    try:
        fields = json.loads(manifest.read_text())
        partial = manifest.with_name(f".manifest.{os.getpid()}.tmp")
        _write_json(partial, fields | {"stamps": stamps})
        os.replace(partial, manifest)
    except (OSError, ValueError):
        pass


def _lexicon_of(rows: StoredRows) -> BuiltLexicon:
    try:
        return build_lexicon([c.text for c in rows.chunks],
                             [rows.sentence_text(r) for r in range(len(rows.sentences))])
    finally:
        rows.close()


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _faiss_vectors(path: Path) -> np.ndarray:
    index = faiss.read_index(str(path))
    return index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)


def _manifest(settings: Settings, encoder: Encoder, tagger: EntityTagger,
              files: tuple[SourceFile, ...]) -> Manifest:
    return Manifest(
        format=FORMAT_VERSION, model=encoder.name, dim=encoder.dim,
        chunk_sentences=settings.chunk_sentences, chunk_overlap=settings.chunk_overlap,
        cleaner=CLEANER_VERSION, tagger=tagger.name, sentence_context=SENTENCE_CONTEXT,
        files={f.name: f.fingerprint for f in files},
        stamps={f.name: list(f.stamp) for f in files},
        built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def _describe_changes(old: dict[str, str], new: dict[str, str]) -> str:
    added = sorted(new.keys() - old.keys())
    removed = sorted(old.keys() - new.keys())
    changed = sorted(k for k in new.keys() & old.keys() if new[k] != old[k])
    parts = [f"{label} {', '.join(names)}" for label, names in
             (("added", added), ("changed", changed), ("removed", removed)) if names]
    return f"The corpus changed ({'; '.join(parts)}): updating the index."


def _text_key(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _sentence_key(headline: str | None, text: str) -> str:
    """The key of a sentence's vector: its text's, or, leaned toward a headline, both texts'."""
    return _text_key(text) if headline is None else _text_key(f"{headline}\0{text}")


def _known_vectors(index: Index | None) -> dict[str, tuple[VectorStore | np.ndarray, int]]:
    """Where the previous index keeps the vector of each of its texts (store and row)."""
    if index is None:
        return {}
    known: dict[str, tuple[VectorStore | np.ndarray, int]] = {}
    known.update({_text_key(c.text): (index.passage_vectors, row) for row, c in enumerate(index.chunks)})
    for row in range(len(index.sentences)):
        _, start, end = index.sentences[row]
        article = index.sentence_article(row)
        text = article.text[start:end]
        known[_sentence_key(leans_to(article.info.title, text), text)] = (index.sentence_vectors, row)
    return known


def _known_entities(index: Index | None) -> dict[str, tuple[Entity, ...]]:
    if index is None:
        return {}
    return {_text_key(index.sentence_text(r)): entities
            for r, entities in enumerate(index.sentence_entities)}


def _built_from_json(
    manifest: Manifest, store: dict[str, Any], passage_vectors: np.ndarray,
    sentence_vectors: np.ndarray,
) -> Built:
    """An index of format 2 or 3 (one JSON document), read whole to be written anew."""
    articles = {}
    for record in store["articles"]:
        text = record.pop("text")
        articles[record["id"]] = Article(ArticleInfo(**record), text)
    sentences = [Sentence(str(a), int(s), int(e)) for a, s, e in store["sentences"]]
    chunks, chunk_sentences = [], []
    for p in store["passages"]:
        text = articles[p["article"]].text
        members = [int(r) for r in p["sentences"]]
        spans = tuple((sentences[r].start, sentences[r].end) for r in members)
        chunks.append(Chunk(p["article"], p["start"], p["end"], text[p["start"]: p["end"]], spans))
        chunk_sentences.append(members)
    entities = [tuple(Entity(int(s), int(e), str(label)) for s, e, label in row)
                for row in store["entities"]]
    # Format 2 has neither: they are worked out from its passages.
    copies = [[int(o) for o in others] for others in store["copies"]] if "copies" in store \
        else syndicated_copies([(c.article_id, c.text) for c in chunks])
    rows = Rows(list(articles.values()), chunks, sentences, chunk_sentences, entities, copies)
    return Built(manifest, rows, passage_vectors, sentence_vectors,
                 build_lexicon([c.text for c in chunks], [articles[a].text[s:e] for a, s, e in sentences]))


def _check_consistent(index: Index) -> None:
    problems = []
    if len(index.passage_vectors) != len(index.chunks):
        problems.append(f"{len(index.passage_vectors)} passage vectors for {len(index.chunks)} passages")
    if len(index.copies) != len(index.chunks):
        problems.append(f"syndicated copies for {len(index.copies)} of {len(index.chunks)} passages")
    if len(index.sentence_entities) != len(index.sentences):
        problems.append(f"entities for {len(index.sentence_entities)} of {len(index.sentences)} sentences")
    if len(index.sentence_vectors) != len(index.sentences):
        problems.append(f"{len(index.sentence_vectors)} sentence vectors for "
                        f"{len(index.sentences)} sentences")
    for store in (index.passage_vectors, index.sentence_vectors):
        if store.dim != index.manifest.dim:
            problems.append(f"vectors of dimension {store.dim}, manifest says {index.manifest.dim}")
    if problems:
        raise IndexStoreError(f"inconsistent index: {'; '.join(problems)}",
                              hint="run `qa-bot index --rebuild`")


def _write_json(path: Path, data: Any) -> None:
    with path.open("w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    """Flush a folder's files and its entries, so a power cut cannot leave CURRENT ahead of them."""
    for child in path.iterdir():
        if child.is_dir():
            _fsync_dir(child)
        elif child.is_file():
            with child.open("rb+") as f:
                os.fsync(f.fileno())
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
