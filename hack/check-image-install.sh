#!/usr/bin/env bash
# Simulates the Dockerfile's install steps without a Docker engine: build the project's
# wheel, install it with its dependencies into a fresh pip-less venv exactly as the builder
# stage does (`pip --python <venv> install --prefer-binary <wheel>`), then run the entry
# point the image's ENTRYPOINT uses. Then proves the image holds the operator only: the
# wheel has no other top-level package, and the venv can import neither the Sui stand-in
# (sui_localnet) nor the developer tooling (atoma_dev), nor run their scripts.
#
# Usage: hack/check-image-install.sh        (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$(command -v python3.11 || echo "$root/.venv/bin/python")}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

# Only what .dockerignore lets through reaches the builder: copy exactly that.
mkdir -p "$work/src"
cp "$root/pyproject.toml" "$work/src/"
if [ -f "$root/README.md" ]; then cp "$root/README.md" "$work/src/"; else
  echo "README.md is missing: the Dockerfile copies it and pyproject.toml names it" >&2; exit 1
fi
# As the Dockerfile: `COPY operator/atoma_operator/ operator/atoma_operator/`.
(cd "$root" && tar --exclude='__pycache__' --exclude='*.egg-info' -cf - operator/atoma_operator) \
  | tar -xf - -C "$work/src"

echo "== pip wheel --no-deps"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$work/wheels" "$work/src"
echo "== venv --without-pip + pip --python … install --prefer-binary"
"$PYTHON" -m venv --without-pip "$work/venv"
"$PYTHON" -m pip --python "$work/venv/bin/python" install --quiet --prefer-binary "$work"/wheels/*.whl
if [ -e "$work/venv/bin/pip" ]; then echo "the venv must not contain pip" >&2; exit 1; fi
echo "== atoma-operator --help"
# As in the image: not the source tree, HOME on a scratch dir.
(cd "$work" && HOME="$work" PYTHONDONTWRITEBYTECODE=1 "$work/venv/bin/atoma-operator" --help)
echo "== the image holds atoma_operator only"
"$PYTHON" - "$work"/wheels/*.whl <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
assert tops == {"atoma_operator"}, f"unexpected packages in the wheel: {sorted(tops)}"
PY
for module in sui_localnet atoma_dev; do
  if (cd "$work" && "$work/venv/bin/python" -c "import $module" 2>/dev/null); then
    echo "the image venv must not contain $module" >&2; exit 1
  fi
done
for script in atoma-localnet atoma-dev; do
  if [ -e "$work/venv/bin/$script" ]; then echo "the image venv must not have $script" >&2; exit 1; fi
done
echo "neither sui_localnet nor atoma_dev is installed"
echo "image install check passed"
