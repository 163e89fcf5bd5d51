"""The registry keeps nothing per final resource, yet its condition counts stay exact
under any sequence of creations, status changes, wipes, deletions (seen or missed while
the watch was down) and re-lists: a Hypothesis state machine against a model cluster."""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from atoma_operator.kube import ObjectKey
from atoma_operator.registry import StackRegistry, has_pending, is_final

KINDS = ("StackSettlement", "Attestation")
NAMES = st.sampled_from(["a", "b", "c", "d"])
NAMESPACES = st.sampled_from(["x", "y"])
SHAPES = st.sampled_from(["new", "open", "settled", "failed-stalled", "wiped"])


def shaped(kind: str, ns: str, name: str, shape: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": kind,
        "metadata": {"namespace": ns, "name": name, "generation": 1},
        "spec": {"stackSmallIds": [1, 2]},
    }
    if shape in ("new", "wiped"):
        return body
    phase = {"open": "Submitting", "settled": "Settled", "failed-stalled": "Failed"}[shape]
    ready = "True" if shape == "settled" else "False"
    stalled = "True" if shape == "failed-stalled" else "False"
    body["status"] = {
        "stacks": [{"stackSmallId": 1, "phase": phase}, {"stackSmallId": 2, "phase": phase}],
        "conditions": [
            {"type": "Ready", "status": ready, "lastTransitionTime": "2026-12-07T10:00:00Z"},
            {"type": "Reconciling", "status": "True" if shape == "open" else "False"},
            {"type": "Stalled", "status": stalled},
        ],
    }
    return body


def condition(body: dict[str, Any]) -> str:
    state = {c["type"]: c["status"] for c in (body.get("status") or {}).get("conditions") or []}
    if state.get("Stalled") == "True":
        return "Stalled"
    return "Ready" if state.get("Ready") == "True" else "Reconciling"


class RegistryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.reg = StackRegistry()
        self.cluster: dict[ObjectKey, dict[str, Any]] = {}
        self.missed = False  # a deletion happened while the watch was down

    @rule(kind=st.sampled_from(KINDS), ns=NAMESPACES, name=NAMES, shape=SHAPES)
    def write(self, kind: str, ns: str, name: str, shape: str) -> None:
        key = ObjectKey(kind, ns, name)
        event = "MODIFIED" if key in self.cluster else "ADDED"
        self.cluster[key] = shaped(kind, ns, name, shape)
        self.reg.observe(kind, event, self.cluster[key])

    @rule(data=st.data())
    @precondition(lambda self: self.cluster)
    def delete(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.cluster, key=repr)))
        self.reg.observe(key.kind, "DELETED", self.cluster.pop(key))

    @rule(data=st.data())
    @precondition(lambda self: self.cluster)
    def delete_unseen(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.cluster, key=repr)))
        del self.cluster[key]
        self.missed = True

    @rule(kind=st.sampled_from(KINDS), ns=st.one_of(st.none(), NAMESPACES))
    def relist(self, kind: str, ns: str | None) -> None:
        """What the informer does after a 410: list its scope (every item as ADDED), then
        tell the registry the listing ended (the controller's on_listed)."""
        self.reg.begin_listing(kind, ns)
        listed = {
            k: b for k, b in self.cluster.items() if k.kind == kind and ns in (None, k.namespace)
        }
        for body in listed.values():
            self.reg.observe(kind, "ADDED", body)
        self.reg.listed(kind, ns)
        if not any(True for _ in self._scopes_missing()):
            self.missed = False

    def _scopes_missing(self) -> list[None]:
        return [None] if self.missed else []

    @invariant()
    def open_resources_are_exact(self) -> None:
        if self.missed:
            return
        want = {k for k, b in self.cluster.items() if not is_final(b)}
        assert set(self.reg.open_resources()) == want

    @invariant()
    def counts_are_exact(self) -> None:
        if self.missed:
            return
        want: dict[str, dict[str, int]] = {}
        for key, body in self.cluster.items():
            counts = want.setdefault(key.kind, {"Ready": 0, "Reconciling": 0, "Stalled": 0})
            counts[condition(body)] += 1
        got = {k: v for k, v in self.reg.condition_counts().items() if any(v.values())}
        assert got == want
        assert len(self.reg) == len(self.cluster)

    @invariant()
    def only_open_resources_are_indexed_by_stack(self) -> None:
        if self.missed:
            return
        want = {k for k, b in self.cluster.items() if not (is_final(b) and not has_pending(b))}
        assert self.reg.resources_for(1) == want == self.reg.resources_for(2)


class FullRelist(RegistryMachine):
    """Missed deletions are repaired once every scope has been listed again."""

    @rule()
    def relist_everything(self) -> None:
        for kind in KINDS:
            RegistryMachine.relist(self, kind, None)
        self.missed = False


TestRegistryCounts = FullRelist.TestCase
TestRegistryCounts.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
