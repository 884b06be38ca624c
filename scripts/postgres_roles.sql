-- Roles for a shared qa-bot store, run once by an administrator in the store's database ("news"):
--   psql "postgresql://admin@db/news" -f scripts/postgres_roles.sql
-- then give each role a password (\password qa_writer, \password qa_reader) or another login method.
-- qa_writer runs `qa-bot index` (creates and migrates the qa_* tables, ingests); qa_reader is what
-- the bots and consoles connect as: it can read every qa_* table and write nothing.
CREATE EXTENSION IF NOT EXISTS vector;
DO $$ BEGIN CREATE ROLE qa_writer LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN CREATE ROLE qa_reader LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT CONNECT ON DATABASE news TO qa_writer, qa_reader;
GRANT USAGE, CREATE ON SCHEMA public TO qa_writer;
GRANT USAGE ON SCHEMA public TO qa_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO qa_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE qa_writer IN SCHEMA public GRANT SELECT ON TABLES TO qa_reader;
ALTER ROLE qa_reader IN DATABASE news SET default_transaction_read_only = on;
