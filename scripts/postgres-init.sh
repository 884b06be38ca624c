#!/usr/bin/env bash
# First start of the compose file's `db` service (pgvector/pgvector runs /docker-entrypoint-initdb.d):
# create qa-bot's roles in $POSTGRES_DB, with the passwords from the files the compose file mounts.
set -euo pipefail
sed "s/DATABASE news/DATABASE \"$POSTGRES_DB\"/g" /qa-bot/postgres_roles.sql \
    | psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v writer="$(cat /run/secrets/qa_writer_password)" -v reader="$(cat /run/secrets/qa_reader_password)" <<'SQL'
ALTER ROLE qa_writer PASSWORD :'writer';
ALTER ROLE qa_reader PASSWORD :'reader';
SQL
