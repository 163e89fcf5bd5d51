"""Every condition reason the operator can set is explained in docs/troubleshooting.md
(what it means and what to do). The reasons are collected from the code itself: the
CamelCase words passed where a reason goes, the constants those calls name, and the
node's refusal kinds (a refusal no retry can fix becomes the Stalled reason)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import atoma_operator
from atoma_operator.sui.errors import RejectionKind

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(atoma_operator.__file__).parent
DOC = ROOT / "docs" / "troubleshooting.md"
REASON = re.compile(r"^[A-Z][a-z0-9]+[A-Za-z0-9]*$")
REASON_ARG = {
    # callable -> positional index of the reason (keyword `reason` always counts)
    "Summary": 3,
    "_stall": 3,
    "record_failure": 1,
    "record_terminal": 1,
    "set_condition": 3,
    "Busy": 1,
    "StackProblem": 1,
    "UnitResult": -1,
}
NOT_REASONS = {"Warning", "Normal"}  # Event types next to reasons in some calls


def _sources() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if "resources" not in path.parts:  # resources/: CEL admission reasons, not conditions
            yield path, ast.parse(path.read_text(encoding="utf-8"))


def _constants() -> dict[str, str]:
    """Module-level NAME = "CamelCase" across the package (names are unique enough)."""
    out: dict[str, str] = {}
    for _, tree in _sources():
        for node in tree.body:
            target = node.targets[0] if isinstance(node, ast.Assign) else None
            if isinstance(node, ast.AnnAssign):
                target = node.target
            value = getattr(node, "value", None)
            if (
                isinstance(target, ast.Name)
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
                and REASON.match(value.value)
            ):
                out[target.id] = value.value
    return out


def _words(expr: ast.AST, constants: dict[str, str]) -> Iterator[str]:
    for node in ast.walk(expr):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if REASON.match(node.value):
                yield node.value
        elif isinstance(node, ast.Name) and node.id in constants:
            yield constants[node.id]


def reasons_in_code() -> set[str]:
    constants = _constants()
    found: set[str] = set()
    for _, tree in _sources():
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            func = call.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            args = [kw.value for kw in call.keywords if kw.arg == "reason"]
            index = REASON_ARG.get(name, -1)
            if 0 <= index < len(call.args):
                args.append(call.args[index])
            for arg in args:
                found |= set(_words(arg, constants))
    found |= {kind.value for kind in RejectionKind}
    found.add("NotPermitted")  # policy.REASON, the refusal's default reason
    found.add("Failed")  # a failed unit that recorded no reason of its own
    return found - NOT_REASONS


def test_the_collector_finds_the_known_reasons() -> None:
    reasons = reasons_in_code()
    for known in (
        "InvalidProofInput",
        "WaitingForProofInput",
        "StateDatabaseUnavailable",
        "ChainUnavailable",
        "Submitting",
        "Settled",
        "Attested",
        "Disputed",
        "NoBadge",
        "InvalidSpec",
        "Idle",
        "GasCoinBusy",
        "WaitingForTicket",
    ):
        assert known in reasons
    assert len(reasons) > 30


def test_every_reason_is_in_the_troubleshooting_section() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"`([A-Z][A-Za-z0-9]+)`", text))
    missing = sorted(reasons_in_code() - documented)
    assert not missing, f"explain these in {DOC.relative_to(ROOT)}: {missing}"


def test_the_readme_links_the_day_two_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in (
        "docs/troubleshooting.md",
        "docs/upgrading.md",
        "docs/api-versioning.md",
        "docs/real-network.md",
        "CHANGELOG.md",
        "LICENSE",
    ):
        assert f"]({doc})" in readme, doc
        assert (ROOT / doc).is_file(), doc
