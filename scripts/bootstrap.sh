#!/usr/bin/env bash
# Install everything proctor needs on a fresh machine: system packages, the Python
# environment, and (lazily, on first `proctor stack up`) the JVM services via mvn.
# Safe to run again: each step checks before it installs.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }

need_apt=()
have_pg=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$have_pg" ] || need_apt+=(postgresql postgresql-contrib)
command -v mvn >/dev/null || need_apt+=(maven)
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
[ -d /usr/lib/jvm/java-17-openjdk-amd64 ] || need_apt+=(openjdk-17-jre-headless)
command -v curl >/dev/null || need_apt+=(curl)
[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] || need_apt+=(chromium chromium-driver)  # scoreboard browser test
command -v javac >/dev/null || need_apt+=(openjdk-17-jdk-headless)  # the Flink collector test compiles a job
command -v prometheus >/dev/null || need_apt+=(prometheus)  # observability collector tests
command -v redis-server >/dev/null || need_apt+=(redis-server)  # Argo CD's cache, argocd collector test
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing system packages: ${need_apt[*]}; run: sudo apt-get install ${need_apt[*]}"
    exit 1
  fi
  say "apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ ! -x "${PROCTOR_JAVA25_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}/bin/java" ]; then
  say "Trino needs a Java 25 JDK; set PROCTOR_JAVA25_HOME to one (looked in /usr/lib/jvm/temurin-25-jdk-amd64)"
  exit 1
fi

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  say "proctor needs Python 3.11 or newer (found $("$PY" --version 2>&1)); set PYTHON=/path/to/python3.11"
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.proctor-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "pip install -e .[dev] (cached in the pip cache after the first run)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi
say "ready: $(.venv/bin/proctor --version)"
