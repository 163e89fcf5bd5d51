"""The bad-resource table shared by the unit tests (pydantic) and the admission tests
(apiserver), so both layers are held to the same cases: tests/data/admission_cases.yaml.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CASES_FILE = Path(__file__).parent / "data" / "admission_cases.yaml"
FILLER_HASH = "ab" * 32


@dataclass(frozen=True)
class BadCase:
    id: str
    kind: str
    resource: dict[str, Any]
    field: str
    """The field path the error must name, e.g. `spec.proofs[0].totalHash`."""
    message: str | None = None

    @property
    def field_parts(self) -> tuple[str | int, ...]:
        return parse_field(self.field)


def _expand(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((key, args),) = value.items()
        if key == "$range":
            return list(range(*args))
        if key == "$proofs":
            return [{"stackSmallId": i, "totalHash": FILLER_HASH} for i in range(*args)]
    return value


def _walk(doc: Any, path: str) -> tuple[Any, str | int]:
    """The container holding the last component of a dotted path, and that key."""
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = doc
    for part in parts[:-1]:
        node = node[part]
    return node, parts[-1]


def parse_field(path: str) -> tuple[str | int, ...]:
    """`spec.proofs[0].totalHash` -> ("spec", "proofs", 0, "totalHash")."""
    parts: list[str | int] = []
    for piece in path.split("."):
        name, _, rest = piece.partition("[")
        parts.append(name)
        for index in filter(None, rest.replace("]", "").split("[")):
            parts.append(int(index))
    return tuple(parts)


def load_cases() -> list[BadCase]:
    data = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
    cases = []
    for raw in data["cases"]:
        resource = copy.deepcopy(data["bases"][raw["base"]])
        for path in raw.get("delete", []):
            container, key = _walk(resource, path)
            del container[key]
        for path, value in raw.get("set", {}).items():
            container, key = _walk(resource, path)
            container[key] = _expand(value)
        cases.append(
            BadCase(
                id=raw["id"],
                kind=raw["base"],
                resource=resource,
                field=raw["field"],
                message=raw.get("message"),
            )
        )
    return cases


def load_bases() -> dict[str, dict[str, Any]]:
    """The valid resources every case starts from."""
    bases: dict[str, dict[str, Any]] = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))[
        "bases"
    ]
    return bases
