"""Measure start-up, indexing and warm-question latency on this machine, and print the numbers.

    .venv/bin/python scripts/benchmark.py [--corpus seeds] [--repeat 5]
    .venv/bin/python scripts/benchmark.py --ingest   # indexing rate against the raw encoder

`--ingest` indexes the repository's real articles (the seeds, corpus2 and both newsroom sets) from
scratch in a fresh process, and encodes the texts that indexing embedded with
`SentenceTransformer.encode` (batch 64) in another: their rates, and indexing's peak memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa_bot.config import Settings

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=REPO / "seeds")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--synthetic", type=int, metavar="N",
                        help="add N generated articles (seeded) to a copy of the corpus, for scale")
    parser.add_argument("--ingest", action="store_true", help="measure the indexing rate instead")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the measured side of --ingest
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_ingest_child(args.child, args.corpus)))
        return
    if args.ingest:
        _ingest()
        return
    scratch = tempfile.TemporaryDirectory()
    if args.synthetic:
        args.corpus = _with_synthetic(args.corpus, args.synthetic, Path(scratch.name))

    started = time.perf_counter()
    from qa_bot.answer import Answerer
    from qa_bot.config import Settings
    from qa_bot.encoder import Encoder
    from qa_bot.entities import EntityTagger

    encoder = Encoder()
    model_load = time.perf_counter() - started
    started = time.perf_counter()
    tagger = EntityTagger()
    tagger.tag(["Warm up."])  # spaCy's import and pipeline load, paid once per indexing process
    tagger_load = time.perf_counter() - started

    questions = [
        json.loads(line)["q"]
        for name in ("dev_questions.jsonl", "extra_questions.jsonl")
        for line in (REPO / "tests" / "data" / name).read_text().splitlines() if line.strip()
    ]
    with tempfile.TemporaryDirectory() as index_dir:
        settings = Settings(corpus_dir=args.corpus, index_dir=Path(index_dir))
        t = time.perf_counter()
        built = Answerer.open(settings, encoder=encoder, tagger=tagger)
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        answerer = Answerer.open(settings, encoder=encoder, tagger=tagger)
        reopen_s = time.perf_counter() - t
        assert answerer.update.embedded == 0, "an unchanged corpus was re-embedded"

        cold = _cold_asks(settings, questions[0], repeat=3)
        answerer.ask(questions[0])  # first call pays one-off lazy initialisation
        latencies = []
        for _ in range(args.repeat):
            for q in questions:
                t = time.perf_counter()
                answerer.ask(q)
                latencies.append((time.perf_counter() - t) * 1000)
    latencies.sort()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"corpus: {args.corpus} ({len(built.index.articles)} articles, "
          f"{len(built.index.chunks)} passages, {len(built.index.sentences)} sentences)")
    print(f"model load (import + weights):    {model_load:6.2f} s")
    print(f"entity tagger load (spaCy):       {tagger_load:6.2f} s (only when something needs tagging)")
    print(f"index build from scratch:         {build_s:6.2f} s ({built.update.embedded} texts embedded, "
          f"{len(built.index.sentences)} sentences tagged)")
    print(f"reopen unchanged index:           {reopen_s * 1000:6.0f} ms (0 texts embedded)")
    print(f"warm question, {len(latencies)} asks:        p50 {statistics.median(latencies):5.1f} ms  "
          f"p95 {latencies[int(0.95 * len(latencies)) - 1]:5.1f} ms  max {latencies[-1]:5.1f} ms")
    print(f"peak resident memory:             {peak_mib:6.0f} MiB")
    print(f"cold one-shot `qa-bot ask`:       {statistics.median(w for w, _ in cold):6.2f} s wall (median of "
          f"{len(cold)}), {max(m for _, m in cold):.0f} MiB peak")


def _cold_asks(settings: Settings, question: str, repeat: int) -> list[tuple[float, float]]:
    """Wall seconds and peak MiB of whole `qa-bot ask` processes against the index just built."""
    import subprocess
    import sys

    # The child reports its own high-water mark (VmHWM) as it exits; getrusage would count the
    # memory this process had when it forked the child.
    report = ("import atexit, sys; from qa_bot.cli import main; atexit.register(lambda: print(next("
              "l for l in open('/proc/self/status') if l.startswith('VmHWM')), file=sys.stderr)); "
              "sys.exit(main(sys.argv[1:]))")
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        command = [sys.executable, "-c", report, "ask", "--corpus", str(settings.corpus_dir),
                   "--index-dir", str(settings.index_dir), question]
        done = subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)
        peak_kib = int(done.stderr.rsplit("VmHWM:", 1)[1].split()[0])
        runs.append((time.perf_counter() - started, peak_kib / 1024))
    return runs


INGEST_CORPORA = [REPO / "seeds", *(REPO / "tests" / "data" / name
                                    for name in ("corpus2", "newsroom_tune", "newsroom_holdout"))]


def _ingest() -> None:
    """Index real articles from scratch, then encode the same texts with the raw encoder."""
    import shutil
    import subprocess
    import sys

    with tempfile.TemporaryDirectory() as scratch:
        corpus = Path(scratch) / "corpus"
        corpus.mkdir()
        for folder in INGEST_CORPORA:
            for article in folder.iterdir():
                shutil.copy(article, corpus / f"{folder.name}_{article.name}")
        results = {}
        for side in ("index", "raw"):
            child = subprocess.run([sys.executable, __file__, "--child", side, "--corpus", str(corpus)],
                                   cwd=REPO, check=True, capture_output=True, text=True)
            results[side] = json.loads(child.stdout.strip().splitlines()[-1])
    index, raw = results["index"], results["raw"]
    print(f"corpus: {index['articles']} articles of {len(INGEST_CORPORA)} sets, {index['texts']} texts "
          f"(passages and sentences) embedded, {index['sentences']} sentences tagged")
    print(f"`qa-bot index` from scratch:       {index['seconds']:6.2f} s  "
          f"{index['texts'] / index['seconds']:5.0f} texts/s  peak {index['peak_mib']:.0f} MiB "
          "(model loaded before timing)")
    print(f"SentenceTransformer.encode, b=64: {raw['seconds']:6.2f} s  "
          f"{raw['texts'] / raw['seconds']:5.0f} texts/s")
    print(f"indexing rate / raw encoder rate: {raw['seconds'] / index['seconds']:6.2f}x")


def _ingest_child(side: str, corpus: Path) -> dict[str, float]:
    from qa_bot.config import Settings
    from qa_bot.encoder import Encoder, leans_to
    from qa_bot.entities import EntityTagger
    from qa_bot.index import open_index

    encoder = Encoder()
    with tempfile.TemporaryDirectory() as index_dir:
        texts_file = Path(tempfile.gettempdir()) / "qa-bot-ingest-texts.json"
        if side == "raw":
            texts = json.loads(texts_file.read_text())
            model = encoder._sentence_transformer()
            model.encode(["Warm up."] * 64, batch_size=64)
            started = time.perf_counter()
            model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
            return {"seconds": time.perf_counter() - started, "texts": len(texts)}
        tagger = EntityTagger()
        tagger.tag(["Warm up."])
        encoder.encode(["Warm up."] * 64)  # loads (and the first time exports) the bulk model
        started = time.perf_counter()
        index, update = open_index(Settings(corpus_dir=corpus, index_dir=Path(index_dir)), encoder,
                                   tagger=tagger)
        seconds = time.perf_counter() - started
        peak = int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) / 1024
        sentences = [(index.sentence_text(r), index.sentence_article(r).info.title)
                     for r in range(len(index.sentences))]
        texts = sorted({c.text for c in index.chunks} | {t for t, _ in sentences}
                       | {h for t, title in sentences if (h := leans_to(title, t)) is not None})
        texts_file.write_text(json.dumps(texts))
        assert update.embedded == len(texts), "every text should have been embedded once"
        return {"seconds": seconds, "texts": len(texts), "peak_mib": peak,
                "articles": len(index.articles), "sentences": len(index.sentences)}


def _with_synthetic(corpus: Path, n: int, scratch: Path) -> Path:
    """A copy of the corpus plus n articles of random words: the sizes of a real corpus, no meaning."""
    import random
    import shutil

    rng = random.Random(42)
    vocabulary = [f"{rng.choice('bcdfghklmnprstvz')}{rng.choice('aeiou')}{rng.choice('lmnrst')}"
                  f"{rng.choice('aeiou')}{rng.choice('bcdfgklmnprst')}" for _ in range(5000)]
    folder = scratch / "corpus"
    shutil.copytree(corpus, folder)
    for i in range(n):
        paragraphs = [" ".join(" ".join(rng.choices(vocabulary, k=rng.randint(8, 25))).capitalize() + "."
                               for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(4, 10))]
        (folder / f"synthetic_{i:05d}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    return folder


if __name__ == "__main__":
    main()
