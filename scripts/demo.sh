#!/usr/bin/env bash
# The README's first command: set everything up, start the local stack and run the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/proctor stack up
# Signing keys and the roster secret of the local stack (docs/trust.md), made once, 0600.
eval "$(.venv/bin/proctor keys local --out .stack/keys)"
exec .venv/bin/proctor demo "$@"
