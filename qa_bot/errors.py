"""Domain errors. Each message is written for the user; `hint` says how to fix it."""


class QABotError(Exception):
    """Base class: a problem the user can understand and act on."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class QuestionError(QABotError):
    """The question cannot be searched (empty, too long, no words, only a name)."""

    exit_code = 2


class CorpusError(QABotError):
    """The corpus folder is missing or holds no readable article."""

    exit_code = 2


class IndexStoreError(QABotError):
    """The index on disk is unusable and could not be rebuilt."""

    exit_code = 1


class ConfigError(QABotError):
    """A setting is missing or malformed (a bot token, say)."""

    exit_code = 2


class StoreUnavailable(QABotError):
    """The shared store (a database) cannot be reached, for now: asking again later may work."""

    exit_code = 1
