#!/usr/bin/env bash
# The main job: set up on a fresh machine, then run the report's five experiments with the
# reference solutions on the embedded dataset (cpu preset unless told otherwise), writing
# plots, the comparison grid and the summary under runs/report/.
# Extra arguments go to `course reproduce`, e.g. `bash tools/reproduce.sh --preset full`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/setup.sh

.venv/bin/course reproduce --set report --preset cpu --impl solutions "$@"
