#!/usr/bin/env bash
# The test command: set up on a fresh machine, grade the reference solutions with every test,
# then the integrity checks (the untouched stubs fail every lesson test, every known-wrong
# implementation is caught, lessons/ has not drifted from solutions/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/setup.sh

.venv/bin/python -m pytest --impl solutions -q "$@"
.venv/bin/course verify --skip-solutions   # the suite above already graded solutions/
