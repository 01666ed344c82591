#!/usr/bin/env bash
# Build the binaries of a real Kubernetes control plane without containers, for the
# k8s-audit collector's integration test: kube-apiserver and kubectl from the
# k8s.io/kubernetes Go module, and kine (the etcd API on SQLite).
#
# Binaries are cached under $PROCTOR_KUBE_CACHE (default ~/.cache/proctor/kube-<version>);
# a binary already there is not rebuilt. The Go module cache used for the build is a
# private one under ~/.cache/proctor/go so the build never touches the user's.
#
# Usage: scripts/build-kube.sh [kube-apiserver|kubectl|kine]...   (default: all three)
set -euo pipefail

KUBE_VERSION=${PROCTOR_KUBE_VERSION:-v1.37.2}
STAGING_VERSION=${PROCTOR_KUBE_STAGING_VERSION:-v0.${KUBE_VERSION#v1.}}
KUBE_MINOR=$(printf %s "$KUBE_VERSION" | cut -d. -f2)
KINE_VERSION=${PROCTOR_KINE_VERSION:-v0.17.5}
CACHE=${PROCTOR_KUBE_CACHE:-$HOME/.cache/proctor/kube-$KUBE_VERSION}
GOBASE=${PROCTOR_GO_CACHE:-$HOME/.cache/proctor/go}

say() { printf '[build-kube] %s\n' "$*" >&2; }

command -v go >/dev/null || { say "go is not on PATH; install a Go toolchain (1.24 or newer)"; exit 1; }

export GOPATH=$GOBASE/path GOMODCACHE=$GOBASE/mod GOCACHE=$GOBASE/build GOWORK=off
mkdir -p "$CACHE" "$GOPATH" "$GOMODCACHE" "$GOCACHE"

src_dir() {
  # The module source, made writable, with its replace directives (which point at the
  # in-repo staging/ tree the module zip does not ship) dropped and the k8s.io staging
  # modules it requires at v0.0.0 pinned to the release that matches.
  local dir=$GOBASE/src/kubernetes-$KUBE_VERSION
  if [ ! -f "$dir/.prepared" ]; then
    say "downloading k8s.io/kubernetes@$KUBE_VERSION"
    local mod
    mod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
    [ -d "$mod" ] || { say "go mod download gave no source directory for k8s.io/kubernetes@$KUBE_VERSION"; exit 1; }
    rm -rf "$dir"
    mkdir -p "$(dirname "$dir")"
    cp -r "$mod" "$dir"
    chmod -R u+w "$dir"
    (
      cd "$dir"
      local replaced
      replaced=$(go mod edit -json | python3 -c 'import json,sys; print("\n".join(r["Old"]["Path"] for r in json.load(sys.stdin).get("Replace") or []))')
      for path in $replaced; do go mod edit -dropreplace="$path"; done
      local staged
      staged=$(go mod edit -json | python3 -c 'import json,sys; print("\n".join(r["Path"] for r in json.load(sys.stdin)["Require"] if r["Version"]=="v0.0.0"))')
      for path in $staged; do go mod edit -require="$path@$STAGING_VERSION"; done
    )
    touch "$dir/.prepared"
  fi
  printf '%s\n' "$dir"
}

# One build of a target at a time: a second run waits, then finds the binary cached.
locked() {
  command -v flock >/dev/null || { "$@"; return; }
  (flock 9; "$@") 9>"$CACHE/.lock-$2"
}

build_kube() {
  local name=$1 out=$CACHE/$1
  if [ -x "$out" ]; then say "$name: cached at $out"; return; fi
  local dir start
  dir=$(src_dir)
  start=$(date +%s)
  say "$name: building (several minutes)"
  (
    cd "$dir"
    GOFLAGS=-mod=mod go build -o "$out.tmp.$$" \
      -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$KUBE_MINOR" \
      "./cmd/$name"
  )
  mv "$out.tmp.$$" "$out"
  say "$name: built in $(($(date +%s) - start)) s, $(du -h "$out" | cut -f1) at $out"
}

build_kine() {
  local out=$CACHE/kine
  if [ -x "$out" ]; then say "kine: cached at $out"; return; fi
  local start
  start=$(date +%s)
  say "kine: building $KINE_VERSION"
  GOBIN=$CACHE/.gobin GOFLAGS=-mod=mod go install -ldflags "-s -w" "github.com/k3s-io/kine@$KINE_VERSION"
  mv "$CACHE/.gobin/kine" "$out"
  say "kine: built in $(($(date +%s) - start)) s, $(du -h "$out" | cut -f1) at $out"
}

targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(kine kube-apiserver kubectl)
for target in "${targets[@]}"; do
  case $target in
    kine) locked build_kine kine ;;
    kube-apiserver | kubectl) locked build_kube "$target" ;;
    *) say "unknown target $target (kube-apiserver, kubectl, kine)"; exit 2 ;;
  esac
done
printf '%s\n' "$CACHE"
