"""The stand-in's primitives against pysui's own implementations."""

from __future__ import annotations

import base64

import pytest
from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_common.txn_base import _SuiTransactionBase
from pysui.sui.sui_crypto import create_new_keypair, keypair_from_keystring

from sui_localnet import bcs
from sui_localnet.crypto import (
    SignatureError,
    b58decode,
    b58encode,
    transaction_digest,
    verify_user_signature,
)
from sui_localnet.devkey import dev_key
from sui_localnet.ledger import type_matches
from sui_localnet.objects import Owner, StoredObject, coin_value


def test_transaction_digest_matches_pysui():
    data = bytes(range(200))
    assert transaction_digest(data) == _SuiTransactionBase.digest_from_bytes(data)


@pytest.mark.parametrize("scheme", list(SignatureScheme)[:3])
def test_signature_verifies_and_binds_to_the_message(scheme):
    _, kp = create_new_keypair(scheme)
    msg = b"transaction bytes"
    sig = base64.b64decode(kp.new_sign_secure(base64.b64encode(msg).decode()))

    signer = verify_user_signature(sig, msg)

    assert signer.scheme == scheme.name
    with pytest.raises(SignatureError):
        verify_user_signature(sig, msg + b"!")


def test_base58_round_trip_keeps_leading_zeros():
    data = b"\x00\x00" + bytes(range(30))
    assert b58decode(b58encode(data)) == data


def test_object_digest_follows_content_and_version():
    oid = bcs.normalize_address("0x5")
    coin = StoredObject(
        oid, 1, Owner.by("0x1"), "0x2::coin::Coin<0x2::sui::SUI>", coin_value(oid, 10)
    )
    assert coin.json == {"id": oid, "balance": "10"}
    assert coin.contents == bytes.fromhex(oid[2:]) + (10).to_bytes(8, "little")
    bumped = coin.written(version=2, tx_digest=coin.previous_transaction, storage_rebate=0)
    assert bumped.digest != coin.digest
    assert StoredObject.load(coin.dump()).digest == coin.digest


def test_move_values_render_like_sui_rpc():
    value = bcs.Struct(
        "0x1::m::S",
        (
            ("a", bcs.U64(2**63)),
            ("b", bcs.Bytes(b"\x01\x02")),
            ("c", bcs.U8(7)),
            ("d", bcs.Vector((bcs.U64(1),))),
        ),
    )
    assert bcs.to_json(value) == {"a": str(2**63), "b": "AQI=", "c": 7, "d": ["1"]}
    assert bcs.encode(value) == (2**63).to_bytes(8, "little") + b"\x02\x01\x02\x07\x01" + (
        1
    ).to_bytes(8, "little")
    assert bcs.load_value(bcs.dump_value(value)) == value


def test_type_filter_matches_any_instantiation_of_a_bare_type():
    coin = "0x2::coin::Coin<0x2::sui::SUI>"
    assert type_matches(coin, "0x2::coin::Coin")
    assert type_matches(
        coin,
        "0x0000000000000000000000000000000000000000000000000000000000000002::coin::Coin<0x2::sui::SUI>",
    )
    assert not type_matches(coin, "0x2::coin::Coin<0x3::x::Y>")


def test_dev_key_is_deterministic_and_round_trips_as_bech32():
    key = dev_key(5)
    assert dev_key(5).address == key.address != dev_key(6).address
    restored = keypair_from_keystring(key.bech32())
    assert restored.public_key.key_bytes == key.keypair.public_key.key_bytes
    assert key.bech32() not in repr(key)
