"""Typed chain errors, so callers decide retry versus stop without parsing text.

`ChainUnavailable`: the node could not be asked or did not answer (retry later; a
transaction sent may or may not have executed). `TransactionRejected`: the node refused
a transaction before executing it; `kind` says why (an equivocated or locked coin is
different from a bad signature). `ChainError`: anything else the node said that we
cannot use. Messages carry the node's text but never key material.
"""

from __future__ import annotations

from enum import StrEnum


class ChainError(Exception):
    """The chain answered, but not with something usable."""


class ChainUnavailable(ChainError):
    """The node was unreachable, timed out or overloaded: retryable."""


class EventsNotServed(ChainError):
    """The node does not serve ListEvents (its RPC indexes are disabled, the default)."""


class EventCursorRejected(ChainError):
    """The node refused the event cursor or start checkpoint: below its pruning floor
    (OUT_OF_RANGE) or not a cursor it understands. Resuming from it can never work."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason  # "out_of_range" | "invalid"


class RejectionKind(StrEnum):
    """Why the node refused a transaction before executing it (sui-network.md's table).

    Aliases keep the older names working: EQUIVOCATION and LOCKED are LOCK_CONFLICT,
    STALE_OBJECT is STALE_VERSION, INSUFFICIENT_GAS is GAS_BALANCE_TOO_LOW, GAS_PRICE is
    GAS_PRICE_TOO_LOW.
    """

    SIGNATURE = "Signature"  # signature invalid or signer is not the sender / gas owner
    LOCK_CONFLICT = "LockConflict"  # an owned input version is locked by another transaction
    STALE_VERSION = "StaleObject"  # an input object's version or digest is not current
    OBJECT_NOT_FOUND = "ObjectNotFound"
    GAS_BALANCE_TOO_LOW = "GasBalanceTooLow"  # gas coin balance below the budget
    GAS_BUDGET_TOO_LOW = "GasBudgetTooLow"  # below 1000 x gas price (protocol minimum)
    GAS_BUDGET_TOO_HIGH = "GasBudgetTooHigh"  # above the protocol maximum (50 SUI)
    GAS_PRICE_TOO_LOW = "GasPrice"  # below the epoch's reference gas price
    GAS_PRICE_TOO_HIGH = "GasPriceTooHigh"  # above the protocol maximum (100,000 MIST)
    INVALID = "Invalid"  # malformed or otherwise invalid transaction
    OTHER = "Other"
    EQUIVOCATION = "LockConflict"
    LOCKED = "LockConflict"
    STALE_OBJECT = "StaleObject"
    INSUFFICIENT_GAS = "GasBalanceTooLow"
    GAS_PRICE = "GasPrice"


NEVER_ACCEPTED: frozenset[RejectionKind] = frozenset(
    {
        RejectionKind.GAS_BUDGET_TOO_LOW,
        RejectionKind.GAS_BUDGET_TOO_HIGH,
        RejectionKind.GAS_PRICE_TOO_HIGH,
    }
)
"""Refusals of the transaction's own gas settings that no retry of the same settings can
fix (a price under the reference price may pass next epoch; a low balance after funding)."""


class TransactionRejected(ChainError):
    """The node refused the transaction before execution: no effects, no gas charged."""

    def __init__(self, kind: RejectionKind, message: str) -> None:
        super().__init__(f"{kind.value}: {message}")
        self.kind = kind
        self.detail = message

    @property
    def is_equivocation(self) -> bool:
        """An owned input version is locked by another transaction (lost a race)."""
        return self.kind is RejectionKind.LOCK_CONFLICT

    @property
    def retry_cannot_fix(self) -> bool:
        """The same gas settings will be refused every time: Stalled, not retried."""
        return self.kind in NEVER_ACCEPTED


# Message table for the codes several cases share (Sui's UserInputError texts; the first
# match wins, so the more specific entries come first). Signature errors are checked
# before anything else on Sui, so they come first here too.
_MESSAGES: tuple[tuple[RejectionKind, tuple[str, ...]], ...] = (
    (
        RejectionKind.SIGNATURE,
        ("signature", "signer", "not signed by the correct sender"),
    ),
    (
        RejectionKind.LOCK_CONFLICT,
        (
            "already locked by a different transaction",
            "objectlockconflict",
            "objectsdoubleused",
            "equivocated",
        ),
    ),
    (
        RejectionKind.STALE_VERSION,
        (
            "not available for consumption",
            "objectversionunavailableforconsumption",
            "invalid object digest",
            "startingversionmismatch",
        ),
    ),
    (RejectionKind.GAS_BUDGET_TOO_LOW, ("is lower than min",)),
    (RejectionKind.GAS_BUDGET_TOO_HIGH, ("is higher than max",)),
    (
        RejectionKind.GAS_BALANCE_TOO_LOW,
        ("balance of gas object", "gasbalancetoolow", "insufficient gas", "gas balance"),
    ),
    (RejectionKind.GAS_PRICE_TOO_LOW, ("under reference gas price", "gaspriceunderrgp")),
    (RejectionKind.GAS_PRICE_TOO_HIGH, ("gas price cannot exceed", "gaspricetoohigh")),
    (
        RejectionKind.OBJECT_NOT_FOUND,
        ("objectnotfound", "could not find", "not found", "does not exist"),
    ),
)


def classify_rejection(message: str, code: str | None = None) -> RejectionKind:
    """Why the node refused a transaction: by gRPC status `code` (its name, e.g.
    "FAILED_PRECONDITION") first, by message only among the cases that share a code."""
    if code == "FAILED_PRECONDITION":
        return RejectionKind.LOCK_CONFLICT  # sui-rpc-api: ObjectLockConflict's only code
    if code == "NOT_FOUND":
        return RejectionKind.OBJECT_NOT_FOUND
    text = message.lower()
    for kind, words in _MESSAGES:
        if any(w in text for w in words):
            return kind
    return RejectionKind.INVALID if text else RejectionKind.OTHER
