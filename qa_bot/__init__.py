"""qa-bot: answers questions about news articles with verbatim quoted passages."""

__version__ = "0.1.0"
