#!/usr/bin/env bash
# Build Argo CD's multi-call binary from its Go module, without containers, for the
# candidate's platform (issue 14): one binary that runs as argocd-application-controller,
# argocd-repo-server, argocd-notification, ... by the name it is invoked under.
#
# The v3 module's replace of ./gitops-engine (an in-repo path the module zip does not
# ship) is dropped and the published gitops-engine module of the same version required
# instead; its other replaces (version pins of k8s.io modules) are kept. Go 1.27 is
# fetched as a toolchain by the go command. The binary is cached under
# $PROCTOR_ARGOCD_CACHE (default ~/.cache/proctor/argocd-<version>) and not rebuilt.
#
# Measured on the 2-core machine, niced, with the machine's load at 12-19: 35 min wall,
# 10.6 min CPU; a 300 MB binary. scripts/test.sh runs this before the tests (at once when
# cached); tests/integration/collectors/test_argocd_real.py runs the binary with the CRDs
# (manifests/crds) and hack/git-verify-wrapper.sh of the module source kept beside it.
set -euo pipefail

VERSION=${PROCTOR_ARGOCD_VERSION:-v3.6.2}
CACHE=${PROCTOR_ARGOCD_CACHE:-$HOME/.cache/proctor/argocd-$VERSION}
GOBASE=${PROCTOR_GO_CACHE:-$HOME/.cache/proctor/go}
say() { printf '[build-argocd] %s\n' "$*" >&2; }

command -v go >/dev/null || { say "go is not on PATH"; exit 1; }
src=$GOBASE/src/argo-cd-$VERSION
if [ -x "$CACHE/argocd" ] && [ -d "$src/manifests/crds" ]; then say "cached: $CACHE/argocd"; exit 0; fi

export GOPATH=$GOBASE/path GOMODCACHE=$GOBASE/mod GOCACHE=$GOBASE/build GOWORK=off
export GOTOOLCHAIN=${PROCTOR_ARGOCD_TOOLCHAIN:-go1.27.3} GOFLAGS=-mod=mod
mkdir -p "$CACHE" "$GOPATH" "$GOMODCACHE" "$GOCACHE"

say "downloading github.com/argoproj/argo-cd/v3@$VERSION"
mod=$(go mod download -json "github.com/argoproj/argo-cd/v3@$VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
[ -d "$mod" ] || { say "go mod download gave no source directory"; exit 1; }
rm -rf "$src"
mkdir -p "$(dirname "$src")"
cp -r "$mod" "$src"
chmod -R u+w "$src"
cd "$src"
go mod edit -dropreplace=github.com/argoproj/argo-cd/gitops-engine/v3
go mod edit -require="github.com/argoproj/argo-cd/gitops-engine/v3@$VERSION"
if [ -x "$CACHE/argocd" ]; then say "cached: $CACHE/argocd (its source restored)"; exit 0; fi
say "building ./cmd with $(go version)"
nice -n 10 go build -o "$CACHE/argocd.tmp" ./cmd
mv "$CACHE/argocd.tmp" "$CACHE/argocd"
say "built $CACHE/argocd"
