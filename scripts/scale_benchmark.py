"""The curve: how opening, memory, question latency and vector recall grow with the index.

    .venv/bin/python scripts/scale_benchmark.py 10000 100000 [1000000] [--keep DIR]

For each size it writes an index with the project's own writer (`index.save_index`): articles
made of real news sentences (the seeds, corpus2 and the newsroom sets, with their stored entity
tags) recombined at random, chunked by `chunk_article`, and synthetic vectors standing
in for embeddings, so only the model's encoding is left out: each sentence's vector is its real
embedding plus a little noise (so repeated sentences differ), each passage's the mean of its
sentences'. Recall is measured with the real questions' embeddings as queries. Syndicated copies
are not searched for (random recombination makes every passage look syndicated). Then a fresh
process opens the index and answers real questions, and prints start-up time, resident memory,
warm p50/p95, recall@10 of the vector search against exact search, and the index's size on disk.
Last, another fresh process adds one real article (a seed file) to a copy of the index, made of
hard links, the way `qa-bot index` appends an added file, and prints how long that took from
its start to the new version opened (listing the corpus folder is not part of it: the synthetic
index has no folder).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SOURCES = [REPO / "seeds", REPO / "tests/data/corpus2", REPO / "tests/data/newsroom_tune",
           REPO / "tests/data/newsroom_holdout"]
NEAR = 0.01  # cosine tolerance of the epsilon recall
QUESTIONS = [REPO / "tests/data/dev_questions.jsonl", REPO / "tests/data/extra_questions.jsonl"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("passages", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--keep", type=Path, help="write the indexes here (default: a temporary folder)")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child's side
    parser.add_argument("--measure-append", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    if args.measure_append:
        print(json.dumps(measure_append(args.measure_append)))
        return
    scratch = tempfile.TemporaryDirectory()
    root = args.keep or Path(scratch.name)
    sentences = source_sentences(root / "sources")
    for n in args.passages:
        folder = root / f"scale-{n}"
        started = time.perf_counter()
        if not (folder / "CURRENT").exists():
            write_scaled_index(folder, n, sentences)
        written = time.perf_counter() - started
        child = subprocess.run([sys.executable, __file__, "--measure", str(folder)], cwd=REPO,
                               check=True, capture_output=True, text=True)
        result = json.loads(child.stdout.strip().splitlines()[-1])
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
        print(f"{result['passages']:>9,} passages ({result['sentences']:,} sentences, "
              f"{result['articles']:,} articles): written in {written:.0f} s, {size:,.0f} MiB on disk")
        print(f"    open {result['open_s']:.2f} s, resident after open {result['rss_open_mib']:.0f} MiB "
              f"({result['anon_open_mib']:.0f} private), after the questions {result['rss_after_mib']:.0f} "
              f"MiB ({result['anon_after_mib']:.0f} private; the rest is mapped index files)")
        print(f"    warm question p50 {result['p50_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms "
              f"({result['asks']} asks)")
        print(f"    vector search: passages {result['passage_plan']}, recall@10 "
              f"{result['passage_recall']:.3f} (within {NEAR}: {result['passage_near_recall']:.3f}); "
              f"sentences {result['sentence_plan']}, recall@10 {result['sentence_recall']:.3f} "
              f"(within {NEAR}: {result['sentence_near_recall']:.3f})", flush=True)
        with tempfile.TemporaryDirectory(dir=root) as scratch_copy:
            copy = Path(scratch_copy) / "index"
            subprocess.run(["cp", "-al", str(folder), str(copy)], check=True)
            child = subprocess.run([sys.executable, __file__, "--measure-append", str(copy)], cwd=REPO,
                                   check=True, capture_output=True, text=True)
        added = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"    add one article: {added['append_s']:.2f} s in a fresh process ({added['embedded']} "
              f"texts embedded, {added['written_mib']:.1f} MiB written, peak {added['peak_mib']:.0f} MiB)",
              flush=True)


Source = tuple[str, tuple, np.ndarray]  # a sentence's text, its entities and its real embedding


def source_sentences(index_dir: Path) -> list[Source]:
    """Every sentence of the source corpora with its entity tags and vector, from real indexes."""
    from qa_bot.answer import Answerer
    from qa_bot.config import Settings

    found: list[Source] = []
    for source in SOURCES:
        index = Answerer.open(Settings(corpus_dir=source, index_dir=index_dir / source.name)).index
        vectors = index.sentence_vectors.vectors()
        found += [(index.sentence_text(r), index.sentence_entities[r], np.array(vectors[r]))
                  for r in range(len(index.sentences))]
    return [s for s in found if len(s[0].split()) >= 6]


def write_scaled_index(folder: Path, passages: int, sentences: list[Source]) -> None:
    """An index of about `passages` passages of recombined real sentences, with synthetic vectors."""
    from qa_bot.encoder import Encoder
    from qa_bot.index import FORMAT_VERSION, Built, Manifest, save_index
    from qa_bot.lexical import build_lexicon

    rows, passage_vectors, sentence_vectors = scaled_rows(passages, sentences)
    texts = {a.info.id: a.text for a in rows.articles}
    encoder = Encoder()
    manifest = Manifest(FORMAT_VERSION, encoder.name, encoder.dim, 3, 1, 0, "synthetic", {}, "")
    built = Built(manifest, rows, passage_vectors, sentence_vectors,
                  build_lexicon([c.text for c in rows.chunks], [texts[a][s:e] for a, s, e in rows.sentences]))
    save_index(built, folder, encoder.word_vectors()[0].keys())


def scaled_rows(passages: int, sentences: list[Source]) -> tuple[Any, np.ndarray, np.ndarray]:
    """About `passages` passages of recombined real sentences (`rows.Rows`, no syndicated copies),
    with synthetic passage and sentence vectors."""
    from qa_bot.chunking import Chunk, chunk_article
    from qa_bot.corpus import Article
    from qa_bot.rows import Rows, Sentence
    from qa_bot.types import ArticleInfo

    rng = random.Random(passages)
    noise = np.random.default_rng(passages)
    known = {text: i for i, (text, _, _) in enumerate(sentences)}
    articles: list[Article] = []
    chunks: list[Chunk] = []
    rows: dict[Sentence, int] = {}
    chunk_sentences: list[list[int]] = []
    while len(chunks) < passages:
        article_id = f"synthetic_{len(articles):07d}.txt"
        paragraphs = [" ".join(s[0] for s in rng.sample(sentences, rng.randint(2, 4)))
                      for _ in range(rng.randint(3, 7))]
        text = "\n\n".join(paragraphs)
        articles.append(Article(ArticleInfo(article_id, None, "Synthetic Wire", None, None), text))
        for chunk in chunk_article(article_id, text):
            chunks.append(chunk)
            chunk_sentences.append([rows.setdefault(Sentence(article_id, s, e), len(rows))
                                    for s, e in chunk.sentences])
    texts = {a.info.id: a.text for a in articles}
    source_of = np.array([known.get(texts[a][s:e], -1) for a, s, e in rows])
    entities = [sentences[i][1] if i >= 0 else () for i in source_of.tolist()]
    real = np.stack([v for _, _, v in sentences]).astype(np.float32)
    dim = real.shape[1]
    sentence_vectors = np.empty((len(rows), dim), dtype=np.float32)
    for start in range(0, len(rows), 100_000):
        block = source_of[start: start + 100_000]
        vectors = np.where(block[:, None] >= 0, real[block], 0) \
            + noise.normal(scale=0.25 / np.sqrt(dim), size=(len(block), dim)).astype(np.float32)
        sentence_vectors[start: start + len(block)] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    passage_vectors = np.stack([sentence_vectors[m].mean(axis=0) for m in chunk_sentences])
    passage_vectors /= np.linalg.norm(passage_vectors, axis=1, keepdims=True)
    return (Rows(articles, chunks, list(rows), chunk_sentences, entities, [[] for _ in chunks]),
            passage_vectors, sentence_vectors)


def measure(folder: Path) -> dict[str, object]:
    """Open the index in this fresh process, then time real questions and the vector recall."""
    started = time.perf_counter()
    import faiss

    from qa_bot.allocator import reuse_freed_memory
    from qa_bot.answer import Answerer
    from qa_bot.config import Settings
    from qa_bot.encoder import Encoder
    from qa_bot.index import IndexUpdate, load_index

    reuse_freed_memory()  # as `qa-bot` does first
    encoder = Encoder()
    answerer = Answerer(Settings(index_dir=folder), encoder, load_index(folder),
                        IndexUpdate("loaded", 0, 0, ()))
    open_s = time.perf_counter() - started
    rss_open, anon_open = _rss_mib(), _rss_mib("RssAnon")
    questions, latencies = timed_questions(answerer)
    rss_after, anon_after = _rss_mib(), _rss_mib("RssAnon")
    index = answerer.index
    recalls, near = [], []
    queries = encoder.encode_questions(questions[:8])
    for start in range(8, len(questions), 8):
        queries = np.vstack([queries, encoder.encode_questions(questions[start: start + 8])])
    for store in (index.passage_vectors, index.sentence_vectors):
        every = np.asarray(store.vectors())
        best, exact = faiss.knn(queries, every, 10, metric=faiss.METRIC_INNER_PRODUCT)
        found = [store.search(q, 10) for q in queries]
        recalls.append(sum(len(set(rows.tolist()) & set(e.tolist()))
                           for (_, rows), e in zip(found, exact, strict=True)) / exact.size)
        # ann-benchmarks' "epsilon recall": a row counts when it is as close as the exact 10th
        # within 0.01 (here in cosine): near-duplicates can swap places in the strict one.
        near.append(sum(int((scores >= b[-1] - NEAR).sum())
                        for (scores, _), b in zip(found, best, strict=True)) / exact.size)
    return {
        "articles": len(index.articles), "passages": len(index.chunks), "sentences": len(index.sentences),
        "open_s": open_s, "rss_open_mib": rss_open, "rss_after_mib": rss_after,
        "anon_open_mib": anon_open, "anon_after_mib": anon_after,
        "p50_ms": statistics.median(latencies), "p95_ms": latencies[int(0.95 * len(latencies)) - 1],
        "asks": len(latencies), "passage_recall": recalls[0], "sentence_recall": recalls[1],
        "passage_near_recall": near[0], "sentence_near_recall": near[1],
        "passage_plan": index.passage_vectors.plan.kind, "sentence_plan": index.sentence_vectors.plan.kind,
    }


def timed_questions(answerer: Any) -> tuple[list[str], list[float]]:
    """The real questions, and how long each took (ms, sorted) asked twice after one warm-up."""
    questions = [json.loads(line)["q"] for path in QUESTIONS for line in path.read_text().splitlines()
                 if line.strip()]
    answerer.ask(questions[0])
    latencies = []
    for question in questions * 2:
        t = time.perf_counter()
        answerer.ask(question)
        latencies.append((time.perf_counter() - t) * 1000)
    return questions, sorted(latencies)


def measure_append(folder: Path) -> dict[str, object]:
    """Add a seed article to the index in this fresh process, as `qa-bot index` would."""
    started = time.perf_counter()
    from dataclasses import replace

    from qa_bot.allocator import reuse_freed_memory
    from qa_bot.config import Settings
    from qa_bot.corpus import scan
    from qa_bot.encoder import Encoder
    from qa_bot.entities import EntityTagger
    from qa_bot.index import CURRENT, append_files, load_index

    reuse_freed_memory()
    encoder = Encoder()
    previous = load_index(folder)
    article = next(f for f in scan(REPO / "seeds") if f.name.startswith("002_"))
    expected = replace(previous.manifest, files=previous.manifest.files | {article.name: article.fingerprint},
                       stamps=previous.manifest.stamps | {article.name: list(article.stamp)})
    appended = append_files(Settings(corpus_dir=REPO / "seeds", index_dir=folder), encoder, EntityTagger(),
                            previous, expected, [article], encoder.word_vectors()[0].keys())
    seconds = time.perf_counter() - started
    if appended is None:
        raise SystemExit("the index refused the article: it would have been updated whole")
    version = folder / (folder / CURRENT).read_text().strip()
    written = sum(f.stat().st_size for f in version.rglob("*") if f.is_file() and f.stat().st_nlink == 1)
    return {"append_s": seconds, "embedded": appended[1].embedded, "written_mib": written / 2**20,
            "peak_mib": _rss_mib("VmHWM")}  # ru_maxrss would count the parent's, inherited


def _rss_mib(field: str = "VmRSS") -> float:
    """Resident memory (VmRSS), or one part of it: RssAnon is the process's own, RssFile the pages
    of mapped files (shared with other processes, and given back first under memory pressure)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split(f"{field}:", 1)[1].split()[0]) / 1024


if __name__ == "__main__":
    main()
