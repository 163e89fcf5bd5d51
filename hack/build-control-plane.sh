#!/usr/bin/env bash
# Builds the test/quick-start control plane (etcd, kube-apiserver) and helm from the Go
# module proxy into a per-version cache, only when missing. No Docker or release
# downloads exist on these machines; `go` and the module proxy are all this needs.
#
# Usage: hack/build-control-plane.sh [all|control-plane|etcd|apiserver|helm|promtool|paths]
#   all            etcd + kube-apiserver + helm (default)
#   control-plane  etcd + kube-apiserver
#   promtool       Prometheus' promtool (optional: built when a test of the alert rules
#                  needs it; ~1 minute warm, a few cold)
#   paths          print name=path of every binary (built or not); builds nothing
# Environment: K8S_VERSION, ETCD_VERSION, HELM_VERSION, PROMETHEUS_VERSION, ATOMA_CP_CACHE.
set -euo pipefail
K8S_VERSION="${K8S_VERSION:-v1.36.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v3.21.4}"
# The Go module version of Prometheus v3.16.0 (Prometheus 3.x publishes modules as v0.3xx).
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
CACHE="${ATOMA_CP_CACHE:-$HOME/.cache/atoma-operator/control-plane}"
bin_k8s="$CACHE/kube-apiserver-$K8S_VERSION/kube-apiserver"
bin_etcd="$CACHE/etcd-$ETCD_VERSION/etcd"
bin_helm="$CACHE/helm-$HELM_VERSION/helm"
bin_promtool="$CACHE/promtool-$PROMETHEUS_VERSION/promtool"

if [ "${1:-all}" = paths ]; then
  printf 'etcd=%s\nkube-apiserver=%s\nhelm=%s\npromtool=%s\n' \
    "$bin_etcd" "$bin_k8s" "$bin_helm" "$bin_promtool"
  exit 0
fi

export GOTOOLCHAIN=local CGO_ENABLED=0
T0=$SECONDS
WORKDIRS=()
HEARTBEAT=""
log() { echo "[control-plane $(date +%H:%M:%S) +$((SECONDS - T0))s] $*"; }
cleanup() {
  if [ -n "$HEARTBEAT" ]; then kill "$HEARTBEAT" 2>/dev/null || true; fi
  if [ "${#WORKDIRS[@]}" -gt 0 ]; then rm -rf "${WORKDIRS[@]}"; fi
}
trap cleanup EXIT
command -v go >/dev/null || { echo "go not found on PATH (Go >= 1.26 is required)" >&2; exit 1; }

# Sets WORK (not echoed: a $(...) subshell could not register the dir for cleanup).
new_workdir() { WORK="$(mktemp -d)"; WORKDIRS+=("$WORK"); }

# `go mod download -json` reports a failure as {"Error": ...}; print that, not a traceback.
gomod_of() {
  (cd "$WORK" && go mod download -json "$1") | python3 -c 'import json,sys
info=json.load(sys.stdin)
sys.exit("go mod download %s: %s" % (sys.argv[1], info["Error"])) if "Error" in info else print(info["GoMod"])' "$1"
}

# Compiling kube-apiserver is silent for minutes: print a heartbeat so CI logs show progress.
with_heartbeat() {
  local what="$1"; shift
  # sleep must not hold our stdout open: a caller reading it to EOF would wait on it.
  ( while sleep 30 </dev/null >/dev/null 2>&1; do log "still $what"; done ) &
  HEARTBEAT=$!
  "$@"
  kill "$HEARTBEAT" 2>/dev/null || true
  wait "$HEARTBEAT" 2>/dev/null || true
  HEARTBEAT=""
}

build_apiserver() {
  if [ -x "$bin_k8s" ]; then log "kube-apiserver $K8S_VERSION cached: $bin_k8s"; return; fi
  log "building kube-apiserver $K8S_VERSION (cold: 3-4 minutes on 2 cores, plus ~800 MB of module downloads)"
  local work minor gomod staging_ver="v0.${K8S_VERSION#v1.}"
  new_workdir; work="$WORK"; minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  gomod="$(gomod_of "k8s.io/kubernetes@$K8S_VERSION")"
  # k8s.io/kubernetes points its staging modules at ./staging with replace directives,
  # so a wrapper module must replace each of them with its published v0.Y.Z release.
  {
    echo "module atoma.local/kubebuild"
    echo
    grep -E '^go [0-9]' "$gomod" | head -1
    grep -E '^godebug' "$gomod" || true
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    grep -E '^\s*k8s.io/[a-z0-9-]+ => ./staging/' "$gomod" \
      | awk -v v="$staging_ver" '{print "replace " $1 " => " $1 " " v}'
  } > "$work/go.mod"
  printf 'package main\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' > "$work/tools.go"
  log "resolving modules"
  (cd "$work" && GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION")
  mkdir -p "$(dirname "$bin_k8s")"
  local ld=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  log "compiling kube-apiserver"
  with_heartbeat "compiling kube-apiserver" \
    env GOFLAGS=-mod=mod go -C "$work" build -trimpath -o "$bin_k8s.tmp.$$" -ldflags "$ld" k8s.io/kubernetes/cmd/kube-apiserver
  mv "$bin_k8s.tmp.$$" "$bin_k8s"
  log "kube-apiserver ready: $bin_k8s"
}

build_etcd() {
  if [ -x "$bin_etcd" ]; then log "etcd $ETCD_VERSION cached: $bin_etcd"; return; fi
  log "building etcd $ETCD_VERSION"
  local work; new_workdir; work="$WORK"
  # etcd's server module has replace directives for its siblings; a wrapper module that
  # requires the server module and builds its main package resolves them from the proxy.
  printf 'module atoma.local/etcdbuild\n\ngo 1.24\n' > "$work/go.mod"
  printf 'package main\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$work/tools.go"
  (cd "$work" && GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
  mkdir -p "$(dirname "$bin_etcd")"
  with_heartbeat "compiling etcd" \
    env GOFLAGS=-mod=mod go -C "$work" build -trimpath -o "$bin_etcd.tmp.$$" go.etcd.io/etcd/server/v3
  mv "$bin_etcd.tmp.$$" "$bin_etcd"
  log "etcd ready: $bin_etcd"
}

build_helm() {
  if [ -x "$bin_helm" ]; then log "helm $HELM_VERSION cached: $bin_helm"; return; fi
  log "building helm $HELM_VERSION"
  local work gobin kminor
  new_workdir; work="$WORK"; gobin="$work/bin"
  # helm has no replace directives, so `go install pkg@version` builds it with its own
  # go.sum. Its Makefile sets these ldflags; without them `helm version` says "v3.21"
  # and client-side rendering assumes Kubernetes v1.20.
  kminor="$(gomod_of "helm.sh/helm/v3@$HELM_VERSION" | xargs sed -nE 's/^\s*k8s.io\/client-go v0\.([0-9]+)\..*/\1/p')"
  local ld="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ld+=" -X helm.sh/helm/v3/internal/version.metadata= -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ld+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$kminor"
  done
  with_heartbeat "compiling helm" \
    env GOFLAGS= GOBIN="$gobin" go -C "$work" install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mkdir -p "$(dirname "$bin_helm")"
  mv "$gobin/helm" "$bin_helm.tmp.$$" && mv "$bin_helm.tmp.$$" "$bin_helm"
  log "helm ready: $bin_helm"
}

build_promtool() {
  if [ -x "$bin_promtool" ]; then log "promtool $PROMETHEUS_VERSION cached: $bin_promtool"; return; fi
  log "building promtool $PROMETHEUS_VERSION"
  local work gobin release="${PROMETHEUS_VERSION#v0.}"
  new_workdir; work="$WORK"; gobin="$work/bin"
  # v0.316.0 is Prometheus 3.16.0: the version promtool reports (`promtool --version`).
  release="3.$((10#${release%%.*} - 300)).${release#*.}"
  local ld="-X github.com/prometheus/common/version.Version=$release"
  # Like helm: no replace directives, so `go install pkg@version` uses its own go.sum.
  with_heartbeat "compiling promtool" \
    env GOFLAGS= GOBIN="$gobin" go -C "$work" install -trimpath -ldflags "$ld" \
      "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
  mkdir -p "$(dirname "$bin_promtool")"
  mv "$gobin/promtool" "$bin_promtool.tmp.$$" && mv "$bin_promtool.tmp.$$" "$bin_promtool"
  log "promtool ready: $bin_promtool"
}

mkdir -p "$CACHE"
# Serialise concurrent builds (CI step, pytest fixture, a developer's shell) on one cache.
exec 9>"$CACHE/.build.lock"
if ! flock -n 9; then log "another build holds $CACHE/.build.lock; waiting"; flock 9; fi

case "${1:-all}" in
  etcd) build_etcd ;;
  apiserver|kube-apiserver) build_apiserver ;;
  helm) build_helm ;;
  promtool) build_promtool ;;
  control-plane) build_etcd; build_apiserver ;;
  all) build_etcd; build_apiserver; build_helm ;;
  *) echo "usage: $0 [all|control-plane|etcd|apiserver|helm|promtool|paths]" >&2; exit 2 ;;
esac
log "done"
