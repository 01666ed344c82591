#!/usr/bin/env bash
# Deployment checks, offline but for the package registries (CI runs this from scripts/test.sh):
#   1. kustomize, kubeconform and gitleaks built with `go install` (pinned; cached in ~/go),
#   2. `kustomize build` of every overlay (and of k8s/argocd and the example cohort),
#   3. kubeconform -strict of everything built, against the Kubernetes schemas (made from
#      the pip package kubernetes-validate by scripts/k8s_schemas.py) and the CRD schemas
#      kept in k8s/schemas/; no remote schema location is given, so nothing is fetched,
#   4. scripts/policy_check.py (securityContext, resources, probes, secrets by reference),
#   5. docker-compose.test.yml loaded as `docker compose config` would, by the compose
#      tool's own library (tools/composecheck), with and without the proctor profile,
#   6. gitleaks over the whole git history, after a canary proves it catches a secret.
# Prints the seconds each step took. Exit non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

KUSTOMIZE_VERSION=v5.8.2      # v5.8.3 needs Go 1.27
KUBECONFORM_VERSION=v0.8.0
GITLEAKS_VERSION=v8.30.1
# The oldest and the newest Kubernetes minor the manifests must be valid for.
KUBE_VERSIONS=(1.33.0 1.37.0)

say() { printf '\033[1m[manifests]\033[0m %s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

PY=${PYTHON:-.venv/bin/python}
command -v go >/dev/null || { say "Go is needed (go install of kustomize, kubeconform, gitleaks)"; exit 1; }
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
GOBIN=${PROCTOR_GOBIN:-$(go env GOPATH)/bin}
export GOBIN
mkdir -p "$GOBIN"

# go install only when the binary is missing or was built from another version.
tool() {
  local bin=$1 pkg=$2 version=$3 have=""
  if [ -x "$GOBIN/$bin" ]; then
    have=$(go version -m "$GOBIN/$bin" 2>/dev/null | awk '$1 == "mod" { print $3; exit }')
  fi
  if [ "$have" = "$version" ]; then
    say "$bin $version: cached in $GOBIN"
    return
  fi
  local t0; t0=$(now)
  go install "$pkg@$version"
  say "$bin $version: go install took $(since "$t0")s"
}
t_all=$(now)
tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
tool gitleaks github.com/zricethezav/gitleaks/v8 "$GITLEAKS_VERSION"

# Standalone Kubernetes schemas, once per kubernetes-validate version.
kv=$("$PY" -c 'from importlib.metadata import version; print(version("kubernetes-validate"))' 2>/dev/null) || {
  say "the Kubernetes schemas come from kubernetes-validate: pip install -e '.[dev]'"; exit 1; }
schemas=${XDG_CACHE_HOME:-$HOME/.cache}/proctor/k8s-schemas/kubernetes-validate-$kv
stamp="$schemas/.done-${KUBE_VERSIONS[*]// /-}"
if [ ! -f "$stamp" ]; then
  t0=$(now)
  "$PY" scripts/k8s_schemas.py --out "$schemas" "${KUBE_VERSIONS[@]}"
  touch "$stamp"
  say "Kubernetes schemas written in $(since "$t0")s"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
t0=$(now)
# k8s/cohorts/example/rendered: `proctor deploy render` of the 3-candidate example cohort
# (tests/unit/deploy/test_cohort_render.py fails when it is not a fresh render).
targets=(k8s/base k8s/overlays/local k8s/overlays/prod k8s/argocd k8s/cohorts/example/rendered)
for dir in "${targets[@]}"; do
  name=${dir//\//_}
  "$GOBIN/kustomize" build "$dir" > "$out/$name.yaml"
  say "kustomize build $dir: $(grep -c '^kind:' "$out/$name.yaml") resources"
done
# Plain manifests kept beside the Application (e.g. the notification template).
extra=()
for f in k8s/argocd/*.yaml; do
  case "$f" in */kustomization.yaml|*/application.yaml) ;; *) extra+=("$f") ;; esac
done
# Each cohort platform's Argo CD notification patch (a whole ConfigMap, merged by its Argo CD).
extra+=(k8s/cohorts/example/rendered/*/argocd/notifications-cm-patch.yaml)
say "kustomize builds took $(since "$t0")s"

t0=$(now)
for kube in "${KUBE_VERSIONS[@]}"; do
  say "kubeconform -strict, Kubernetes $kube"
  "$GOBIN/kubeconform" -strict -summary -output text \
    -kubernetes-version "$kube" \
    -schema-location "$schemas" \
    -schema-location 'k8s/schemas/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json' \
    "$out"/*.yaml "${extra[@]}"
done
say "kubeconform took $(since "$t0")s"

t0=$(now)
for dir in k8s/overlays/local k8s/overlays/prod k8s/cohorts/example/rendered; do
  say "policy check $dir"
  "$PY" scripts/policy_check.py "$out/${dir//\//_}.yaml"
done
say "policy checks took $(since "$t0")s"

t0=$(now)
say "compose file, as docker compose config loads it (tools/composecheck)"
(cd tools && go run ./composecheck ../docker-compose.test.yml \
  && go run ./composecheck -profile proctor ../docker-compose.test.yml)
say "compose check took $(since "$t0")s"

# The scanner must catch a credential before its silence means anything: a canary repo
# with a token made now (so none sits in this repository).
t0=$(now)
canary="$out/canary"
git init -q "$canary"
token="ghp_$("$PY" -c 'import secrets, string; print("".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(36)))')"
printf 'GITHUB_TOKEN=%s\n' "$token" > "$canary/settings.env"
git -C "$canary" add settings.env
git -C "$canary" -c user.name=canary -c user.email=canary@localhost commit -q -m canary
if "$GOBIN/gitleaks" git --config .gitleaks.toml --no-banner --log-level error --exit-code 1 "$canary" >/dev/null 2>&1; then
  say "gitleaks found nothing in the canary repository: the scan is broken"; exit 1
fi
say "gitleaks over the whole history"
"$GOBIN/gitleaks" git --config .gitleaks.toml --no-banner --redact --exit-code 1 .
say "secrets scan took $(since "$t0")s"
say "all manifest checks passed in $(since "$t_all")s"
