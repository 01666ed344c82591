#!/usr/bin/env bash
# The README's test command: set up, lint, start the local stack, run every test, stop
# what it started. Exits non-zero on any failure (including "no tests ran").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh

say() { printf '\033[1m[test]\033[0m %s\n' "$*"; }
say "ruff (lint and format)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
say "mypy (strict on services)"
.venv/bin/mypy services
say "manifests: kustomize, kubeconform, policy, secrets scan"
scripts/check-manifests.sh
say "a real Kubernetes control plane for the audit collector's test (cached after the first build)"
scripts/build-kube.sh
say "Argo CD for the argocd collector's test (cached after the first build: 35 min cold)"
scripts/build-argocd.sh

started=0
if ! .venv/bin/proctor stack status >/dev/null 2>&1; then
  started=1
fi
cleanup() {
  if [ "$started" = 1 ] && [ -z "${PROCTOR_KEEP_STACK:-}" ]; then
    say "stopping the stack this run started"
    .venv/bin/proctor stack down || true
  fi
}
trap cleanup EXIT
say "stack up"
.venv/bin/proctor stack up

say "pytest"
.venv/bin/pytest "$@"
