#!/usr/bin/env bash
# Simulates the Dockerfile's install steps without a Docker engine: build the project's
# wheel, install it with its dependencies into a fresh pip-less venv exactly as the builder
# stage does (`pip --python <venv> install --prefer-binary <wheel>`), then run the entry
# point the image's ENTRYPOINT uses.
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
(cd "$root" && tar --exclude='__pycache__' --exclude='*.egg-info' -cf - operator) | tar -xf - -C "$work/src"

echo "== pip wheel --no-deps"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$work/wheels" "$work/src"
echo "== venv --without-pip + pip --python … install --prefer-binary"
"$PYTHON" -m venv --without-pip "$work/venv"
"$PYTHON" -m pip --python "$work/venv/bin/python" install --quiet --prefer-binary "$work"/wheels/*.whl
if [ -e "$work/venv/bin/pip" ]; then echo "the venv must not contain pip" >&2; exit 1; fi
echo "== atoma-operator --help"
# As in the image: not the source tree, HOME on a scratch dir.
(cd "$work" && HOME="$work" PYTHONDONTWRITEBYTECODE=1 "$work/venv/bin/atoma-operator" --help)
echo "image install check passed"
