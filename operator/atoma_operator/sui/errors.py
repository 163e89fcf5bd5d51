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
    SIGNATURE = "Signature"  # signature invalid or signer is not the sender / gas owner
    EQUIVOCATION = "Equivocation"  # an owned object is already used by another transaction
    LOCKED = "Locked"  # an owned object is locked for the rest of the epoch
    STALE_OBJECT = "StaleObject"  # an input object's version or digest is not current
    OBJECT_NOT_FOUND = "ObjectNotFound"
    INSUFFICIENT_GAS = "InsufficientGas"  # gas coin balance below the budget
    GAS_PRICE = "GasPrice"  # gas price below the reference price
    INVALID = "Invalid"  # malformed or otherwise invalid transaction
    OTHER = "Other"


class TransactionRejected(ChainError):
    """The node refused the transaction before execution: no effects, no gas charged."""

    def __init__(self, kind: RejectionKind, message: str) -> None:
        super().__init__(f"{kind.value}: {message}")
        self.kind = kind
        self.detail = message

    @property
    def is_equivocation(self) -> bool:
        """The coin is tied up by another transaction until the epoch ends."""
        return self.kind in (RejectionKind.EQUIVOCATION, RejectionKind.LOCKED)


# Keyword table over the node's message (Sui's error names and the stand-in's texts);
# the first match wins, so the more specific entries come first.
_KEYWORDS: tuple[tuple[RejectionKind, tuple[str, ...]], ...] = (
    (
        RejectionKind.EQUIVOCATION,
        (
            "already locked by a different transaction",
            "objectsdoubleused",
            "double used",
            "conflicting transaction",
        ),
    ),
    (
        RejectionKind.LOCKED,
        ("equivocat", "objectlockconflict", "lock conflict", "locked"),
    ),
    (RejectionKind.SIGNATURE, ("signature", "signer", "not signed by the correct sender")),
    (
        RejectionKind.INSUFFICIENT_GAS,
        ("gasbalancetoolow", "insufficient gas", "insufficientgas", "gas balance"),
    ),
    (RejectionKind.GAS_PRICE, ("gaspricetoolow", "gas price", "gaspriceunderrgp")),
    (
        RejectionKind.STALE_OBJECT,
        (
            "objectversionunavailableforconsumption",
            "not available for consumption",
            "object digest",
            "objectdigest",
            "startingversionmismatch",
            "stale",
        ),
    ),
    (
        RejectionKind.OBJECT_NOT_FOUND,
        ("objectnotfound", "could not find", "not found", "does not exist"),
    ),
)


def classify_rejection(message: str) -> RejectionKind:
    """Why the node refused a transaction, from its error text."""
    text = message.lower()
    for kind, words in _KEYWORDS:
        if any(w in text for w in words):
            return kind
    return RejectionKind.INVALID if text else RejectionKind.OTHER
