#!/usr/bin/env bash
# From a fresh clone to a first answer: install, build the seed index, ask a question.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
.venv/bin/qa-bot index
.venv/bin/qa-bot ask "${1:-how many soldiers left Damascus?}"
