"""The hold book (`reconcile.holds`): who holds which badge and coin, and for how long."""

from __future__ import annotations

from datetime import UTC, datetime

from simworld import fake_owned_inputs

from atoma_operator.kube import ObjectKey
from atoma_operator.reconcile.context import KeyedLocks
from atoma_operator.reconcile.holds import RESOLVED_MEMORY_SECONDS, HoldBook, UnitRef
from atoma_operator.resources.submission import GasCoinRef, PendingTransaction

KEY = ObjectKey("StackSettlement", "ns", "a")
COIN = "0x" + "c" * 64
BADGE = "0x" + "b" * 64


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pending(digest: str) -> PendingTransaction:
    import base64
    import json

    payload = {"args": [["owned", BADGE, 1, "b1"]]}
    return PendingTransaction(
        digest=digest,
        tx_bytes=base64.b64encode(json.dumps(payload).encode()).decode(),
        signatures=["AA=="],
        gas_coin=GasCoinRef(object_id=COIN, version=3, digest="c3"),
        gas_budget=1000,
        gas_price=1,
        attempt=1,
        recorded_at=datetime(2026, 3, 1, tzinfo=UTC),
    )


def _body(*digests: str) -> dict[str, object]:
    stacks = [
        {"stackSmallId": i, "pending": _pending(d).to_k8s()} for i, d in enumerate(digests, 1)
    ]
    return {"metadata": {"name": "a", "namespace": "ns"}, "status": {"stacks": stacks}}


def test_a_refused_intent_write_releases_badge_and_coin_at_once() -> None:
    book = HoldBook(inputs_of=fake_owned_inputs)
    unit = UnitRef(KEY, "stack/1")
    book.claim(unit, _pending("D1"), (BADGE, COIN))
    assert book.holder(BADGE) == "D1" and book.holder(COIN) == "D1"
    book.release("D1", recorded=False)  # 409/404 on the intent write: nothing recorded
    assert book.holder(BADGE) is None and book.holder(COIN) is None
    assert book.sizes()["resolved"] == 0, "a digest no status will show needs no masking"


def test_recorded_intents_hold_after_a_restart_until_resolved() -> None:
    clock = Clock()
    book = HoldBook(clock=clock, inputs_of=fake_owned_inputs)
    book.observe(KEY, _body("D1"))  # kopf's index: the status before any handler runs
    assert book.holder(BADGE) == "D1" and book.holder(COIN) == "D1"
    book.release("D1")  # resolved; the watch still shows it pending for a moment
    assert book.holder(BADGE) is None
    book.observe(KEY, _body())  # the write that cleared it arrives
    clock.now += RESOLVED_MEMORY_SECONDS + 1
    book.observe(KEY, _body())
    assert book.sizes() == {
        "claims": 0,
        "live": 0,
        "recorded_resources": 0,
        "recorded_objects": 0,
        "resolved": 0,
    }


def test_a_deleted_resource_leaves_its_unresolved_intent_as_an_orphan() -> None:
    book = HoldBook(inputs_of=fake_owned_inputs)
    book.observe(KEY, _body("D1"))
    book.forget(KEY, _body("D1"))
    assert [p.digest for p in book.orphans()] == ["D1"]
    assert book.holder(BADGE) == "D1", "the badge must stay held until the orphan resolves"
    assert book.may_have_been_sent("D1")
    book.release("D1")
    assert book.orphans() == [] and book.holder(BADGE) is None


def test_an_intent_whose_write_never_landed_was_never_sent() -> None:
    book = HoldBook(inputs_of=fake_owned_inputs)
    unit = UnitRef(KEY, "stack/1")
    book.claim(unit, _pending("D1"), (BADGE, COIN))  # the write then failed, no verdict
    book.forget(KEY)
    assert [p.digest for p in book.orphans()] == ["D1"]
    assert not book.may_have_been_sent("D1")
    book.confirm("D1")
    book.unconfirm("D1")  # recorded once, then wiped: it may have been sent since
    assert book.may_have_been_sent("D1") and not book.is_confirmed("D1")


def test_the_book_restores_a_unit_intent_status_lost() -> None:
    book = HoldBook(inputs_of=fake_owned_inputs)
    unit = UnitRef(KEY, "stack/1")
    book.claim(unit, _pending("D1"), (BADGE, COIN))
    assert book.intent_for(unit) is not None
    assert book.intent_for(UnitRef(KEY, "stack/2")) is None
    book.release("D1")
    assert book.intent_for(unit) is None


async def test_keyed_locks_keep_nothing_for_idle_keys() -> None:
    locks = KeyedLocks()
    for stack in range(1000):
        async with locks(("stack", stack)):
            assert len(locks) == 1
    assert len(locks) == 0


def test_a_namesake_re_created_while_an_orphan_resolves_does_not_inherit_it() -> None:
    """GitOps re-creates a deleted resource under the same name while the old one's
    transaction is still unresolved: the orphan keeps the badge held, but it is not
    written into the new resource's status as if it were its own."""
    book = HoldBook(inputs_of=fake_owned_inputs)
    unit = UnitRef(KEY, "stack/1")
    book.claim(unit, _pending("D1"), (BADGE, COIN))
    book.confirm("D1")
    book.forget(KEY)
    assert book.intent_for(unit) is None
    assert book.holder(BADGE) == "D1"


def test_recorded_holds_decode_each_intent_once_and_survive_odd_fields() -> None:
    """Every watch event of a resource with an intent asks for its holds: the bytes are
    decoded once per intent (memoised), the answer is the same, odd edits do not crash."""
    from atoma_operator.reconcile.holds import recorded_holds

    calls: list[str] = []

    def counting(tx_bytes: str) -> list[str]:
        calls.append(tx_bytes)
        return fake_owned_inputs(tx_bytes)

    body = _body("d-memo-1", "d-memo-2")
    first = recorded_holds(body, counting)
    assert first == {
        (COIN, "d-memo-1"),
        (BADGE, "d-memo-1"),
        (COIN, "d-memo-2"),
        (BADGE, "d-memo-2"),
    }
    assert recorded_holds(body, counting) == first
    assert len(calls) == 2, "decoded once per intent, not once per event"
    odd = _body("d-memo-3")
    odd["status"]["stacks"][0]["pending"]["txBytes"] = ["not", "a", "string"]  # type: ignore[index]
    assert recorded_holds(odd, counting) == frozenset()  # invalid: nothing held, no crash
    edited = _body("d-memo-1")
    edited["status"]["stacks"][0]["pending"]["gasCoin"]["objectId"] = BADGE  # type: ignore[index]
    assert recorded_holds(edited, counting) == {(BADGE, "d-memo-1")}, "new fields, new answer"


def test_an_intent_signed_here_is_not_decoded_when_its_record_is_seen() -> None:
    """The watch shows each intent we wrote once: its objects are the ones we claimed."""
    decoded: list[str] = []

    def counting(tx_bytes: str) -> list[str]:
        decoded.append(tx_bytes)
        return fake_owned_inputs(tx_bytes)

    book = HoldBook(clock=Clock(), inputs_of=counting)
    pending = _pending("d-own-1")
    book.claim(UnitRef(KEY, "stack/1"), pending, [COIN, BADGE])
    book.observe(KEY, _body("d-own-1"))
    assert decoded == []
    assert book.holder(BADGE) == "d-own-1" and book.holder(COIN) == "d-own-1"
    book.observe(KEY, _body("d-other-1"))  # not ours (another replica, a restart): decoded
    assert len(decoded) == 1 and book.holder(BADGE) == "d-own-1"
