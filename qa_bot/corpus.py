"""Article files on disk -> cleaned Articles with their metadata; unreadable files are skipped."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from qa_bot.cleaning import (
    CleanArticle,
    clean,
    furniture_lines,
    headline_key,
    line_counts,
    plain_markdown,
    teaser_keys,
    without_teasers,
)
from qa_bot.errors import CorpusError
from qa_bot.types import ArticleInfo

TEXT_SUFFIXES = (".txt",)
MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
JSON_SUFFIXES = (".json", ".jsonl")
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + MARKDOWN_SUFFIXES + HTML_SUFFIXES + JSON_SUFFIXES


@dataclass(frozen=True)
class SourceFile:
    """One article file and a fingerprint of its bytes (what staleness checks compare)."""

    folder: Path
    name: str
    fingerprint: str
    stamp: tuple[int, int] = (0, 0)  # size and modification time (ns) when it was fingerprinted

    @property
    def path(self) -> Path:
        return self.folder / self.name


@dataclass(frozen=True)
class Article:
    """An article's metadata and its cleaned text, which every passage offset points into."""

    info: ArticleInfo
    text: str


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of the corpus, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class Corpus:
    """The articles read from a folder, and the files that could not be used."""

    articles: tuple[Article, ...]
    skipped: tuple[SkippedFile, ...]
    # What cleaning a file added later needs to know of these texts (see `load_added`):
    lines: Mapping[str, int] = field(default_factory=dict)  # short line key -> texts holding it
    headlines: frozenset[str] = frozenset()  # the keys of their headlines
    teasers: frozenset[int] = frozenset()  # `key_hash` of each paragraph that a headline would remove


class IndexedLines(Protocol):
    """What an index keeps of its texts' lines, so that an added file is cleaned without them."""

    def line_counts(self, keys: Collection[str]) -> dict[str, int]:
        """How many indexed texts hold each of these short lines (absent: none)."""
        ...

    def headlines_among(self, keys: Collection[str]) -> set[str]:
        """Which of these keys are headlines of indexed articles."""
        ...

    def teasers_among(self, keys: Collection[str]) -> set[str]:
        """Which of these keys are paragraphs of indexed articles that such a headline removes."""
        ...


class RecleanNeeded(Exception):
    """Added files change how an indexed text is cleaned; the message says what."""


def scan(folder: Path, known: Mapping[str, tuple[str, tuple[int, int]]] | None = None,
         ) -> tuple[SourceFile, ...]:
    """List the article files of a folder with their fingerprints, without parsing them. A file
    whose size and modification time are those `known` gives (name -> fingerprint, stamp) keeps
    its fingerprint unread, as make and rsync judge files: an unchanged corpus is not re-read."""
    if not folder.is_dir():
        raise CorpusError(
            f"corpus folder {folder} does not exist",
            hint="pass --corpus DIR or set QA_BOT_CORPUS to a folder of articles",
        )
    # Listing 174,130 unchanged files: 3.9 s reading them through Path objects, 1.35 s this way.
    with os.scandir(folder) as listing:
        entries = sorted((e for e in listing if os.path.splitext(e.name)[1].lower() in SUPPORTED_SUFFIXES),
                         key=lambda e: e.name)
    found = []
    for entry in entries:
        try:
            if not entry.is_file():
                continue
            status = entry.stat()
        except OSError as e:
            found.append(SourceFile(folder, entry.name, f"unreadable:{e.strerror}"))
            continue
        stamp = (status.st_size, status.st_mtime_ns)
        fingerprint, seen = (known or {}).get(entry.name, ("", (-1, -1)))
        if seen != stamp:
            fingerprint = _fingerprint(folder / entry.name)
        found.append(SourceFile(folder, entry.name, fingerprint, stamp))
    return tuple(found)


def load_corpus(folder: Path) -> Corpus:
    """Read, decode and clean every supported file; raise CorpusError when none is usable."""
    raw, skipped = _read_files(scan(folder))
    lines = line_counts(r.text for _, records in raw for r in records)
    articles, headlines, teasers = _cleaned(raw, furniture_lines(lines))
    if not articles:
        found = f" ({len(skipped)} unusable: {', '.join(s.name for s in skipped)})" if skipped else ""
        raise CorpusError(
            f"no readable article in {folder}{found}",
            hint=f"add {', '.join(SUPPORTED_SUFFIXES)} files with UTF-8 text",
        )
    return Corpus(tuple(articles), tuple(skipped), lines, headlines, teasers)


def load_added(files: Sequence[SourceFile], indexed: IndexedLines) -> Corpus:
    """Read and clean files added to an indexed corpus, judging their repeated lines and teasers
    against the indexed texts as well, without reading those again. Raises RecleanNeeded when a
    line of the new files is also in exactly one indexed text: it is furniture now, and that text
    must be cleaned anew; likewise when an added article's headline is a paragraph of an indexed
    one (a teaser for it). The Corpus holds only the new articles (none when no file is usable)."""
    raw, skipped = _read_files(files)
    lines = line_counts(r.text for _, records in raw for r in records)
    before = indexed.line_counts(lines.keys())
    if now_repeated := sorted(k for k in lines if before.get(k) == 1):
        raise RecleanNeeded(f"the line {now_repeated[0]!r} is now in two or more files")
    articles, headlines, teasers = _cleaned(raw, furniture_lines(lines + Counter(before)), indexed)
    if teased := sorted(indexed.teasers_among(headlines)):
        raise RecleanNeeded(f"the headline {teased[0]!r} of an added article is a line of an indexed one")
    return Corpus(tuple(articles), tuple(skipped), lines, headlines, teasers)


def key_hash(key: str) -> int:
    """A line's key as a 64-bit number, for the index to store compactly."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def _read_files(files: Sequence[SourceFile]) -> tuple[list[tuple[str, list[_Record]]], list[SkippedFile]]:
    raw: list[tuple[str, list[_Record]]] = []
    skipped: list[SkippedFile] = []
    for source in files:
        try:
            raw.append((source.name, _read_records(source.path)))
        except _Unusable as why:
            skipped.append(SkippedFile(source.name, str(why)))
    return raw, skipped


def _cleaned(raw: list[tuple[str, list[_Record]]], furniture: frozenset[str],
             indexed: IndexedLines | None = None) -> tuple[list[Article], frozenset[str], frozenset[int]]:
    """The articles of the files' records, cleaned; the keys of their headlines; and the hashed
    keys of their paragraphs that another article's headline would remove."""
    numbered = [(article_id, record) for name, records in raw
                for article_id, record in _number(name, records)]
    cleaned = [clean(record.text, furniture) for _, record in numbered]
    headlines = frozenset(headline_key(record.title or article.title)
                          for (_, record), article in zip(numbered, cleaned, strict=True)) - {""}
    # A line of one article that is another's headline is a teaser for it.
    teasing = headlines
    if indexed is not None:
        judged = set().union(*(teaser_keys(a) for a in cleaned))
        teasing = headlines | indexed.headlines_among(judged - headlines)
    kept = [without_teasers(article, teasing) for article in cleaned]
    articles = [_to_article(article_id, record, article)
                for (article_id, record), article in zip(numbered, kept, strict=True)]
    teasers = frozenset(key_hash(k) for article in kept for k in teaser_keys(article))
    return [a for a in articles if a.text.strip()], headlines, teasers


@dataclass(frozen=True)
class _Record:
    text: str
    title: str | None = None
    outlet: str | None = None
    author: str | None = None
    published: str | None = None
    url: str | None = None


class _Unusable(Exception):
    """A file that cannot be read as articles; the message says why."""


def _fingerprint(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        return f"unreadable:{e.strerror}"


def _number(name: str, records: list[_Record]) -> list[tuple[str, _Record]]:
    if len(records) == 1:
        return [(name, records[0])]
    return [(f"{name}#{i}", r) for i, r in enumerate(records, start=1)]


def _read_records(path: Path) -> list[_Record]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise _Unusable(f"unreadable ({e.strerror})") from None
    if not data.strip():
        raise _Unusable("empty file")
    if b"\x00" in data:
        raise _Unusable("binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _Unusable(f"not UTF-8 text (bad byte at offset {e.start})") from None
    suffix = path.suffix.lower()
    if suffix in HTML_SUFFIXES:
        return [_from_html(text)]
    if suffix in JSON_SUFFIXES:
        return _from_json(text, jsonl=suffix == ".jsonl")
    if suffix in MARKDOWN_SUFFIXES:
        return [_from_markdown(text)]
    return [_Record(text)]


def _from_html(html: str) -> _Record:
    import trafilatura

    extracted = trafilatura.extract(
        html, output_format="json", with_metadata=True, include_comments=False, include_tables=False
    )
    if not extracted:
        raise _Unusable("HTML page with no article text found")
    meta = json.loads(extracted)
    # trafilatura's "source" is the page URL, not the outlet.
    return _record_from_fields({
        "title": meta.get("title"), "text": meta.get("text"), "author": meta.get("author"),
        "outlet": meta.get("sitename") or meta.get("hostname"), "published": meta.get("date"),
        "url": meta.get("source"),
    })


_MD_BLOCK = re.compile(r"^\s{0,3}(?:#{1,6}\s+|>\s?)", re.MULTILINE)
_MD_RULE = re.compile(r"^\s{0,3}(?:[-*_]\s*){3,}$", re.MULTILINE)


def _from_markdown(text: str) -> _Record:
    """Markdown as plain text: images go, links keep their words, marks around words go."""
    title = next((plain_markdown(line[2:]).strip() for line in text.splitlines() if line.startswith("# ")),
                 None)
    return _Record(plain_markdown(_MD_RULE.sub("", _MD_BLOCK.sub("", text))), title=title)


def _from_json(text: str, jsonl: bool) -> list[_Record]:
    try:
        items: Any = [json.loads(line) for line in text.splitlines() if line.strip()] if jsonl \
            else json.loads(text)
    except json.JSONDecodeError as e:
        raise _Unusable(f"invalid JSON (line {e.lineno}: {e.msg})") from None
    items = items if isinstance(items, list) else [items]
    records = [_record_from_fields(item) for item in items if isinstance(item, dict)]
    records = [r for r in records if r.text.strip()]
    if not records:
        raise _Unusable('no record with a "text" field')
    return records


def _record_from_fields(item: dict[str, Any]) -> _Record:
    def field(*names: str) -> str | None:
        for name in names:
            value = item.get(name)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return None

    text = field("text", "body", "content", "raw_text") or ""
    title = field("title", "headline")
    if title and not text.lstrip().startswith(title):
        text = f"{title}\n\n{text}"
    return _Record(
        text=text,
        title=title,
        outlet=field("outlet", "source", "sitename", "publisher"),
        author=field("author", "byline"),
        published=field("published", "date", "published_at", "publication_date"),
        url=field("url", "link"),
    )


def _to_article(article_id: str, record: _Record, cleaned: CleanArticle) -> Article:
    info = ArticleInfo(
        id=article_id,
        title=record.title or cleaned.title,
        outlet=record.outlet or cleaned.outlet,
        author=record.author or cleaned.author,
        published=(record.published or cleaned.published or "")[:10] or None,
        url=record.url,
    )
    return Article(info, cleaned.text)

