#!/usr/bin/env bash
# The README's first command: set everything up, start the local stack and run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/proctor stack up
exec .venv/bin/proctor demo "$@"
