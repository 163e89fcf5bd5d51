"""Operator-side enforcement of SettlementPolicy: defence in depth behind admission.

Admission (the chart's ValidatingAdmissionPolicy) refuses a forbidden resource at
`kubectl apply`; a resource that got in anyway (created before its policy changed,
admission policy not installed, a namespace no policy selects) is refused here, at the
start of every reconcile pass that could build a new transaction: nothing is signed.

`check` is a pure function of the policies, the namespace and the spec. Spend limits
are counted as *commitments*: a resource is charged gas budget x the number of
transactions it may send (the most it can cost), once, when it is first permitted; the
ledger of the current period lives in the policy's status (conditional writes, so two
operators or two passes never both spend the last of a limit), and the resource's own
status records the charge so a later pass or a restarted operator does not charge again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from atoma_operator.resources.common import GROUP, VERSION
from atoma_operator.resources.policy import (
    NAMES,
    PolicyCharge,
    SettlementPolicy,
    SpendPeriod,
)
from atoma_operator.resources.submission import SubmissionSpec
from atoma_operator.settings import Settings

log = logging.getLogger(__name__)

REASON = "NotPermitted"
"""The Stalled condition's reason for every refusal; the message names the rule."""
CHARGE_ATTEMPTS = 5


@dataclass(frozen=True)
class Permitted:
    policies: tuple[SettlementPolicy, ...]
    """Every policy that selects the namespace (each one permitted the resource)."""


@dataclass(frozen=True)
class NotPermitted:
    rule: str
    """CamelCase name of the rule that refused (NoPolicy, BadgeNotAllowed, ...)."""
    message: str
    reason: str = REASON


Decision = Permitted | NotPermitted


@dataclass(frozen=True)
class Defaults:
    """What the operator applies when a spec leaves a value out (from its settings)."""

    gas_budget: int
    gas_price: int | None  # None: the network's reference price, not a user's choice
    badges: tuple[int, ...]  # node small ids the operator holds


def defaults_from(settings: Settings) -> Defaults:
    return Defaults(
        gas_budget=settings.gas_budget,
        gas_price=settings.gas_price,
        badges=tuple(b.node_small_id for b in settings.badges),
    )


class LedgerBusy(Exception):
    """The policy's spend ledger kept changing under us; the pass is retried."""


def transactions(spec: SubmissionSpec, defaults: Defaults, *, per_badge: bool) -> int:
    """Most transactions the resource may send: one per stack (per badge for attestations
    that name no node: every held badge may be requested)."""
    stacks = len(spec.stack_small_ids)
    if per_badge and spec.node_small_id is None:
        return stacks * max(1, len(defaults.badges))
    return stacks


def committed_mist(spec: SubmissionSpec, defaults: Defaults, *, per_badge: bool) -> int:
    budget = spec.gas_budget if spec.gas_budget is not None else defaults.gas_budget
    return budget * transactions(spec, defaults, per_badge=per_badge)


def check(
    namespace: str,
    namespace_labels: dict[str, str],
    spec: SubmissionSpec,
    *,
    policies: Sequence[SettlementPolicy],
    defaults: Defaults,
) -> Decision:
    """Whether every policy selecting `namespace` permits `spec` (and at least one does).

    Spend limits are not checked here (they need the ledger): see `PolicyGate`.
    """
    selecting = tuple(p for p in policies if p.spec.selects(namespace, namespace_labels))
    if not selecting:
        return NotPermitted(
            "NoPolicy", f"no SettlementPolicy selects namespace {namespace}: nothing may be sent"
        )
    badges = (spec.node_small_id,) if spec.node_small_id is not None else defaults.badges
    budget = spec.gas_budget if spec.gas_budget is not None else defaults.gas_budget
    price = spec.gas_price if spec.gas_price is not None else defaults.gas_price
    uses_secrets = any(
        p.value_from is not None and p.value_from.secret_key_ref is not None
        for p in spec.proofs or ()
    )
    for policy in sorted(selecting, key=lambda p: p.name):
        rules = policy.spec
        where = f"SettlementPolicy {policy.name}"
        refused = [b for b in badges if b not in rules.node_small_ids]
        if refused:
            allowed = ", ".join(map(str, rules.node_small_ids)) or "none"
            named = "" if spec.node_small_id is not None else " (spec.nodeSmallId omitted)"
            return NotPermitted(
                "BadgeNotAllowed",
                f"{where}: node badge {', '.join(map(str, refused))}{named} is not allowed "
                f"in namespace {namespace} (allowed: {allowed})",
            )
        if budget > rules.max_gas_budget:
            return NotPermitted(
                "GasBudgetTooHigh",
                f"{where}: gas budget {budget} MIST exceeds maxGasBudget {rules.max_gas_budget}",
            )
        if price is not None and price > rules.max_gas_price:
            return NotPermitted(
                "GasPriceTooHigh",
                f"{where}: gas price {price} MIST exceeds maxGasPrice {rules.max_gas_price}",
            )
        if uses_secrets and not rules.allow_secret_proofs:
            return NotPermitted(
                "SecretProofsNotAllowed",
                f"{where}: proofs may not be read from Secrets in namespace {namespace} "
                "(allowSecretProofs is false)",
            )
    return Permitted(selecting)


def current_period(policy: SettlementPolicy, now: datetime) -> SpendPeriod:
    """The ledger's period at `now`: the stored one, or a fresh one once it has ended."""
    limit = policy.spec.spend_limit
    assert limit is not None
    stored = policy.status.period
    if stored is not None and now < stored.start + timedelta(seconds=limit.period_seconds):
        return stored
    return SpendPeriod(start=now.replace(microsecond=0), committed_mist=0)


def charge_decision(
    policy: SettlementPolicy, amount: int, now: datetime
) -> SpendPeriod | NotPermitted:
    """The ledger after charging `amount`, or the refusal when it would pass the limit."""
    limit = policy.spec.spend_limit
    assert limit is not None
    period = current_period(policy, now)
    total = period.committed_mist + amount
    if total > limit.mist:
        return NotPermitted(
            "SpendLimitReached",
            f"SettlementPolicy {policy.name}: spend limit reached: {period.committed_mist} of "
            f"{limit.mist} MIST committed in the period since {period.start.isoformat()}, "
            f"this resource needs {amount} (gas budget x transactions)",
        )
    return SpendPeriod(start=period.start, committed_mist=total)


class PolicyGate:
    """Reads policies and namespace labels from the API and charges spend limits."""

    def __init__(self, api_client: ApiClient, defaults: Defaults) -> None:
        self._custom = CustomObjectsApi(api_client)
        self._core = CoreV1Api(api_client)
        self.defaults = defaults

    async def policies(self) -> list[SettlementPolicy]:
        listing: dict[str, Any] = await asyncio.to_thread(
            self._custom.list_cluster_custom_object,  # type: ignore[arg-type]
            GROUP,
            VERSION,
            NAMES.plural,
        )
        return [SettlementPolicy.model_validate(item) for item in listing.get("items", [])]

    async def namespace_labels(self, namespace: str) -> dict[str, str]:
        ns = await asyncio.to_thread(self._core.read_namespace, namespace)
        return dict((ns.metadata.labels if ns.metadata else None) or {})

    async def admit(
        self,
        namespace: str,
        spec: SubmissionSpec,
        charges: list[PolicyCharge],
        *,
        per_badge: bool,
        now: datetime,
    ) -> NotPermitted | None:
        """None: the pass may build transactions (charges appended to `charges`)."""
        policies, labels = await asyncio.gather(self.policies(), self.namespace_labels(namespace))
        decision = check(namespace, labels, spec, policies=policies, defaults=self.defaults)
        if isinstance(decision, NotPermitted):
            return decision
        amount = committed_mist(spec, self.defaults, per_badge=per_badge)
        for policy in decision.policies:
            if policy.spec.spend_limit is None:
                continue
            if any(c.policy == policy.name for c in charges):
                continue  # charged once, when first permitted
            outcome = await self._charge(policy.name, amount, now)
            if isinstance(outcome, NotPermitted):
                return outcome
            charges.append(
                PolicyCharge(policy=policy.name, period_start=outcome.start, mist=amount)
            )
        return None

    async def _charge(self, name: str, amount: int, now: datetime) -> SpendPeriod | NotPermitted:
        """Compare-and-swap on the policy's status (resourceVersion): retried on conflict."""
        for _ in range(CHARGE_ATTEMPTS):
            body: dict[str, Any] = await asyncio.to_thread(
                self._custom.get_cluster_custom_object,  # type: ignore[arg-type]
                GROUP,
                VERSION,
                NAMES.plural,
                name,
            )
            policy = SettlementPolicy.model_validate(body)
            if policy.spec.spend_limit is None:
                return SpendPeriod(start=now.replace(microsecond=0), committed_mist=0)
            outcome = charge_decision(policy, amount, now)
            if isinstance(outcome, NotPermitted):
                return outcome
            body["status"] = {"period": outcome.to_k8s()}
            try:
                await asyncio.to_thread(
                    self._custom.replace_cluster_custom_object_status,  # type: ignore[arg-type]
                    GROUP,
                    VERSION,
                    NAMES.plural,
                    name,
                    body,
                )
            except ApiException as exc:
                if exc.status == 409:
                    continue
                raise
            log.info("charged %d MIST to SettlementPolicy %s", amount, name)
            return outcome
        raise LedgerBusy(f"SettlementPolicy {name}: spend ledger kept changing")
