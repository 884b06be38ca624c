"""PostgreSQL with pgvector as the shared store: one writer (`qa-bot index`), any number of readers.

The same rows as the index of files (see `rows.py`), numbered the same way, in tables:
    qa_meta            the schema version and the manifest (model, dimension, chunker, cleaner, tagger)
    qa_files           each corpus file's fingerprint, written when an ingest has finished
    qa_articles        an article: id, digest of what was indexed, metadata, cleaned text, rows
    qa_passages        a passage: article, offsets, sentence rows, BM25 length, vector (HNSW, cosine)
    qa_sentences       a sentence: article, offsets, passage, entities, word and term numbers, vector
    qa_copies          pairs of passages of different articles that repeat each other
    qa_tokens, qa_passage_tokens   BM25's inverted index: token -> (passage, count, impact)
    qa_terms, qa_words, qa_names   terms and words with their numbers; the words of names
    qa_counts          running totals (articles, passages, BM25 tokens) and the next free row numbers
Rows are never updated: a changed article is deleted and inserted anew, with new row numbers, in
one transaction, so a reader sees the old article or the new one, and may cache a row for good.
The document frequencies an article adds it takes back when it is deleted, so BM25 is scored at
question time with the corpus's current statistics, as bm25s scores the file index. What words
are (written in lower case, in a name, known to the model) is only ever added to: a word of a
deleted article still counts until `qa-bot index --rebuild`.

A question reads in one REPEATABLE READ, read-only transaction (`Index.reading`), so an ingest
committing meanwhile is not half seen. Writers take an advisory lock: a second ingest waits.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb

from qa_bot.answer_types import NAMES
from qa_bot.chunking import Chunk, chunk_article
from qa_bot.config import Settings
from qa_bot.corpus import Article, load_corpus, scan
from qa_bot.encoder import Encoder, in_context, leans_to
from qa_bot.entities import Entity, EntityTagger
from qa_bot.errors import IndexStoreError, StoreUnavailable
from qa_bot.index import FORMAT_VERSION, Index, IndexUpdate, Manifest, Progress, Report, _manifest
from qa_bot.lexical import FUNCTION_WORDS, STEMMER, WORD, question_tokens, terms, words
from qa_bot.rows import ArticleMap, RowView, Sentence
from qa_bot.syndication import is_copy
from qa_bot.types import ArticleInfo
from qa_bot.vectors import SearchPlan, best_first, scores_of

SCHEMA_VERSION = 1
WRITER_LOCK = 7_151_620_433  # pg_advisory_lock key held by the one ingest at work
K1, B = 1.5, 0.75  # bm25s's defaults, so both stores score passages alike
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 64  # pgvector's defaults
EF_SEARCH = 120  # candidates HNSW keeps while searching (pgvector: 40): recall@10 0.977 at 1M passages
# A token's passages read per question, those it weighs most in first: all of them in a corpus of
# up to a few thousand passages; in a large one a common token's long tail (which weighs least)
# is left out, as impact-ordered indexes do.
POSTINGS_PER_TOKEN = 2000
RERANK = 2  # candidates read per result and re-scored exactly, as `vectors.SavedVectors` scores
COPY_CANDIDATES = 32  # nearest passages of other articles checked for a syndicated copy
# ...of those, the ones this close: copies found by shingles in the test corpora (38 pairs in 4
# corpora) are at cosine 0.79 or more; other passages of a story mostly well under 0.6.
COPY_MIN_COSINE = 0.6
INGEST_BATCH = 16  # articles embedded together, then written in one transaction while the next are
ARTICLE_CACHE = 4096  # articles kept in memory with their rows (rows never change)
RETRY_S = (0.5, 1.0, 2.0, 4.0)  # waits between tries to reach the database again



@dataclass(frozen=True)
class Database:
    """Where the shared store is: a PostgreSQL URL, and a password kept out of it (and of logs)."""

    url: str
    password: str | None = None

    @classmethod
    def of(cls, settings: Settings) -> Database:
        """The database `settings.database_url` names, with the password from its file if any."""
        password = None
        if settings.database_password_file:
            try:
                password = Path(settings.database_password_file).read_text().strip()
            except OSError as e:
                raise IndexStoreError(f"cannot read the database password file "
                                      f"{settings.database_password_file}: {e.strerror or e}",
                                      hint="fix QA_BOT_DATABASE_PASSWORD_FILE") from None
        return cls(settings.database_url, password)

    @property
    def shown(self) -> str:
        """The URL without its password, for messages."""
        parts = urlsplit(self.url)
        if not parts.password:
            return self.url
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))

    def _scrubbed(self, error: Exception) -> str:
        """An error's message with no password in it (a malformed URL may be quoted whole)."""
        reason = _reason(error)
        for secret in (urlsplit(self.url).password, self.password):
            if secret:
                reason = reason.replace(secret, "***")
        return reason

    def connect(self, vectors: bool = True) -> psycopg.Connection[Any]:
        """A connection in autocommit mode; with `vectors`, one that reads pgvector's type."""
        try:
            extra: dict[str, Any] = {"password": self.password} if self.password else {}
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5, **extra)
        except psycopg.Error as e:
            raise StoreUnavailable(f"the archive at {self.shown} is unreachable ({self._scrubbed(e)})",
                                   hint="check that the database is up and QA_BOT_DATABASE_URL") from None
        if not vectors:
            return conn
        try:
            register_vector(conn)
        except psycopg.ProgrammingError:
            conn.close()
            raise IndexStoreError(f"the database at {self.shown} has no qa-bot store yet",
                                  hint="run `qa-bot index` with the writer role") from None
        return conn


def _reason(e: Exception) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__


# --- schema -------------------------------------------------------------------------------------

def _schema(dim: int) -> str:
    return f"""
    CREATE TABLE qa_meta (key text PRIMARY KEY, value jsonb NOT NULL);
    CREATE TABLE qa_files (name text PRIMARY KEY, fingerprint text NOT NULL);
    CREATE TABLE qa_counts (key text PRIMARY KEY, value bigint NOT NULL);
    INSERT INTO qa_counts VALUES ('articles', 0), ('passages', 0), ('tokens', 0),
        ('next_article', 0), ('next_passage', 0), ('next_sentence', 0);
    CREATE SEQUENCE qa_word_numbers MINVALUE 0 START 0;
    CREATE SEQUENCE qa_term_numbers MINVALUE 0 START 0;
    CREATE SEQUENCE qa_token_numbers MINVALUE 0 START 0;
    CREATE TABLE qa_articles (
        row bigint PRIMARY KEY, id text UNIQUE NOT NULL, digest text NOT NULL, info jsonb NOT NULL,
        text text NOT NULL, first_sentence bigint NOT NULL, end_sentence bigint NOT NULL);
    CREATE TABLE qa_passages (
        row bigint PRIMARY KEY, article bigint NOT NULL REFERENCES qa_articles ON DELETE CASCADE,
        start integer NOT NULL, stop integer NOT NULL, first_sentence bigint NOT NULL,
        end_sentence bigint NOT NULL, tokens integer NOT NULL, embedding vector({dim}) NOT NULL);
    CREATE INDEX qa_passages_article ON qa_passages (article);
    CREATE TABLE qa_sentences (
        row bigint PRIMARY KEY, article bigint NOT NULL REFERENCES qa_articles ON DELETE CASCADE,
        start integer NOT NULL, stop integer NOT NULL, passage bigint NOT NULL,
        entities jsonb NOT NULL, words bytea NOT NULL, terms bytea NOT NULL,
        embedding vector({dim}) NOT NULL);
    CREATE INDEX qa_sentences_article ON qa_sentences (article);
    CREATE TABLE qa_copies (
        passage bigint NOT NULL REFERENCES qa_passages ON DELETE CASCADE,
        other bigint NOT NULL REFERENCES qa_passages ON DELETE CASCADE, PRIMARY KEY (passage, other));
    CREATE INDEX qa_copies_other ON qa_copies (other);
    CREATE TABLE qa_tokens (token text PRIMARY KEY, id integer UNIQUE NOT NULL, df integer NOT NULL);
    CREATE TABLE qa_passage_tokens (
        token integer NOT NULL, passage bigint NOT NULL REFERENCES qa_passages ON DELETE CASCADE,
        tf integer NOT NULL, length integer NOT NULL, impact real NOT NULL);
    CREATE INDEX qa_passage_tokens_impact ON qa_passage_tokens (token, impact DESC)
        INCLUDE (passage, tf, length);  -- a question reads a token's first postings from it alone
    CREATE INDEX qa_passage_tokens_passage ON qa_passage_tokens (passage);
    CREATE TABLE qa_terms (term text PRIMARY KEY, id integer UNIQUE NOT NULL, df integer NOT NULL);
    CREATE INDEX qa_terms_df ON qa_terms (df);
    CREATE TABLE qa_words (
        word text PRIMARY KEY, id integer UNIQUE NOT NULL, term integer NOT NULL, known boolean NOT NULL,
        written_lower boolean NOT NULL);
    CREATE TABLE qa_names (word text NOT NULL, label text NOT NULL, PRIMARY KEY (word, label));
    """


# Both tables are scanned exactly while small; `index_vectors` gives them an index as they grow.
# Passages get an HNSW graph, built once and kept up to date by every insert. Below 5,000 passages
# a scan costs no more: a question's search took 4.0 ms exactly at 5,000 rows (2.9 ms at 1,000),
# and finding an ingested passage's copies 1.4 ms (0.6 ms at 1,000) against 1.3 ms for a graph
# insert and lookup; at 10,000 the scan costs 6.9 and 4.8 ms.
# Sentences get an inverted file, built anew as they grow: they repeat across articles in dense
# clusters of near-duplicates, which a graph links poorly (HNSW recall@10 at 100,000 passages: 0.81
# at ef_search 200, 0.93 at 800), and a sentence costs an IVF list lookup to insert.
PASSAGE_GRAPH_FROM = 5_000
PASSAGE_GRAPH = (f"CREATE INDEX CONCURRENTLY qa_passages_embedding ON qa_passages USING hnsw "
                 f"(embedding vector_cosine_ops) WITH (m = {HNSW_M}, "
                 f"ef_construction = {HNSW_EF_CONSTRUCTION})")
SENTENCE_IVF_FROM = 10_000  # sentence rows from which the inverted file is built (below: exact scan)
SENTENCE_IVF_GROWTH = 4  # rebuilt when the rows have grown this many times since it was built
# Lists: pgvector's k-means needs memory in the square of them (7.4 GB for the 4 x sqrt(rows) of
# the index of files at 2.2 million sentences, 5,933 lists), so half as many.
IVF_LISTS_PER_ROOT = 2
# Sentences a search scans, in as many lists as hold about this many: recall@10 at 2.2M sentences
# (2,993 lists of ~750): 1.000 from 4 lists on (3: 0.997), 6 scanned in 7.6 ms; at 45k (423 lists
# of ~106): 0.887 with 6 lists, 0.953 with 24, 0.985 with 43 (7 ms).
IVF_ROWS_SCANNED = 4_000


# Schema version -> what brings the one before it up to it (none yet: version 1 is the first).
MIGRATIONS: dict[int, str] = {}


def _prepared(conn: psycopg.Connection[Any], expected: Manifest, report: Report) -> Manifest | None:
    """Create the schema or bring it up to date; the manifest stored, or None in a new store.
    A store made with another model or dimension is refused."""
    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    register_vector(conn)
    exists = conn.execute("SELECT to_regclass('qa_meta') IS NOT NULL").fetchone()
    if not (exists and exists[0]):
        with conn.transaction():
            conn.execute(_schema(expected.dim))
            conn.execute("INSERT INTO qa_meta VALUES ('schema', %s), ('manifest', %s)",
                         (json.dumps(SCHEMA_VERSION), json.dumps(asdict(expected))))
        report(f"Created the qa-bot schema (version {SCHEMA_VERSION}).")
        return None
    version = int(_meta(conn, "schema"))
    if version > SCHEMA_VERSION:
        raise IndexStoreError(f"the store's schema is version {version}, newer than this qa-bot "
                              f"reads ({SCHEMA_VERSION})", hint="upgrade qa-bot")
    for step in range(version + 1, SCHEMA_VERSION + 1):
        with conn.transaction():
            conn.execute(MIGRATIONS[step])
            conn.execute("UPDATE qa_meta SET value = %s WHERE key = 'schema'", (json.dumps(step),))
        report(f"Migrated the qa-bot schema to version {step}.")
    stored = Manifest(**_meta(conn, "manifest"))
    if (stored.model, stored.dim) != (expected.model, expected.dim):
        raise IndexStoreError(
            f"the store was built with {stored.model} ({stored.dim} dimensions), not "
            f"{expected.model} ({expected.dim})",
            hint="point QA_BOT_DATABASE_URL at another database, or drop this one's qa_* tables")
    return stored


def _meta(conn: psycopg.Connection[Any], key: str) -> Any:
    found = conn.execute("SELECT value FROM qa_meta WHERE key = %s", (key,)).fetchone()
    if found is None:
        raise IndexStoreError(f"the store has no {key} row", hint="run `qa-bot index`")
    return found[0]


# --- writing ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Prepared:
    """An article chunked, embedded and tagged, ready to be written in one transaction."""

    article: Article
    chunks: list[Chunk]
    spans: list[tuple[int, int]]  # its sentences, in order
    chunk_sentences: list[list[int]]  # per passage, positions in `spans`
    passage_vectors: np.ndarray
    sentence_vectors: np.ndarray
    entities: list[tuple[Entity, ...]]


def ingest(database: Database, settings: Settings, encoder: Encoder, tagger: EntityTagger,
           report: Report = lambda _: None, progress: Progress | None = None,
           rebuild: bool = False) -> IndexUpdate:
    """Bring the store up to date with the corpus: articles new or changed are embedded and written
    (a batch per transaction), articles gone are deleted. Interrupted, it is rerun to finish: the
    file list that says the store is up to date is written last."""
    files = scan(settings.corpus_dir)
    expected = _manifest(settings, encoder, tagger, files)
    conn = database.connect(vectors=False)
    try:
        _lock(conn, report)
        stored = _prepared(conn, expected, report)
        fingerprints = dict(conn.execute("SELECT name, fingerprint FROM qa_files").fetchall())
        if stored is not None and not rebuild and stored.recipe() == expected.recipe() \
                and fingerprints == expected.files:
            return IndexUpdate("loaded", 0, 0, ())
        if stored is not None and (rebuild or stored.recipe() != expected.recipe()):
            report("Re-indexing every article " + ("(--rebuild)." if rebuild else
                                                   "(built with other chunk, cleaner or tagger settings)."))
            with conn.transaction():
                conn.execute("TRUNCATE qa_articles, qa_passages, qa_sentences, qa_copies, qa_tokens, "
                             "qa_passage_tokens, qa_terms, qa_words, qa_names, qa_files")
                conn.execute("UPDATE qa_counts SET value = 0")
                conn.execute("DROP INDEX IF EXISTS qa_sentences_ivf")  # its lists were the old rows'
                conn.execute("DELETE FROM qa_meta WHERE key = 'sentence_index'")
        corpus = load_corpus(settings.corpus_dir)
        for skipped in corpus.skipped:
            report(f"warning: skipped {skipped.name}: {skipped.reason}")
        indexed = dict(conn.execute("SELECT id, digest FROM qa_articles").fetchall())
        wanted = {a.info.id: _digest(a) for a in corpus.articles}
        for gone in sorted(indexed.keys() - wanted.keys()):
            with conn.transaction():
                _delete_article(conn, gone)
        fresh = [a for a in corpus.articles if indexed.get(a.info.id) != wanted[a.info.id]]
        if fresh:
            report(f"Indexing {len(fresh)} articles into {database.shown} "
                   f"({len(corpus.articles) - len(fresh)} unchanged).")
        embedded, untagged = _write_articles(conn, fresh, settings, encoder, tagger, progress, report)
        index_vectors(conn, report)
        conn.execute("VACUUM (ANALYZE) qa_passage_tokens")  # so BM25 reads postings from the index alone
        with conn.transaction():
            conn.execute("DELETE FROM qa_files")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO qa_files VALUES (%s, %s)", sorted(expected.files.items()))
            conn.execute("UPDATE qa_meta SET value = %s WHERE key = 'manifest'",
                         (json.dumps(asdict(replace(expected, stamps={}))),))
        action = "updated" if indexed else "built"
        return IndexUpdate(action, embedded, 0, tuple(f"{s.name}: {s.reason}" for s in corpus.skipped),
                           untagged)
    except psycopg.OperationalError as e:
        raise StoreUnavailable(f"lost the connection to {database.shown} while indexing ({_reason(e)})",
                               hint="rerun `qa-bot index`: it finishes what was left") from None
    finally:
        conn.close()


def index_vectors(conn: psycopg.Connection[Any], report: Report = lambda _: None) -> None:
    """Give the passages their graph once there are enough of them (see `PASSAGE_GRAPH_FROM`); build
    the sentences' inverted file (2 x sqrt(rows) lists) likewise, and anew when they have grown
    several times over. Indexes are built without blocking readers (an unfinished one is dropped
    first: a build that was killed leaves one behind)."""
    passages = int(conn.execute("SELECT count(*) FROM qa_passages").fetchone()[0])  # type: ignore[index]
    graph = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                         "to_regclass('qa_passages_embedding')").fetchone()
    if passages >= PASSAGE_GRAPH_FROM and not (graph and graph[0]):
        report(f"Building the passages' search graph ({passages:,} passages).")
        conn.execute("DROP INDEX IF EXISTS qa_passages_embedding")
        _build_memory(conn)
        conn.execute(PASSAGE_GRAPH)
    rows = int(conn.execute("SELECT count(*) FROM qa_sentences").fetchone()[0])  # type: ignore[index]
    built = conn.execute("SELECT value FROM qa_meta WHERE key = 'sentence_index'").fetchone()
    built_for = int(built[0]["rows"]) if built else 0
    if rows < SENTENCE_IVF_FROM or (built_for and rows < SENTENCE_IVF_GROWTH * built_for):
        return
    lists = int(IVF_LISTS_PER_ROOT * math.sqrt(rows))
    report(f"Building the sentences' search index ({rows:,} sentences, {lists:,} lists).")
    conn.execute("DROP INDEX IF EXISTS qa_sentences_ivf_next")
    _build_memory(conn)
    conn.execute(f"CREATE INDEX CONCURRENTLY qa_sentences_ivf_next ON qa_sentences USING ivfflat "
                 f"(embedding vector_cosine_ops) WITH (lists = {lists})")
    with conn.transaction():
        conn.execute("DROP INDEX IF EXISTS qa_sentences_ivf")
        conn.execute("ALTER INDEX qa_sentences_ivf_next RENAME TO qa_sentences_ivf")
        conn.execute("INSERT INTO qa_meta VALUES ('sentence_index', %s) ON CONFLICT (key) "
                     "DO UPDATE SET value = EXCLUDED.value", (Jsonb({"rows": rows, "lists": lists}),))


def _build_memory(conn: psycopg.Connection[Any]) -> None:
    """At least 2 GB for an index build (the server's setting when it gives more): the IVF's k-means
    takes 1.9 GB for 3,000 lists (`IVF_LISTS_PER_ROOT`), a graph of 1M passages ~3 GB to build fast."""
    conn.execute("SELECT set_config('maintenance_work_mem', greatest(setting::bigint, 2097152)::text, false) "
                 "FROM pg_settings WHERE name = 'maintenance_work_mem'")


def _lock(conn: psycopg.Connection[Any], report: Report) -> None:
    got = conn.execute("SELECT pg_try_advisory_lock(%s)", (WRITER_LOCK,)).fetchone()
    if not (got and got[0]):
        report("Another qa-bot is indexing into this database: waiting for it to finish.")
        conn.execute("SELECT pg_advisory_lock(%s)", (WRITER_LOCK,))


def _digest(article: Article) -> str:
    record = json.dumps(asdict(article.info), sort_keys=True, ensure_ascii=False) + "\n" + article.text
    return hashlib.sha1(record.encode()).hexdigest()


def _write_articles(conn: psycopg.Connection[Any], articles: list[Article], settings: Settings,
                    encoder: Encoder, tagger: EntityTagger, progress: Progress | None,
                    report: Report) -> tuple[int, int]:
    """Embed and tag the articles a batch at a time, writing each batch (in one transaction) while
    the next is embedded: the database works while the model does."""
    if not articles:
        return 0, 0
    encoder.prepare_bulk(report)
    vocabulary = frozenset(encoder.word_vectors()[0])
    chunked = [_chunked(a, settings) for a in articles]
    done = embedded = untagged = 0
    total = sum(len(_texts(a, chunks, spans))
                for a, (chunks, spans, _) in zip(articles, chunked, strict=True))

    def write(batch: list[_Prepared]) -> None:
        with conn.transaction():  # the batch's articles appear (or change) together
            for prepared in batch:
                _delete_article(conn, prepared.article.info.id)
            _insert_articles(conn, batch, vocabulary)

    writing: Future[None] | None = None
    with ThreadPoolExecutor(max_workers=2) as background:  # one tags, one writes
        for start in range(0, len(articles), INGEST_BATCH):
            part, batch = articles[start: start + INGEST_BATCH], chunked[start: start + INGEST_BATCH]
            texts = sorted(set().union(*(_texts(a, chunks, spans)
                                         for a, (chunks, spans, _) in zip(part, batch, strict=True))),
                           key=len, reverse=True)
            sentence_texts = [a.text[s:e] for a, (_, spans, _) in zip(part, batch, strict=True)
                              for s, e in spans]
            tagging = background.submit(tagger.tag, sentence_texts)

            def advance(n: int, before: int = done) -> None:
                if progress is not None:
                    progress(before + n, total)

            vectors = dict(zip(texts, encoder.encode(texts, settings.batch_size, advance), strict=True))
            tags, failed = tagging.result()
            untagged += failed
            done += len(texts)
            embedded += len(texts)
            tagged = iter(tags)
            ready = [_Prepared(
                article, chunks, spans, members,
                np.array([vectors[c.text] for c in chunks], dtype=np.float32).reshape(-1, encoder.dim),
                _sentence_vectors(article, spans, vectors, encoder.dim),
                [next(tagged) for _ in spans])
                for article, (chunks, spans, members) in zip(part, batch, strict=True)]
            if writing is not None:
                writing.result()
            writing = background.submit(write, ready)
        if writing is not None:
            writing.result()
    return embedded, untagged


def _chunked(article: Article,
             settings: Settings) -> tuple[list[Chunk], list[tuple[int, int]], list[list[int]]]:
    chunks = chunk_article(article.info.id, article.text, settings.chunk_sentences, settings.chunk_overlap)
    position: dict[tuple[int, int], int] = {}
    members = [[position.setdefault(span, len(position)) for span in c.sentences] for c in chunks]
    return chunks, list(position), members


def _sentence_vectors(article: Article, spans: list[tuple[int, int]], vectors: dict[str, np.ndarray],
                      dim: int) -> np.ndarray:
    """An article's sentence vectors, leaned toward its headline as the index of files leans them."""
    sentences = [article.text[s:e] for s, e in spans]
    plain = np.array([vectors[t] for t in sentences], dtype=np.float32).reshape(-1, dim)
    headlines = [leans_to(article.info.title, t) for t in sentences]
    return in_context(plain, [None if h is None else vectors[h] for h in headlines])


def _texts(article: Article, chunks: list[Chunk], spans: list[tuple[int, int]]) -> set[str]:
    """The distinct texts of an article's passages and sentences, and its headline: what is embedded."""
    sentences = [article.text[s:e] for s, e in spans]
    headline = {h for t in sentences if (h := leans_to(article.info.title, t)) is not None}
    return {c.text for c in chunks} | set(sentences) | headline


@dataclass
class _Counts:
    """What one article adds to the corpus-wide counts (and takes back when deleted)."""

    tokens: Counter[str]  # BM25 token -> passages holding it
    terms: Counter[str]  # term -> passages holding it
    words: set[str]  # every word of its text
    lower: set[str]  # words it writes in lower case
    names: set[tuple[str, str]]  # (word of a name, its label, or "" when not capitalised)
    passage_tokens: list[Counter[str]]
    passage_lengths: list[int]

    @classmethod
    def merged(cls, parts: Sequence[_Counts]) -> _Counts:
        return cls(sum((p.tokens for p in parts), Counter()), sum((p.terms for p in parts), Counter()),
                   set().union(*(p.words for p in parts)), set().union(*(p.lower for p in parts)),
                   set().union(*(p.names for p in parts)), [t for p in parts for t in p.passage_tokens],
                   [n for p in parts for n in p.passage_lengths])


def _counts(text: str, chunks: Sequence[Chunk], sentences: Sequence[tuple[int, int]],
            entities: Sequence[Sequence[Entity]]) -> _Counts:
    tokenised = [question_tokens(c.text) for c in chunks]
    names = set()
    for (start, _), found in zip(sentences, entities, strict=True):
        for e in found:
            if e.label in NAMES:
                for w in WORD.findall(text[start + e.start: start + e.end]):
                    names.add((w.lower().replace("’", "'"), e.label if w[:1].isupper() else ""))
    return _Counts(
        tokens=Counter(t for ts in tokenised for t in set(ts)),
        terms=Counter(t for c in chunks for t in set(terms(c.text))),
        words=set(words(text)),
        lower={w.replace("’", "'") for w in WORD.findall(text) if w.islower()},
        names=names,
        passage_tokens=[Counter(ts) for ts in tokenised],
        passage_lengths=[len(ts) for ts in tokenised],
    )


def _insert_articles(conn: psycopg.Connection[Any], batch: Sequence[_Prepared], vocabulary: frozenset[str],
                     find_copies: bool = True) -> None:
    """Write articles (in the caller's transaction) and add them to the counts: a few statements
    and COPYs for the whole batch, whatever its size."""
    counts = [_counts(p.article.text, p.chunks, p.spans, p.entities) for p in batch]
    sentence_words = [[words(p.article.text[s:e]) for s, e in p.spans] for p in batch]
    all_words = set().union(*(c.words for c in counts),
                            *({w for ws in sw for w in ws} for sw in sentence_words))
    word_terms = {w: (STEMMER.stemWord(w) if w not in FUNCTION_WORDS else None) for w in all_words}
    total = _Counts.merged(counts)
    token_ids = _numbered(conn, "qa_tokens", "token", "qa_token_numbers", total.tokens.keys())
    term_ids = _numbered(conn, "qa_terms", "term", "qa_term_numbers",
                         set(total.terms) | {t for t in word_terms.values() if t is not None})
    word_ids = _numbered(conn, "qa_words", "word", "qa_word_numbers", all_words, extra=lambda w: (
        _term_number(word_terms[w], term_ids), w in vocabulary))
    numbers = dict(conn.execute("SELECT key, value FROM qa_counts").fetchall())
    article_row, passage_row, sentence_row = (numbers["next_article"], numbers["next_passage"],
                                              numbers["next_sentence"])
    all_lengths = sum(total.passage_lengths) + numbers["tokens"]
    mean_length = all_lengths / max(len(total.passage_lengths) + numbers["passages"], 1)
    articles, passages, sentences, postings = [], [], [], []
    firsts = []
    for prepared, found, words_of in zip(batch, counts, sentence_words, strict=True):
        article = prepared.article
        articles.append((article_row, article.info.id, _digest(article), Jsonb(asdict(article.info)),
                         article.text, sentence_row, sentence_row + len(prepared.spans)))
        passage_of = {m: passage_row + p
                      for p, members in enumerate(prepared.chunk_sentences) for m in members}
        passages += [(passage_row + p, article_row, c.start, c.end, sentence_row + members[0],
                      sentence_row + members[-1] + 1, found.passage_lengths[p], vector)
                     for p, (c, members, vector) in enumerate(zip(prepared.chunks, prepared.chunk_sentences,
                                                                  prepared.passage_vectors, strict=True))]
        sentences += [(sentence_row + i, article_row, s, e, passage_of[i],
                       Jsonb([[x.start, x.end, x.label] for x in entities]), _packed(word_ids[w] for w in ws),
                       _packed(_term_number(word_terms[w], term_ids) for w in ws), vector)
                      for i, ((s, e), entities, ws, vector) in enumerate(zip(
                          prepared.spans, prepared.entities, words_of, prepared.sentence_vectors,
                          strict=True))]
        postings += [(token_ids[t], passage_row + p, tf, found.passage_lengths[p],
                      _impact(tf, found.passage_lengths[p], mean_length))
                     for p, tokens in enumerate(found.passage_tokens) for t, tf in tokens.items()]
        firsts.append((article_row, passage_row))
        article_row += 1
        passage_row += len(prepared.chunks)
        sentence_row += len(prepared.spans)
    _copy(conn, "qa_articles", ["int8", "text", "text", "jsonb", "text", "int8", "int8"], articles)
    _copy(conn, "qa_passages", ["int8", "int8", "int4", "int4", "int8", "int8", "int4", "vector"], passages)
    _copy(conn, "qa_sentences",
          ["int8", "int8", "int4", "int4", "int8", "jsonb", "bytea", "bytea", "vector"], sentences)
    _copy(conn, "qa_passage_tokens", ["int4", "int8", "int4", "int4", "float4"], postings)
    _add_counts(conn, total, +1)
    conn.execute("""UPDATE qa_counts SET value = CASE key
                        WHEN 'next_article' THEN %(a)s WHEN 'next_passage' THEN %(p)s
                        WHEN 'next_sentence' THEN %(s)s ELSE value + CASE key
                        WHEN 'articles' THEN %(articles)s WHEN 'passages' THEN %(passages)s
                        WHEN 'tokens' THEN %(tokens)s ELSE 0 END END""",
                 {"a": article_row, "p": passage_row, "s": sentence_row, "articles": len(batch),
                  "passages": len(passages), "tokens": sum(total.passage_lengths)})
    if find_copies:
        _link_copies(conn, batch, firsts)


def _copy(conn: psycopg.Connection[Any], table: str, types: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Rows into a table through COPY (binary): several times faster than INSERTs."""
    with conn.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def _packed(numbers: Iterable[int]) -> bytes:
    return np.fromiter(numbers, dtype="<i4").tobytes()


def _unpacked(numbers: bytes) -> np.ndarray:
    return np.frombuffer(numbers, dtype="<i4").astype(np.int64)


def _impact(tf: int, length: int, mean_length: float) -> float:
    """BM25's term-frequency part for a passage, with the mean length when it was written: the
    order in which a token's passages are read (its score is worked out anew at question time)."""
    return tf / (tf + K1 * (1 - B + B * length / max(mean_length, 1e-9)))


def _term_number(term: str | None, numbers: Mapping[str, int]) -> int:
    return -1 if term is None else numbers[term]


def _numbered(conn: psycopg.Connection[Any], table: str, column: str, sequence: str, keys: Iterable[str],
              extra: Any = None) -> dict[str, int]:
    """The numbers of these keys, new ones numbered from the sequence (their counts start at 0)."""
    wanted = sorted(set(keys))
    known = dict(conn.execute(f"SELECT {column}, id FROM {table} WHERE {column} = ANY(%s)",
                              (wanted,)).fetchall())
    missing = [k for k in wanted if k not in known]
    if missing:
        first = conn.execute("SELECT setval(%s, nextval(%s) + %s - 1)",
                             (sequence, sequence, len(missing))).fetchone()
        assert first is not None
        start = int(first[0]) - len(missing) + 1
        new = {k: start + i for i, k in enumerate(missing)}
        if extra is None:
            _copy(conn, table, ["text", "int4", "int4"], [(k, n, 0) for k, n in new.items()])
        else:
            _copy(conn, table, ["text", "int4", "int4", "bool", "bool"],
                  [(k, n, *extra(k), False) for k, n in new.items()])
        known.update(new)
    return known


def _add_counts(conn: psycopg.Connection[Any], counts: _Counts, sign: int) -> None:
    for table, column, found in (("qa_tokens", "token", counts.tokens), ("qa_terms", "term", counts.terms)):
        if found:
            keys = sorted(found)
            conn.execute(f"UPDATE {table} SET df = df + u.n FROM unnest(%s::text[], %s::int[]) "
                         f"AS u(key, n) WHERE {column} = u.key", (keys, [sign * found[k] for k in keys]))
    if sign < 0:
        return
    conn.execute("UPDATE qa_words SET written_lower = true WHERE word = ANY(%s) AND NOT written_lower",
                 (sorted(counts.lower),))
    if counts.names:
        pairs = sorted(counts.names)
        conn.execute("INSERT INTO qa_names SELECT * FROM unnest(%s::text[], %s::text[]) "
                     "ON CONFLICT DO NOTHING",
                     ([w for w, _ in pairs], [label for _, label in pairs]))


def _link_copies(conn: psycopg.Connection[Any], batch: Sequence[_Prepared],
                 firsts: Sequence[tuple[int, int]]) -> None:
    """Passages of other articles that repeat these articles' (the batch's own included): among
    each passage's nearest by vector, those its shingles say repeat it (`syndication.is_copy`);
    both directions are recorded."""
    new = [(article, first + i, chunk.text, vector)
           for prepared, (article, first) in zip(batch, firsts, strict=True)
           for i, (chunk, vector) in enumerate(zip(prepared.chunks, prepared.passage_vectors, strict=True))]
    if not new:
        return
    near = conn.execute(
        """SELECT q.i, n.row, substr(a.text, n.start + 1, n.stop - n.start)
           FROM unnest(%s::int[], %s::int8[], %s::vector[]) AS q(i, article, v)
           CROSS JOIN LATERAL (SELECT row, article, start, stop, embedding <=> q.v AS distance
                               FROM qa_passages WHERE article <> q.article
                               ORDER BY embedding <=> q.v LIMIT %s) n
           JOIN qa_articles a ON a.row = n.article
           WHERE n.distance <= %s""",
        (list(range(len(new))), [a for a, _, _, _ in new], [v for _, _, _, v in new], COPY_CANDIDATES,
         1 - COPY_MIN_COSINE)).fetchall()
    pairs = set()
    for i, other, text in near:
        _, row, own, _ = new[i]
        if is_copy(own, text):
            pairs |= {(row, other), (other, row)}
    if pairs:
        _copy(conn, "qa_copies", ["int8", "int8"], sorted(pairs))


def _delete_article(conn: psycopg.Connection[Any], article_id: str) -> None:
    """Delete an article's rows and take back what it added to the counts."""
    found = conn.execute("SELECT row, text FROM qa_articles WHERE id = %s", (article_id,)).fetchone()
    if found is None:
        return
    row, text = found
    passages = conn.execute("SELECT start, stop FROM qa_passages WHERE article = %s ORDER BY row",
                            (row,)).fetchall()
    sentences = conn.execute("SELECT start, stop, entities FROM qa_sentences WHERE article = %s ORDER BY row",
                             (row,)).fetchall()
    chunks = [Chunk(article_id, s, e, text[s:e], ()) for s, e in passages]
    counts = _counts(text, chunks, [(s, e) for s, e, _ in sentences],
                     [[Entity(a, b, label) for a, b, label in found] for _, _, found in sentences])
    _add_counts(conn, counts, -1)
    conn.execute("""UPDATE qa_counts SET value = value - CASE key WHEN 'articles' THEN 1
                        WHEN 'passages' THEN %s WHEN 'tokens' THEN %s ELSE 0 END""",
                 (len(passages), sum(counts.passage_lengths)))
    conn.execute("DELETE FROM qa_articles WHERE row = %s", (row,))


# --- reading ------------------------------------------------------------------------------------

class Session:
    """Connections to the store, one per thread; a question's reads share one snapshot."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._local = threading.local()
        self._opened: list[psycopg.Connection[Any]] = []  # every thread's, closed by `close`

    def _conn(self) -> psycopg.Connection[Any]:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self.database.connect()
            self._local.conn = conn
            self._opened = [c for c in self._opened if not c.closed] + [conn]
            conn.execute(f"SET hnsw.ef_search = {EF_SEARCH}")
            lists, rows = conn.execute(  # both None in a database with no store yet
                "SELECT (SELECT (value->>'lists')::int FROM qa_meta WHERE key = 'sentence_index'), "
                "(SELECT value FROM qa_counts WHERE key = 'next_sentence')"
                if conn.execute("SELECT to_regclass('qa_meta')").fetchone() != (None,)
                else "SELECT NULL, NULL").fetchone() or (None, None)
            if lists and rows:
                conn.execute(f"SET ivfflat.probes = {min(lists, math.ceil(IVF_ROWS_SCANNED * lists / rows))}")
        return conn

    @contextmanager
    def reading(self) -> Iterator[object]:
        """Everything read inside sees one state of the store (nested: the outer one's)."""
        if getattr(self._local, "depth", 0):
            self._local.depth += 1
            try:
                yield None
            finally:
                self._local.depth -= 1
            return
        counts = self._begin()
        self._local.depth = 1
        self._local.snapshot = {("count", str(k)): int(v) for k, v in counts}
        try:
            yield None
        finally:
            self._local.depth = 0
            try:
                self._conn().execute("COMMIT")
            except psycopg.Error:
                self._drop()

    def _begin(self) -> list[tuple[Any, ...]]:
        """Start a snapshot and read its running counts (one round trip), reconnecting with back-off
        when the database went away."""
        for wait in (*RETRY_S, None):
            try:
                conn = self._conn()
                with conn.pipeline():
                    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    counts = conn.cursor(binary=True)
                    counts.execute("SELECT key, value FROM qa_counts")
                return counts.fetchall()
            except (StoreUnavailable, psycopg.OperationalError):
                self._drop()
            if wait is not None:
                time.sleep(wait)
        raise StoreUnavailable(f"the archive at {self.database.shown} is unreachable",
                               hint="it is retried on the next question")

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """A lost connection is dropped (the next read opens another) and said as StoreUnavailable."""
        try:
            yield
        except psycopg.OperationalError as e:
            self._drop()
            raise StoreUnavailable(f"lost the archive at {self.database.shown} ({_reason(e)})",
                                   hint="it is retried on the next question") from None

    def query(self, sql: str, args: Sequence[Any] | Mapping[str, Any] = ()) -> list[tuple[Any, ...]]:
        with self._reaching():
            return self._conn().execute(sql, args, binary=True).fetchall()

    def pipelined(self, statements: list[tuple[str, Mapping[str, Any]]]) -> list[list[tuple[Any, ...]]]:
        """Several queries sent together: one round trip to the server instead of one each."""
        with self._reaching():
            conn = self._conn()
            with conn.pipeline():
                cursors = [conn.cursor(binary=True) for _ in statements]
                for cur, (sql, args) in zip(cursors, statements, strict=True):
                    cur.execute(sql, args)
            return [cur.fetchall() for cur in cursors]

    def one(self, sql: str, args: Sequence[Any] = ()) -> Any:
        found = self.query(sql, args)
        return found[0][0] if found else None

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        self._local.depth = 0
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass

    def close(self) -> None:
        """Close every thread's connection (a later read opens a new one)."""
        for conn in self._opened:
            conn.close()
        self._opened = []
        self._local.conn = None

    def snapshot(self) -> dict[Any, Any] | None:
        """What has been read in this thread's snapshot, kept until it ends (None outside one)."""
        return getattr(self._local, "snapshot", None) if getattr(self._local, "depth", 0) else None

    def count(self, key: str) -> int:
        """A running count: a snapshot reads them all as it begins."""
        kept = self.snapshot()
        if kept is not None:
            return int(kept.get(("count", key), 0))
        return {str(k): int(v) for k, v in self.query("SELECT key, value FROM qa_counts")}.get(key, 0)


# start, end, passage, entities (JSON), words, terms, vector (pgvector's binary form; b"" if not read)
_Sentence = tuple[int, int, int, str, bytes, bytes, bytes]


@dataclass(frozen=True)
class _Bundle:
    """An article with the rows of it read so far (rows never change, so they are kept): all of
    them, or those of some passages (a question scores the sentences of ~200 passages; their whole
    articles are ~6 times as many rows)."""

    article: Article
    sentence_rows: range
    sentences: dict[int, _Sentence]  # row -> its values
    passages: dict[int, tuple[int, int, int, int]]  # row -> start, end, first and end sentence row

    def merged(self, other: _Bundle) -> _Bundle:
        return _Bundle(self.article, self.sentence_rows, self.sentences | other.sentences,
                       self.passages | other.passages)


class PgRows:
    """The rows of the store, read as `rows.StoredRows` reads its files (see `rows.RowReader`)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._bundles: OrderedDict[int, _Bundle] = OrderedDict()  # the least recently read first
        self._sentence_owner: dict[int, int] = {}  # the rows read so far -> their article row
        self._passage_owner: dict[int, int] = {}
        self._lock = threading.Lock()
        self.articles = ArticleMap(self)
        self.sentences: RowView[Sentence] = RowView(lambda: session.count("next_sentence"), self.sentence)
        self.chunks: RowView[Chunk] = RowView(lambda: session.count("next_passage"), self.chunk)
        self.chunk_sentences: RowView[list[int]] = RowView(lambda: session.count("next_passage"),
                                                       self.passage_sentences)
        self.sentence_entities: RowView[tuple[Entity, ...]] = RowView(lambda: session.count("next_sentence"),
                                                                  self.entities)
        self.copies: RowView[list[int]] = RowView(lambda: session.count("next_passage"), self.passage_copies)

    def prefetch(self, passages: Iterable[int] = (), sentences: Iterable[int] = ()) -> None:
        """Read these passages, and those holding these sentences, with their sentences and their
        articles, and in a snapshot the passages' syndicated copies and which articles read in an
        earlier one are still there: one round trip."""
        passages, sentences = [int(p) for p in passages], [int(s) for s in sentences]
        wanted_p = sorted({p for p in passages if not self._has(p, self._passage_owner)})
        wanted_s = sorted({s for s in sentences if not self._has(s, self._sentence_owner)})
        kept = self._session.snapshot()
        copies: list[int] = []
        earlier: dict[int, str] = {}  # article rows read before this snapshot -> their ids
        also: list[tuple[str, Mapping[str, Any]]] = []
        if kept is not None:
            copies = sorted({p for p in passages if ("copies", p) not in kept})
            owners = {self._passage_owner.get(p, -1) for p in passages} \
                | {self._sentence_owner.get(s, -1) for s in sentences}
            for row in owners:
                bundle = self._bundles.get(row)
                if bundle is not None and ("row", bundle.article.info.id) not in kept:
                    earlier[row] = bundle.article.info.id
            if copies:
                also.append(("SELECT passage, other FROM qa_copies WHERE passage = ANY(%(c)s) "
                             "ORDER BY passage, other", {"c": copies}))
            if earlier:
                also.append(("SELECT row FROM qa_articles WHERE row = ANY(%(a)s)", {"a": sorted(earlier)}))
        if wanted_p or wanted_s:
            found = iter(self._load(wanted_p, wanted_s, whole=False, also=also))
        else:
            found = iter(self._session.pipelined(also) if also else [])
        if copies:
            self._keep_copies(copies, next(found))
        if earlier and kept is not None:  # a row still there still holds its article: rows never change
            kept.update({("row", earlier[row]): row for (row,) in next(found)})

    def _has(self, row: int, owners: dict[int, int]) -> bool:
        return owners.get(row) in self._bundles

    def _load(self, passages: list[int], sentences: list[int], articles: Sequence[int] = (),
              whole: bool = True, also: Sequence[tuple[str, Mapping[str, Any]]] = ()) -> list[list[Any]]:
        """The articles holding these passage and sentence rows (and these articles), with all
        their rows or (not `whole`) these passages' and those holding these sentences, and their
        sentences' vectors: three queries, and the `also` ones whose rows it returns, sent in one
        round trip."""
        owners = """SELECT article FROM qa_passages WHERE row = ANY(%(p)s)
                    UNION SELECT article FROM qa_sentences WHERE row = ANY(%(s)s)
                    UNION SELECT unnest(%(a)s::int8[])"""
        args = {"p": passages, "s": sentences, "a": list(articles)}
        vector = "''::bytea" if whole else "vector_send(embedding)"  # whole articles: read when asked
        if whole:
            passage_rows = f"article IN ({owners})"
            sentence_rows = f"article IN ({owners})"
        else:
            windows = """SELECT unnest(%(p)s::int8[])
                         UNION SELECT passage FROM qa_sentences WHERE row = ANY(%(s)s)"""
            passage_rows = f"row IN ({windows})"
            sentence_rows = (f"row IN (SELECT generate_series(first_sentence, end_sentence - 1) "
                             f"FROM qa_passages WHERE row IN ({windows}))")
        article_rows, passage_found, sentence_found, *others = self._session.pipelined([
            (f"SELECT row, id, info, text, first_sentence, end_sentence FROM qa_articles "
             f"WHERE row IN ({owners})", args),
            (f"SELECT article, row, start, stop, first_sentence, end_sentence FROM qa_passages "
             f"WHERE {passage_rows}", args),
            (f"SELECT article, row, start, stop, passage, entities::text, words, terms, {vector} "
             f"FROM qa_sentences WHERE {sentence_rows}", args),
            *also,
        ])
        by_article: dict[int, _Bundle] = {}
        for row, _id, info, text, first, end in article_rows:
            by_article[row] = _Bundle(Article(ArticleInfo(**info), text), range(first, end), {}, {})
        kept = self._session.snapshot()
        if kept is not None:
            kept.update({("row", article_id): row for row, article_id, *_ in article_rows})
        for article, row, start, stop, first, end in passage_found:
            by_article[article].passages[row] = (start, stop, first, end)
        for article, row, start, stop, passage, entities, ws, ts, vector in sentence_found:
            by_article[article].sentences[row] = (start, stop, passage, entities, ws, ts, vector)
        with self._lock:
            for row, bundle in by_article.items():
                old = self._bundles.pop(row, None)
                if old is not None and not whole:
                    bundle = old.merged(bundle)
                self._bundles[row] = bundle
                self._sentence_owner.update(dict.fromkeys(bundle.sentences, row))
                self._passage_owner.update(dict.fromkeys(bundle.passages, row))
            while len(self._bundles) > ARTICLE_CACHE:
                _, gone = self._bundles.popitem(last=False)
                for s in gone.sentences:
                    self._sentence_owner.pop(s, None)
                for p in gone.passages:
                    self._passage_owner.pop(p, None)
        return others

    def _owner(self, row: int, owners: dict[int, int], read: Callable[[int], object]) -> _Bundle:
        """The bundle holding a row, read (with its whole article) when it is not (or no longer)
        kept."""
        for _ in range(2):  # another thread may drop it between the two lookups
            owner = owners.get(row)
            bundle = self._bundles.get(owner) if owner is not None else None
            if bundle is not None:
                return bundle
            read(row)
        raise IndexError(row)

    def _of_sentence(self, row: int) -> tuple[_Bundle, _Sentence]:
        bundle = self._owner(row, self._sentence_owner, lambda r: self._load([], [r]))
        return bundle, bundle.sentences[row]

    def _of_passage(self, row: int) -> tuple[_Bundle, tuple[int, int, int, int]]:
        bundle = self._owner(row, self._passage_owner, lambda r: self._load([r], []))
        return bundle, bundle.passages[row]

    def _row_of_id(self, article_id: str) -> int | None:
        kept = self._session.snapshot()
        if kept is not None and ("row", article_id) in kept:
            return kept["row", article_id]
        found = self._session.one("SELECT row FROM qa_articles WHERE id = %s", (article_id,))
        row = None if found is None else int(found)
        if kept is not None:
            kept["row", article_id] = row
        return row

    def article(self, article_id: str) -> Article:
        row = self._row_of_id(article_id)
        if row is None:
            raise KeyError(article_id)
        bundle = self._bundles.get(row)
        if bundle is None:
            self._load([], [], [row])
            bundle = self._bundles[row]
        return bundle.article

    def has_article(self, article_id: str) -> bool:
        return self._row_of_id(article_id) is not None

    def article_ids(self) -> Iterator[str]:
        return (str(i) for (i,) in self._session.query("SELECT id FROM qa_articles ORDER BY row"))

    @property
    def article_count(self) -> int:
        return self._session.count("articles")

    def article_sentences(self, article_id: str) -> range:
        row = self._row_of_id(article_id)
        if row is None:
            return range(0)
        bundle = self._bundles.get(row)
        if bundle is None:
            found = self._session.query("SELECT first_sentence, end_sentence FROM qa_articles WHERE row = %s",
                                        (row,))
            return range(*found[0]) if found else range(0)
        return bundle.sentence_rows

    def sentence(self, row: int) -> Sentence:
        bundle, (start, stop, *_) = self._of_sentence(row)
        return Sentence(bundle.article.info.id, start, stop)

    def sentence_article(self, row: int) -> Article:
        return self._of_sentence(row)[0].article

    def sentence_text(self, row: int) -> str:
        bundle, (start, stop, *_) = self._of_sentence(row)
        return bundle.article.text[start:stop]

    def chunk(self, row: int) -> Chunk:
        bundle, (start, stop, first, end) = self._of_passage(row)
        spans = tuple(bundle.sentences[s][:2] for s in range(first, end))
        return Chunk(bundle.article.info.id, start, stop, bundle.article.text[start:stop], spans)

    def passage_sentences(self, row: int) -> list[int]:
        _, (_, _, first, end) = self._of_passage(row)
        return list(range(first, end))

    def passage_of_sentence(self, row: int) -> int:
        return self._of_sentence(row)[1][2]

    def entities(self, row: int) -> tuple[Entity, ...]:
        return tuple(Entity(s, e, label) for s, e, label in json.loads(self._of_sentence(row)[1][3]))

    def read_vectors(self, rows: Iterable[int]) -> dict[int, bytes]:
        """The vectors of these sentence rows that were read with their passages (pgvector's
        binary form); the others are not here."""
        found = {}
        for row in rows:
            bundle = self._bundles.get(self._sentence_owner.get(row, -1))
            vector = bundle.sentences[row][6] if bundle is not None and row in bundle.sentences else b""
            if vector:
                found[row] = vector
        return found

    def sentence_terms(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        missing = sorted({int(r) for r in rows if not self._has(int(r), self._sentence_owner)})
        if missing:
            self._load([], missing, whole=False)
        parts = [self._of_sentence(int(r))[1] for r in rows]
        lengths = np.array([len(p[4]) // 4 for p in parts], dtype=np.int64)
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, lengths
        return _unpacked(b"".join(p[4] for p in parts)), _unpacked(b"".join(p[5] for p in parts)), lengths

    def passage_copies(self, row: int) -> list[int]:
        """Read in each snapshot, not kept: an article indexed later may repeat this passage."""
        kept = self._session.snapshot()
        if kept is not None and ("copies", row) in kept:
            return list(kept["copies", row])
        return self._copies_of([row])[row]

    def _copies_of(self, rows: list[int]) -> dict[int, list[int]]:
        return self._keep_copies(rows, self._session.query(
            "SELECT passage, other FROM qa_copies WHERE passage = ANY(%s) ORDER BY passage, other", (rows,)))

    def _keep_copies(self, rows: list[int], pairs: Iterable[tuple[Any, ...]]) -> dict[int, list[int]]:
        """Each row's copies from its (passage, other) pairs, kept for the snapshot."""
        found: dict[int, list[int]] = {r: [] for r in rows}
        for passage, other in pairs:
            found[passage].append(int(other))
        kept = self._session.snapshot()
        if kept is not None:
            kept.update({("copies", r): tuple(others) for r, others in found.items()})
        return found

    def name_labels(self, word: str) -> frozenset[str] | None:
        found = self._session.query("SELECT label FROM qa_names WHERE word = %s", (word,))
        if not found:
            return None
        if self._session.one("SELECT written_lower FROM qa_words WHERE word = %s", (word,)):
            return frozenset()
        return frozenset(label for (label,) in found if label)

    def known_words(self) -> list[str]:
        return [w for (w,) in self._session.query(
            "SELECT word FROM qa_words WHERE known ORDER BY word")]

    def close(self) -> None:
        self._session.close()


class PgVectors:
    """One table's vectors (see `vectors.VectorStore`): its index proposes (passages: HNSW, sentences:
    the inverted file), the candidates' stored vectors are re-scored exactly, so a row found scores
    as in the index of files."""

    def __init__(self, session: Session, table: str, dim: int, rows: PgRows | None = None) -> None:
        self._session = session
        self._table = table
        self._rows = rows  # the sentences' vectors come with their rows when a question reads them
        self.dim = dim
        passages = table == "qa_passages"
        self.plan = SearchPlan("pgvector-hnsw" if passages else "pgvector-ivfflat")
        self._count = "next_passage" if passages else "next_sentence"

    def __len__(self) -> int:
        return self._session.count(self._count)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        rows, vectors = self._packed(f"(SELECT row, embedding FROM {self._table} "
                                     f"ORDER BY embedding <=> %s LIMIT %s) AS found",
                                     (np.asarray(query, dtype=np.float32), RERANK * k))
        order = np.argsort(rows)  # by row: among equal scores the later row first, as the index of files
        rows, scores = rows[order], scores_of(vectors[order], query)
        best = best_first(scores, k)
        return scores[best], rows[best]

    def vectors_of(self, rows: np.ndarray | list[int]) -> np.ndarray:
        wanted = np.asarray(rows, dtype=np.int64)
        if not len(wanted):
            return np.zeros((0, self.dim), dtype=np.float32)
        unique = sorted(set(wanted.tolist()))
        known = self._rows.read_vectors(unique) if self._rows is not None else {}
        unread = [r for r in unique if r not in known]
        found, vectors = self._packed(f"{self._table} WHERE row = ANY(%s)", (unread,)) if unread \
            else (np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32))
        missing = set(unread) - set(found.tolist())
        if missing:
            raise IndexError(f"rows not in {self._table}: {sorted(missing)}")
        if known:
            found = np.concatenate([found, np.fromiter(known, dtype=np.int64, count=len(known))])
            vectors = np.concatenate([vectors, self._decoded(b"".join(known.values()), len(known))])
        order = np.argsort(found)
        return vectors[order[np.searchsorted(found, wanted, sorter=order)]]

    def _packed(self, source: str, args: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Rows and their vectors, sent as one array and one byte string (pgvector's binary form,
        one after another) rather than a value per row: a question reads ~700 vectors."""
        rows, blob = self._session.query(
            f"SELECT array_agg(row), string_agg(vector_send(embedding), ''::bytea) FROM {source}", args)[0]
        if rows is None:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        return np.array(rows, dtype=np.int64), self._decoded(blob, len(rows))

    def _decoded(self, blob: bytes, count: int) -> np.ndarray:
        # Each vector: its dimension and a spare (2 bytes each), then big-endian float4s.
        return np.frombuffer(blob, dtype=">f4").reshape(count, self.dim + 1)[:, 1:].astype(np.float32)

    def vectors(self) -> np.ndarray:
        found = self._session.query(f"SELECT embedding FROM {self._table} ORDER BY row")
        return np.stack([_array(v) for (v,) in found]) if found \
            else np.zeros((0, self.dim), dtype=np.float32)


class PgLexicon:
    """BM25 and term weights from the store's inverted index (see `lexical.LexicalIndex`), scored
    as bm25s scores (Lucene's IDF and length normalisation) with the corpus's current counts,
    over each question token's `POSTINGS_PER_TOKEN` passages of highest impact."""

    def __init__(self, session: Session, rows: PgRows) -> None:
        self._session = session
        self._rows = rows

    def top(self, question: str, k: int) -> list[int]:
        """As `lexical.Lexicon.top`: each question token's postings of highest impact are read (as
        byte strings: ~10,000 of them at 1M passages) and scored here, summed in float64 and
        rounded to float32 as bm25s's scores (so syndicated copies tie), the later passage first
        among equals."""
        tokens = Counter(question_tokens(question))
        if not tokens:
            return []
        found = self._session.query(
            """SELECT q.times, t.df, string_agg(int8send(pt.passage), ''::bytea),
                      string_agg(int4send(pt.tf), ''::bytea), string_agg(int4send(pt.length), ''::bytea)
               FROM unnest(%(tokens)s::text[], %(times)s::int[]) AS q(token, times)
               JOIN qa_tokens t ON t.token = q.token
               CROSS JOIN LATERAL (SELECT passage, tf, length FROM qa_passage_tokens
                                   WHERE token = t.id ORDER BY impact DESC LIMIT %(postings)s) pt
               GROUP BY t.id, q.times, t.df""",
            {"tokens": list(tokens), "times": list(tokens.values()), "postings": POSTINGS_PER_TOKEN})
        if not found:
            return []
        docs = self._session.count("passages")
        mean_length = self._session.count("tokens") / max(docs, 1)
        weights, passage_rows, tfs, lengths = [], [], [], []
        for times, df, passage_bytes, tf_bytes, length_bytes in found:  # big-endian, as sent
            passage_rows.append(np.frombuffer(passage_bytes, dtype=">i8"))
            tfs.append(np.frombuffer(tf_bytes, dtype=">i4"))
            lengths.append(np.frombuffer(length_bytes, dtype=">i4"))
            weights.append(np.full(len(tfs[-1]), times * _idf(docs, df)))
        weight, tf, length = (np.concatenate(part).astype(np.float64) for part in (weights, tfs, lengths))
        rows, at = np.unique(np.concatenate(passage_rows), return_inverse=True)
        scores = np.bincount(at, weights=weight * tf / (tf + K1 * (1 - B + B * length / mean_length)),
                             minlength=len(rows)).astype(np.float32)
        return [int(rows[i]) for i in best_first(scores, k) if scores[i] > 0]

    def _terms(self, question_terms: Sequence[str]) -> tuple[dict[str, tuple[int, float | None]], int | None]:
        """Each known term's number and IDF, and the smallest document frequency of any term, read
        once per snapshot (a question asks for its terms' weights, then their numbers)."""
        kept = self._session.snapshot()
        if kept is None:
            kept = {}
        wanted = sorted({t for t in question_terms if ("term", t) not in kept})
        if wanted or "rarest" not in kept:
            docs = self._session.count("passages")
            kept.update(dict.fromkeys((("term", t) for t in wanted), None))
            found, rarest = self._session.pipelined([
                ("SELECT term, id, df FROM qa_terms WHERE term = ANY(%(t)s)", {"t": wanted}),
                ("SELECT min(df) FROM qa_terms WHERE df > 0", {})])
            kept["rarest"] = rarest[0][0]
            kept.update({("term", t): (int(number), _idf(docs, df) if df > 0 else None)
                         for t, number, df in found})
        return {t: kept["term", t] for t in question_terms if kept["term", t] is not None}, kept["rarest"]

    def term_weights(self, question_terms: Sequence[str]) -> dict[str, float]:
        known, rarest = self._terms(question_terms)
        top_idf = _idf(self._session.count("passages"), rarest) if rarest else 1.0
        unknown = 1.5 * top_idf
        return {t: (known[t][1] if t in known else None) or unknown for t in question_terms}

    def term_numbers(self, question_terms: Sequence[str]) -> dict[str, int]:
        return {t: number for t, (number, _) in self._terms(question_terms)[0].items()}

    def word_numbers(self, question_words: Sequence[str]) -> dict[str, int]:
        return {str(w): int(n) for w, n in self._session.query(
            "SELECT word, id FROM qa_words WHERE word = ANY(%s)", (sorted(set(question_words)),))}

    def sentence_terms(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._rows.sentence_terms(rows)

    def close(self) -> None:
        """The session is closed with the rows."""


def _array(vector: Any) -> np.ndarray:
    return np.asarray(vector.to_numpy() if hasattr(vector, "to_numpy") else vector, dtype=np.float32)


def _idf(passages: int, df: int) -> float:
    return math.log(1 + (passages - df + 0.5) / (df + 0.5))


def open_store(database: Database) -> Index:
    """The store as an `Index` for the answer layer; IndexStoreError when it holds no articles."""
    session = Session(database)
    try:
        manifest = Manifest(**session.one("SELECT value FROM qa_meta WHERE key = 'manifest'"))
    except psycopg.errors.UndefinedTable:
        session._drop()
        raise IndexStoreError(f"the database at {database.shown} has no qa-bot store yet",
                              hint="run `qa-bot index` with the writer role") from None
    if manifest.format != FORMAT_VERSION:
        raise IndexStoreError(f"the store was written by another version of qa-bot (format "
                              f"{manifest.format}, this one reads {FORMAT_VERSION})",
                              hint="run `qa-bot index`")
    rows = PgRows(session)
    return Index(manifest, rows, PgVectors(session, "qa_passages", manifest.dim),
                 PgVectors(session, "qa_sentences", manifest.dim, rows), PgLexicon(session, rows),
                 reading=session.reading)


def open_pg_index(database: Database, settings: Settings, encoder: Encoder, report: Report,
                  progress: Progress | None, write: bool, rebuild: bool,
                  tagger: EntityTagger | None) -> tuple[Index, IndexUpdate]:
    """`index.open_index` for the shared store: the writer ingests first; a reader only reads."""
    update = IndexUpdate("loaded", 0, 0, ())
    if write:
        update = ingest(database, settings, encoder, tagger or EntityTagger(), report, progress, rebuild)
    index = open_store(database)
    if len(index.articles) == 0:
        raise IndexStoreError(f"the store at {database.shown} holds no articles",
                              hint="run `qa-bot index` with the writer role and QA_BOT_CORPUS")
    if write and update.action != "loaded":
        report(f"Store {update.action}: {len(index.articles)} articles, {len(index.chunks)} passage rows "
               f"({update.embedded} texts embedded).")
    return index, update

