#!/usr/bin/env bash
# The test suite as CI runs it: install, lint, type-check, then pytest with the real model.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
export HF_HUB_OFFLINE=1 NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"
# Build and run the Docker image in tests/test_docker.py where an engine can be had; no-op elsewhere.
eval "$(scripts/docker-engine-if-available.sh)"
.venv/bin/ruff check qa_bot tests scripts
.venv/bin/mypy qa_bot
.venv/bin/python -m pytest "$@"
