"""All settings in one frozen dataclass, with QA_BOT_* environment overrides."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from qa_bot.errors import ConfigError

ENV_PREFIX = "QA_BOT_"


@dataclass(frozen=True)
class Settings:
    """What the pipeline needs to know; the core takes it as an argument and never reads env."""

    corpus_dir: Path = field(
        default=Path("seeds"),
        metadata={"help": "folder of articles (.txt .md .html .json .jsonl)", "env": "QA_BOT_CORPUS"},
    )
    index_dir: Path = field(
        default=Path("embeddings"), metadata={"help": "folder where the built index is kept"}
    )
    top_k: int = field(default=5, metadata={"help": "passages returned per question"})
    chunk_sentences: int = field(default=3, metadata={"help": "sentences per passage"})
    chunk_overlap: int = field(
        default=1, metadata={"help": "sentences shared by neighbouring passages"}
    )
    batch_size: int = field(default=16, metadata={"help": "texts embedded per model call"})
    min_confidence: float = field(
        default=0.39, metadata={"help": "below this confidence the bot says it found nothing"}
    )
    max_question_chars: int = field(default=2000, metadata={"help": "longest question accepted"})
    database_url: str = field(
        default="",
        metadata={"help": "PostgreSQL URL of a shared store (pgvector) used instead of index_dir; "
                          "e.g. postgresql://qa_reader@db/news", "secret": True},
    )
    database_password_file: str = field(
        default="", metadata={"help": "file holding the database password (kept out of the URL and logs)"}
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then QA_BOT_<FIELD> variables, then explicit overrides (None is ignored)."""
        return from_env(cls, environ, **overrides)


T = TypeVar("T")


def from_env(cls: type[T], environ: Mapping[str, str] | None = None, **overrides: Any) -> T:
    """A settings dataclass from its defaults, then its environment variables, then explicit
    overrides (None is ignored). A field's variable is QA_BOT_<FIELD> unless its metadata names
    another ("env"); its metadata may give a parser ("parse") for values that are not a Path, int,
    float or str."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        raw = environ.get(_env_name(f))
        if raw is not None and raw.strip():
            values[f.name] = _parse(f, raw.strip())
    values.update({k: v for k, v in overrides.items() if v is not None})
    return replace(cls(), **values)  # type: ignore[type-var]


def env_name(field_name: str, cls: type = Settings) -> str:
    """The environment variable that sets a field."""
    return _env_name(next(f for f in fields(cls) if f.name == field_name))


def _env_name(f: Field[Any]) -> str:
    return str(f.metadata.get("env", ENV_PREFIX + f.name.upper()))


def _parse(f: Field[Any], raw: str) -> Any:
    parse: Callable[[str], Any] = f.metadata.get("parse") or (
        Path if isinstance(f.default, Path) else type(f.default))
    try:
        return parse(raw)
    except ValueError as e:
        shown = "<hidden>" if f.metadata.get("secret") else repr(raw)
        detail = str(e) if f.metadata.get("parse") else f"not a valid {getattr(parse, '__name__', 'value')}"
        raise ConfigError(f"{_env_name(f)}={shown} is {detail}", hint="fix or unset the variable") from None
