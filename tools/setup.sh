#!/usr/bin/env bash
# Create .venv and install the course (editable, with the docs extra) on a fresh machine.
# Sourced by tools/test.sh and tools/reproduce.sh; safe to run again: it reinstalls only when
# pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($python --version)"
    "$python" -m venv .venv
fi

stamp=.venv/.course-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing the course and its dependencies into .venv (the first time takes a few minutes)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]" 2>&1 \
        | grep -v "^WARNING: Location" || true
    .venv/bin/python -c "import torch, torchvision, course" \
        || { echo "setup: the install failed; see the messages above" >&2; exit 1; }
    echo "$want" > "$stamp"
fi
