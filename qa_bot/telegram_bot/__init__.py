"""The Telegram front end, `qa-bot telegram`, over the core `Conversation` and `Answerer`.

settings (what can be configured; light to import), render (answers as Telegram HTML),
store (state kept across restarts), limits (rate limits), handlers (one per kind of update,
behind an access check), app (start-up, the update loop, shut-down).
"""
