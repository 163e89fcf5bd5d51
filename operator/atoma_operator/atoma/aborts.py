"""Abort codes of the Atoma `db` module (312012000 + n) and what each means for the operator.

Names and numbers are those of `atoma::db` (atoma-contracts, sources/db.move). The
disposition says whether retrying the same call can ever help: RETRYABLE (later, e.g. the
next epoch), TERMINAL (never, without a new resource), or a benign "already done" outcome
that the operator turns into reading the chain instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

EBASE = 312_012_000

# Codes of the Sui framework that the calls we make can hit: a missing Table/ObjectTable
# entry (stack not found in try_settle_stack, ticket not found in claim_funds or
# start_attestation_dispute) aborts inside `0x2::dynamic_field`.
DYNAMIC_FIELD_MODULE = "dynamic_field"
E_FIELD_ALREADY_EXISTS = 0
E_FIELD_DOES_NOT_EXIST = 1


class Disposition(StrEnum):
    RETRYABLE = "Retryable"
    TERMINAL = "Terminal"
    ALREADY_SETTLED = "AlreadySettled"  # a ticket exists: read it instead of failing
    ALREADY_CLAIMED = "AlreadyClaimed"


@dataclass(frozen=True)
class AbortInfo:
    code: int
    name: str  # the Move constant's name, or "Unknown"
    meaning: str  # one sentence a user can act on
    disposition: Disposition

    @property
    def retryable(self) -> bool:
        return self.disposition is Disposition.RETRYABLE

    @property
    def terminal(self) -> bool:
        return self.disposition is Disposition.TERMINAL


_R, _T = Disposition.RETRYABLE, Disposition.TERMINAL

# n -> (constant name, meaning, disposition); n = 8 is not defined by the contract.
_TABLE: dict[int, tuple[str, str, Disposition]] = {
    0: ("ENodeRegDisabled", "node registration is disabled", _T),
    1: ("EModelDisabled", "the model is disabled", _T),
    2: ("ENotAuthorized", "the caller is not authorized for this call", _T),
    3: ("EProtocolFeeCannotBeZero", "the protocol fee cannot be zero", _T),
    4: ("ERelativePerformanceCannotBeZero", "relative performance cannot be zero", _T),
    5: ("EEchelonNotFound", "the model echelon does not exist", _T),
    6: ("EEchelonAlreadyExistsForModel", "the echelon already exists for this model", _T),
    7: ("ETotalPermilleMustBeLessThan1000", "permille settings must total less than 1000", _T),
    9: ("ENodeAlreadySubscribedToModel", "the node is already subscribed to the model", _T),
    10: ("ENodeNotSubscribedToModel", "the node is not subscribed to the model", _T),
    11: ("ENodeIndexMismatch", "node index mismatch", _T),
    12: ("ENodeAlreadyDisabled", "the node is already disabled", _T),
    13: ("ENodeMustWaitBeforeDestroy", "the node must wait more epochs before destroy", _R),
    14: ("ECannotSampleZeroNodes", "cannot sample zero nodes", _T),
    15: ("ETaskDeprecated", "the task is deprecated", _T),
    16: ("ENodeAlreadySubscribedToTask", "the node is already subscribed to the task", _T),
    17: ("ETaskNotFound", "the task does not exist", _T),
    18: ("ENodeNotSubscribedToTask", "the node is not subscribed to the task", _T),
    19: ("ENotEnoughEpochsPassed", "not enough epochs have passed yet", _R),
    20: ("ETaskNotDeprecated", "the task is not deprecated", _T),
    21: ("ENoNodesSubscribedToTask", "no nodes are subscribed to the task", _T),
    22: ("ENoNodesEligibleForTask", "no nodes are eligible for the task", _T),
    23: (
        "ENodeNotSelectedForStack",
        "this node badge is not the stack's selected node; only the selected node can settle it",
        _T,
    ),
    24: (
        "EStackInSettlementDispute",
        "a settlement ticket already exists for this stack: it is already settled (or settling)",
        Disposition.ALREADY_SETTLED,
    ),
    25: (
        "ETooManyComputedUnits",
        "the claimed compute units exceed the stack's compute units",
        _T,
    ),
    26: (
        "EStackDoesNotRequireSamplingConsensus",
        "the stack's task is not SamplingConsensus, so it takes no attestations",
        _T,
    ),
    27: ("EStackNotFound", "the stack does not exist (never created, or already claimed)", _T),
    28: (
        "EStackNotInSettlementDispute",
        "the stack has no settlement ticket yet; attest after try_settle_stack",
        _R,
    ),
    29: (
        "EStackDisputePeriodOver",
        "the attestation window closed (current epoch is past dispute_settled_at_epoch)",
        _T,
    ),
    30: (
        "ENodeNotSelectedForAttestation",
        "this node badge is not among the ticket's requested attestation nodes",
        _T,
    ),
    31: ("EStackInDispute", "the settlement ticket is in dispute and cannot be claimed", _T),
    32: (
        "EStackDisputePeriodIsNotOver",
        "the dispute period is not over yet; claim again at dispute_settled_at_epoch",
        _R,
    ),
    33: (
        "ENodeNotSelectedForSettlement",
        "this node badge is not the ticket's selected node; only it can claim",
        _T,
    ),
    34: ("ETaskAlreadyDeprecated", "the task is already deprecated", _T),
    35: ("EInvalidTaskRole", "invalid task role", _T),
    36: ("EInvalidSecurityLevel", "invalid security level", _T),
    37: ("EInvalidPricePerComputeUnit", "invalid price per compute unit", _T),
    38: ("ENodeDoesNotMeetTaskRequirements", "the node does not meet the task requirements", _T),
    39: ("EInvalidComputeUnits", "invalid number of compute units", _T),
    40: ("EInsufficientBalance", "insufficient balance", _T),
    41: ("EInvalidCommittedStackProof", "the committed stack proof is not 32 bytes", _T),
    42: ("EInvalidStackMerkleLeaf", "the stack merkle leaf is not 32 bytes", _T),
    43: ("EInvalidMinimumReputationScore", "invalid minimum reputation score", _T),
    44: ("ETaskIsPublic", "the task is public", _T),
    45: ("ENodeNotWhitelistedForTask", "the node is not whitelisted for the task", _T),
    46: ("EStackAlreadyInDispute", "the settlement ticket is already in dispute", _T),
    47: (
        "ETaskSecurityLevelNotSamplingConsensus",
        "disputes need a SamplingConsensus task",
        _T,
    ),
    48: ("EInvalidDeviceType", "invalid device type", _T),
    49: ("EInvalidKeyRotationCounter", "invalid key rotation counter", _T),
    50: ("EPublicKeyCommitmentMismatch", "public key commitment mismatch", _T),
    51: ("ETaskIsNotConfidentialCompute", "the task is not ConfidentialCompute", _T),
    52: (
        "EInvalidNumClaimedComputeUnitsPerStack",
        "claimed compute units per stack are invalid",
        _T,
    ),
    53: (
        "EStackAlreadyClaimed",
        "the stack's funds were already claimed",
        Disposition.ALREADY_CLAIMED,
    ),
    54: ("ENodeNotSelectedForClaim", "this node badge is not the stack's selected node", _T),
}

ABORTS: dict[int, AbortInfo] = {
    EBASE + n: AbortInfo(EBASE + n, name, meaning, disp)
    for n, (name, meaning, disp) in _TABLE.items()
}
"""Every abort code the `db` module defines, keyed by the full code."""

BY_NAME: dict[str, AbortInfo] = {info.name: info for info in ABORTS.values()}

FIELD_DOES_NOT_EXIST = AbortInfo(
    E_FIELD_DOES_NOT_EXIST,
    "EFieldDoesNotExist",
    "the stack or its settlement ticket does not exist on chain "
    "(never created, or already claimed and removed)",
    _T,
)


def code(name: str) -> int:
    """The full abort code of a constant, e.g. code("ETooManyComputedUnits") == 312012025."""
    return BY_NAME[name].code


def classify_abort(abort_code: int, module: str | None = None) -> AbortInfo:
    """What an abort means. `module` (from the effects, e.g. "0x2::dynamic_field") matters
    only for framework codes, which are small numbers shared between modules."""
    if module is not None and module.rsplit("::", 1)[-1] == DYNAMIC_FIELD_MODULE:
        if abort_code == E_FIELD_DOES_NOT_EXIST:
            return FIELD_DOES_NOT_EXIST
        return AbortInfo(
            abort_code,
            "Unknown",
            f"unexpected abort {abort_code} in Sui's dynamic_field module",
            _T,
        )
    info = ABORTS.get(abort_code)
    if info is not None:
        return info
    where = f" in module {module}" if module else ""
    return AbortInfo(
        abort_code,
        "Unknown",
        f"unknown abort code {abort_code}{where}; not retried",
        _T,
    )
