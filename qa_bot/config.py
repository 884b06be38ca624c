"""All settings in one frozen dataclass, with QA_BOT_* environment overrides."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then QA_BOT_<FIELD> variables, then explicit overrides (None is ignored)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(env_name(f.name))
            if raw is not None and raw.strip():
                values[f.name] = _parse(f.name, raw.strip(), _FIELD_TYPES[f.name])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)


_FIELD_TYPES: dict[str, Callable[[str], Any]] = {
    f.name: Path if isinstance(f.default, Path) else type(f.default) for f in fields(Settings)
}


def env_name(field_name: str) -> str:
    """The environment variable that overrides a field."""
    meta = next(f.metadata for f in fields(Settings) if f.name == field_name)
    return str(meta.get("env", ENV_PREFIX + field_name.upper()))


def _parse(name: str, raw: str, kind: Callable[[str], Any]) -> Any:
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(
            f"{env_name(name)}={raw!r} is not a valid {getattr(kind, '__name__', 'value')}",
            hint="fix or unset the variable",
        ) from None
