"""SettlementPolicy enforcement in the operator: `check`, the spend ledger, the pass hook."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fakes import FakeClock, FakeGateway, StatusLog, make_context
from kubernetes.client import ApiClient

from atoma_operator.policy import (
    Defaults,
    NotPermitted,
    Permitted,
    PolicyGate,
    SpendPeriod,
    charge_decision,
    check,
    committed_mist,
)
from atoma_operator.reconcile.attestation import conclude as conclude_attestation
from atoma_operator.reconcile.attestation import reconcile_attestation
from atoma_operator.reconcile.settlement import conclude, reconcile_settlement
from atoma_operator.resources.attestation import AttestationSpec, AttestationStatus
from atoma_operator.resources.policy import SettlementPolicy
from atoma_operator.resources.proofs import KeySelector, ProofValueSource, StackProof
from atoma_operator.resources.stack_settlement import (
    SettlementPhase,
    StackSettlementSpec,
    StackSettlementStatus,
)

NS = "team-a"
TOTAL_HASH = "ab" * 64
DEFAULTS = Defaults(gas_budget=50_000_000, gas_price=None, badges=(1,))
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def policy(name: str = "p", **spec: Any) -> SettlementPolicy:
    body = {
        "namespaces": [NS],
        "nodeSmallIds": [1],
        "maxGasBudget": 50_000_000,
        "maxGasPrice": 1_000,
        **spec,
    }
    return SettlementPolicy.model_validate({"metadata": {"name": name}, "spec": body})


def stl(stacks: list[int] | None = None, **fields: Any) -> StackSettlementSpec:
    stacks = stacks or [1]
    return StackSettlementSpec.model_validate(
        {
            "stackSmallIds": stacks,
            "numClaimedComputeUnits": 10,
            "proofs": [{"stackSmallId": s, "totalHash": TOTAL_HASH} for s in stacks],
            **fields,
        }
    )


def refused(decision: Permitted | NotPermitted) -> NotPermitted:
    assert isinstance(decision, NotPermitted), decision
    return decision


def test_no_policy_selecting_the_namespace_is_refused() -> None:
    d = refused(check(NS, {}, stl(), policies=[policy(namespaces=["other"])], defaults=DEFAULTS))
    assert d.rule == "NoPolicy" and d.reason == "NotPermitted" and NS in d.message


def test_selection_by_label_and_by_name() -> None:
    by_label = policy(namespaces=None, namespaceSelector={"matchLabels": {"team": "a"}})
    assert isinstance(
        check(NS, {"team": "a", "x": "y"}, stl(), policies=[by_label], defaults=DEFAULTS),
        Permitted,
    )
    refused(check(NS, {"team": "b"}, stl(), policies=[by_label], defaults=DEFAULTS))
    assert isinstance(check(NS, {}, stl(), policies=[policy()], defaults=DEFAULTS), Permitted)


@pytest.mark.parametrize(
    ("fields", "rule", "named"),
    [
        ({"nodeSmallId": 2}, "BadgeNotAllowed", "node badge 2"),
        ({"gasBudget": 50_000_001}, "GasBudgetTooHigh", "maxGasBudget 50000000"),
        ({"gasPrice": 1_001}, "GasPriceTooHigh", "maxGasPrice 1000"),
    ],
)
def test_each_rule_refuses_and_is_named(fields: dict[str, Any], rule: str, named: str) -> None:
    d = refused(check(NS, {}, stl(**fields), policies=[policy()], defaults=DEFAULTS))
    assert d.rule == rule and named in d.message and "SettlementPolicy p" in d.message


def test_omitted_values_are_checked_as_the_operator_would_fill_them() -> None:
    # No nodeSmallId: the operator's own badges; no gasBudget: its default budget.
    two_badges = Defaults(gas_budget=60_000_000, gas_price=2_000, badges=(1, 3))
    d = refused(check(NS, {}, stl(), policies=[policy()], defaults=two_badges))
    assert d.rule == "BadgeNotAllowed" and "spec.nodeSmallId omitted" in d.message
    wide = policy(nodeSmallIds=[1, 3])
    assert refused(check(NS, {}, stl(), policies=[wide], defaults=two_badges)).rule == (
        "GasBudgetTooHigh"
    )
    # The network's reference price (gas_price None) is not a user's choice: not checked.
    assert isinstance(check(NS, {}, stl(), policies=[policy()], defaults=DEFAULTS), Permitted)


def test_secret_proofs_need_the_policy_to_allow_them() -> None:
    ref = KeySelector(name="proofs", key="k")
    spec = stl()
    spec.proofs = [StackProof(stack_small_id=1, value_from=ProofValueSource(secret_key_ref=ref))]
    assert refused(check(NS, {}, spec, policies=[policy()], defaults=DEFAULTS)).rule == (
        "SecretProofsNotAllowed"
    )
    allowed = policy(allowSecretProofs=True)
    assert isinstance(check(NS, {}, spec, policies=[allowed], defaults=DEFAULTS), Permitted)


def test_every_selecting_policy_must_permit() -> None:
    strict = policy("strict", maxGasBudget=1_000_000)
    d = refused(check(NS, {}, stl(), policies=[policy(), strict], defaults=DEFAULTS))
    assert "SettlementPolicy strict" in d.message


def test_commitment_is_budget_times_transactions() -> None:
    assert committed_mist(stl([1, 2, 3]), DEFAULTS, per_badge=False) == 150_000_000
    assert committed_mist(stl([1], gasBudget=2_000_000), DEFAULTS, per_badge=False) == 2_000_000
    many = Defaults(gas_budget=10, gas_price=None, badges=(1, 2, 3))
    assert committed_mist(stl([1, 2]), many, per_badge=True) == 60  # every badge may attest


def test_ledger_refuses_past_the_limit_and_starts_over_next_period() -> None:
    p = policy(spendLimit={"mist": 100, "periodSeconds": 3600})
    first = charge_decision(p, 60, NOW)
    assert isinstance(first, SpendPeriod) and first.committed_mist == 60
    p.status.period = first
    d = charge_decision(p, 41, NOW + timedelta(minutes=5))
    assert isinstance(d, NotPermitted) and d.rule == "SpendLimitReached"
    assert "60 of 100 MIST" in d.message
    exact = charge_decision(p, 40, NOW + timedelta(minutes=5))
    assert isinstance(exact, SpendPeriod) and exact.committed_mist == 100
    later = charge_decision(p, 100, NOW + timedelta(hours=1))
    assert isinstance(later, SpendPeriod) and later.committed_mist == 100
    assert later.start == NOW + timedelta(hours=1)


class MemoryGate(PolicyGate):
    """The real admit() over in-memory policies and labels (no API server)."""

    def __init__(self, policies: list[SettlementPolicy], labels: dict[str, str] | None = None):
        super().__init__(ApiClient(), DEFAULTS)
        self.items = {p.name: p for p in policies}
        self.labels = labels or {}

    async def policies(self) -> list[SettlementPolicy]:
        return list(self.items.values())

    async def namespace_labels(self, namespace: str) -> dict[str, str]:
        return self.labels

    async def _charge(self, name: str, amount: int, now: datetime) -> SpendPeriod | NotPermitted:
        outcome = charge_decision(self.items[name], amount, now)
        if isinstance(outcome, SpendPeriod):
            self.items[name].status.period = outcome
        return outcome


async def _settle(gate: MemoryGate, spec: StackSettlementSpec, status: StackSettlementStatus):  # type: ignore[no-untyped-def]
    gw = FakeGateway()
    gw.add_coin()
    badges = [gw.add_badge(1)]
    ctx = make_context(gw, badges=badges, clock=FakeClock())
    ctx.policy = gate
    result = await asyncio.wait_for(
        reconcile_settlement(
            namespace=NS,
            name="s",
            generation=1,
            spec=spec,
            status=status,
            ctx=ctx,
            write_status=StatusLog(gw),
        ),
        2.0,
    )
    conclude(result.status, 1)
    return gw, result


def _stalled(conditions: list[Any]) -> tuple[str, str]:
    c = next(c.to_k8s() for c in conditions if c.type == "Stalled")
    return c["status"], c["reason"]


async def test_a_refused_settlement_is_stalled_and_nothing_is_signed() -> None:
    gate = MemoryGate([policy(maxGasBudget=1_000)])
    status = StackSettlementStatus()
    gw, result = await _settle(gate, stl([1, 2]), status)
    assert gw.calls["build_and_sign"] == 0 and gw.calls["execute"] == 0
    assert all(
        s.phase is SettlementPhase.FAILED and s.reason == "NotPermitted" for s in status.stacks
    )
    assert _stalled(status.conditions) == ("True", "NotPermitted")
    assert "maxGasBudget" in (status.stacks[0].last_error or "")
    assert any(n.reason == "NotPermitted" for n in result.notices)


async def test_spend_limit_is_reached_and_charges_are_not_repeated() -> None:
    # Room for one resource of 2 stacks x 50,000,000 MIST, not for a second one.
    gate = MemoryGate([policy(spendLimit={"mist": 150_000_000, "periodSeconds": 3600})])
    first = StackSettlementStatus()
    gw, _ = await _settle(gate, stl([1, 2]), first)
    assert gw.calls["execute"] == 2
    assert [(c.policy, c.mist) for c in first.policy_charges] == [("p", 100_000_000)]
    period = gate.items["p"].status.period
    assert period is not None and period.committed_mist == 100_000_000
    # A later pass of the same resource (or a restart: the charge is in its status) is
    # not charged again.
    restored = StackSettlementStatus.model_validate(first.to_k8s())
    restored.stacks[0].phase = SettlementPhase.PENDING  # pretend a unit is still open
    restored.stacks[0].tx_digest = None
    await _settle(gate, stl([1, 2]), restored)
    assert gate.items["p"].status.period.committed_mist == 100_000_000  # type: ignore[union-attr]
    second = StackSettlementStatus()
    gw2, _ = await _settle(gate, stl([3, 4]), second)
    assert gw2.calls["build_and_sign"] == 0
    assert _stalled(second.conditions) == ("True", "NotPermitted")
    assert "spend limit reached" in (second.stacks[0].last_error or "")


async def test_a_policy_change_while_a_resource_waits_refuses_its_next_pass() -> None:
    gate = MemoryGate([policy()])
    ref = KeySelector(name="cm", key="k")
    spec = stl([1])
    spec.proofs = [
        StackProof(stack_small_id=1, value_from=ProofValueSource(config_map_key_ref=ref))
    ]
    status = StackSettlementStatus()
    await _settle(gate, spec, status)
    assert status.stacks[0].reason == "WaitingForProofInput"
    gate.items["p"] = policy(nodeSmallIds=[9])  # the admin narrows the policy meanwhile
    status.stacks[0].next_retry_time = None
    gw, _ = await _settle(gate, spec, status)
    assert status.stacks[0].reason == "NotPermitted"
    assert gw.calls["build_and_sign"] == 0


async def test_a_refused_attestation_is_stalled_and_nothing_is_signed() -> None:
    gw = FakeGateway()
    gw.add_coin()
    ctx = make_context(gw, badges=[gw.add_badge(1)], clock=FakeClock())
    ctx.policy = MemoryGate([policy(namespaces=["elsewhere"])])
    status = AttestationStatus()
    spec = AttestationSpec(
        stack_small_ids=[1], proofs=[StackProof(stack_small_id=1, total_hash=TOTAL_HASH)]
    )
    result = await reconcile_attestation(
        namespace=NS, name="a", generation=1, spec=spec, status=status, ctx=ctx,
        write_status=StatusLog(gw),
    )  # fmt: skip
    conclude_attestation(result.status, result.problems, 1)
    assert gw.calls["build_and_sign"] == 0
    assert _stalled(status.conditions) == ("True", "NotPermitted")
