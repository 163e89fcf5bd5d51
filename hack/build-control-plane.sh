#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go module proxy into a per-version cache,
# only when missing. Prints progress: the cold build takes minutes.
set -euo pipefail
K8S_VERSION="${K8S_VERSION:-v1.36.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CACHE="${ATOMA_CP_CACHE:-$HOME/.cache/atoma-operator/control-plane}"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
bin_k8s="$CACHE/kube-apiserver-$K8S_VERSION/kube-apiserver"
bin_etcd="$CACHE/etcd-$ETCD_VERSION/etcd"

build_apiserver() {
  if [ -x "$bin_k8s" ]; then echo "[control-plane] kube-apiserver $K8S_VERSION cached: $bin_k8s"; return; fi
  echo "[control-plane] building kube-apiserver $K8S_VERSION (first time: several minutes)"
  local work minor gomod
  work="$(mktemp -d)"; minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  gomod="$(cd "$work" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')"
  local staging_ver="v0.${K8S_VERSION#v1.}"
  {
    echo "module atoma.local/kubebuild"
    echo
    grep -E '^go [0-9]' "$gomod" | head -1
    grep -E '^godebug' "$gomod" || true
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    grep -E '^\s*k8s.io/[a-z0-9-]+ => ./staging/' "$gomod" | awk -v v="$staging_ver" '{print "replace " $1 " => " $1 " " v}'
  } > "$work/go.mod"
  printf 'package main\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' > "$work/tools.go"
  (cd "$work" && echo "[control-plane] resolving modules" && go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
    && echo "[control-plane] compiling kube-apiserver" && mkdir -p "$(dirname "$bin_k8s")" && \
    go build -trimpath -o "$bin_k8s.tmp" -ldflags "\
      -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
      -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor" \
      k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$bin_k8s.tmp" "$bin_k8s"; rm -rf "$work"
  echo "[control-plane] kube-apiserver ready: $bin_k8s"
}

build_etcd() {
  if [ -x "$bin_etcd" ]; then echo "[control-plane] etcd $ETCD_VERSION cached: $bin_etcd"; return; fi
  echo "[control-plane] building etcd $ETCD_VERSION"
  local work; work="$(mktemp -d)"
  printf 'module atoma.local/etcdbuild\n\ngo 1.24\n' > "$work/go.mod"
  printf 'package main\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$work/tools.go"
  (cd "$work" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" && mkdir -p "$(dirname "$bin_etcd")" && \
    go build -trimpath -o "$bin_etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$bin_etcd.tmp" "$bin_etcd"; rm -rf "$work"
  echo "[control-plane] etcd ready: $bin_etcd"
}

case "${1:-all}" in
  apiserver) build_apiserver ;;
  etcd) build_etcd ;;
  all) build_etcd; build_apiserver ;;
esac
