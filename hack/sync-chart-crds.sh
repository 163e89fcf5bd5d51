#!/usr/bin/env bash
# Copies the generated CRDs (crds/*.yaml, output of `atoma-operator crds`) into the Helm
# chart (charts/atoma-operator/files/crds/), which renders them from templates.
#
# Usage: hack/sync-chart-crds.sh           copy (stale chart copies are removed)
#        hack/sync-chart-crds.sh --check   exit 1 if the chart copy differs (CI)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/crds"
dst="$root/charts/atoma-operator/files/crds"

shopt -s nullglob
sources=("$src"/*.yaml)
if [ "${#sources[@]}" -eq 0 ]; then
  echo "no CRDs in $src: run \`atoma-operator crds\` first" >&2
  exit 1
fi

if [ "${1:-}" = "--check" ]; then
  if diff -r --exclude='.*' "$src" "$dst" >/dev/null 2>&1; then
    echo "chart CRDs are in sync"
  else
    echo "chart CRDs differ from crds/: run hack/sync-chart-crds.sh" >&2
    diff -r --exclude='.*' "$src" "$dst" >&2 || true
    exit 1
  fi
  exit 0
fi

mkdir -p "$dst"
for f in "$dst"/*.yaml; do
  [ -e "$src/$(basename "$f")" ] || rm -f "$f"
done
cp "${sources[@]}" "$dst"/
echo "copied ${#sources[@]} CRD file(s) to ${dst#"$root"/}"
