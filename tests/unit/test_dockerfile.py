"""Properties of the Dockerfile that a reviewer would check by eye (no Docker engine here).

The slow test runs hack/check-image-install.sh, which repeats the builder stage's install
steps in a fresh venv and runs the image's entry point.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
NONROOT_UID = 65532


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def _instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) pairs, with line continuations joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    pairs = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        pairs.append((keyword.upper(), args.strip()))
    return pairs


def _parse() -> tuple[dict[str, str], list[Stage]]:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, args in _instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", args, flags=re.IGNORECASE)
            assert match, args
            stages.append(Stage(image=match[1], name=match[2]))
        elif not stages and keyword == "ARG":
            name, _, default = args.partition("=")
            global_args[name] = default
        elif stages:
            stages[-1].instructions.append((keyword, args))
    return global_args, stages


def _resolve(image: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], image)


def test_multi_stage_with_a_version_pinned_base() -> None:
    args, stages = _parse()
    assert len(stages) >= 2
    assert stages[0].name == "builder"
    for stage in stages:
        image = _resolve(stage.image, args)
        # python:3.11.<patch>-slim[-<debian>] optionally @sha256:…; never a floating tag.
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", image), (
            image
        )
    # The pinning-by-digest advice is written down next to the pin.
    assert re.search(r"#.*digest", DOCKERFILE.read_text(), flags=re.IGNORECASE)


def test_final_stage_runs_the_entry_point_as_non_root() -> None:
    _, stages = _parse()
    final = stages[-1]
    users = final.all("USER")
    assert users, "the final stage must set USER"
    uid, _, gid = users[-1].partition(":")
    assert int(uid) == NONROOT_UID and int(gid or uid) == NONROOT_UID
    entrypoint = final.all("ENTRYPOINT")
    assert entrypoint == ['["atoma-operator"]'], "exec form, so signals reach the operator"
    assert final.all("CMD") == ['["run"]']
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "atoma-operator" in scripts
    # The chart sets runAsNonRoot and no uid (the platform may pick one): the kubelet can
    # only verify runAsNonRoot against a numeric USER, as above.
    values = yaml.safe_load((REPO_ROOT / "charts/atoma-operator/values.yaml").read_text())
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    assert "runAsUser" not in values["podSecurityContext"]


def test_final_stage_gets_only_the_venv_and_no_toolchain() -> None:
    _, stages = _parse()
    final = stages[-1]
    copies = final.all("COPY")
    assert copies == ["--from=builder /opt/venv /opt/venv"]
    run_text = " ".join(final.all("RUN"))
    for tool in ("apt-get install", "build-essential", "gcc", "pip install"):
        assert tool not in run_text
    env_text = " ".join(final.all("ENV"))
    assert "/opt/venv/bin" in env_text
    builder_run = " ".join(stages[0].all("RUN"))
    assert "pip wheel" in builder_run and "venv" in builder_run


def test_image_gets_the_operator_package_only() -> None:
    """The stand-in (a development key, an admin HTTP API) and the dev tooling stay out:
    the builder copies only atoma_operator, the root distribution packages only it, and
    the two dev packages are their own distribution (operator/pyproject.toml)."""
    _, stages = _parse()
    sources = [src for copy in stages[0].all("COPY") for src in copy.split()[:-1]]
    assert sorted(sources) == ["README.md", "operator/atoma_operator/", "pyproject.toml"]
    root = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    find = root["tool"]["setuptools"]["packages"]["find"]
    assert find["where"] == ["operator"]
    assert all(p.split(".")[0] == "atoma_operator" for p in find["include"]), find
    assert set(root["project"]["scripts"]) == {"atoma-operator"}
    dev = tomllib.loads((REPO_ROOT / "operator" / "pyproject.toml").read_text())
    dev_packages = {
        p.split(".")[0] for p in dev["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert dev_packages == {"sui_localnet", "atoma_dev"}
    assert dev["project"]["name"] != root["project"]["name"]
    ignored = DOCKERIGNORE.read_text().splitlines()
    assert "operator/sui_localnet" in ignored and "operator/atoma_dev" in ignored
    # The dev install still gets both (what `make venv` runs).
    assert "-e ./operator" in (REPO_ROOT / "Makefile").read_text()


def test_oci_labels() -> None:
    _, stages = _parse()
    labels = " ".join(stages[-1].all("LABEL"))
    for key in ("title", "description", "source", "licenses", "version", "revision", "created"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_dockerignore_keeps_the_build_inputs() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in ("pyproject.toml", "operator", "operator/"):
        assert needed not in patterns
    assert ".venv" in patterns and ".git" in patterns
    # README.md is named by pyproject's `readme`, so it is re-included after `*.md`.
    assert patterns.index("!README.md") > patterns.index("*.md")


@pytest.mark.slow
def test_image_install_steps_work_in_a_fresh_venv() -> None:
    if not (REPO_ROOT / "README.md").exists():
        pytest.skip("README.md is missing (pyproject's readme); the image build needs it")
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "check-image-install.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "usage: atoma-operator" in result.stdout
    assert "neither sui_localnet nor atoma_dev is installed" in result.stdout
    assert "image install check passed" in result.stdout
