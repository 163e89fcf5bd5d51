"""Digests, addresses and user-signature verification, as Sui defines them.

Sui signs the *intent message* `[0, 0, 0] ‖ BCS(TransactionData)`; the signed payload
is its blake2b-256 digest. Ed25519 signs that digest directly; Secp256k1/Secp256r1 sign
SHA-256 of it (ECDSA, low-s only). A serialized signature is `flag ‖ sig(64) ‖ pubkey`
and the signer's address is blake2b-256(flag ‖ pubkey).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

ED25519_FLAG = 0x00
SECP256K1_FLAG = 0x01
SECP256R1_FLAG = 0x02
_SCHEMES = {ED25519_FLAG: "ED25519", SECP256K1_FLAG: "SECP256K1", SECP256R1_FLAG: "SECP256R1"}
_PUBKEY_LEN = {ED25519_FLAG: 32, SECP256K1_FLAG: 33, SECP256R1_FLAG: 33}
_CURVE_ORDER = {
    SECP256K1_FLAG: 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
    SECP256R1_FLAG: 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
}
TRANSACTION_INTENT = b"\x00\x00\x00"


def blake2b256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, rem = divmod(n, 58)
        out = _B58_ALPHABET[rem] + out
    pad = len(data) - len(data.lstrip(b"\x00"))
    return "1" * pad + out


def b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        idx = _B58_ALPHABET.find(ch)
        if idx < 0:
            raise ValueError(f"invalid base58 character {ch!r}")
        n = n * 58 + idx
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    pad = len(text) - len(text.lstrip("1"))
    return b"\x00" * pad + body


def transaction_digest(tx_bytes: bytes) -> str:
    """base58(blake2b-256("TransactionData::" ‖ tx bytes)): known before sending."""
    return b58encode(blake2b256(b"TransactionData::" + tx_bytes))


def signing_digest(tx_bytes: bytes) -> bytes:
    return blake2b256(TRANSACTION_INTENT + tx_bytes)


def address_of(flag: int, public_key: bytes) -> str:
    return "0x" + blake2b256(bytes([flag]) + public_key).hex()


class SignatureError(ValueError):
    """A user signature that does not verify; the message mirrors Sui's wording."""


@dataclass(frozen=True)
class VerifiedSigner:
    address: str
    scheme: str


def verify_user_signature(signature: bytes, tx_bytes: bytes) -> VerifiedSigner:
    """Verify one serialized simple signature over the transaction's intent message."""
    if not signature:
        raise SignatureError("Invalid user signature: empty signature")
    flag = signature[0]
    if flag not in _SCHEMES:
        raise SignatureError(
            f"Invalid user signature: unsupported signature scheme flag {flag:#04x}"
        )
    expected = 1 + 64 + _PUBKEY_LEN[flag]
    if len(signature) != expected:
        raise SignatureError(
            f"Invalid user signature: {_SCHEMES[flag]} signature must be {expected} bytes, "
            f"got {len(signature)}"
        )
    raw, public_key = signature[1:65], signature[65:]
    digest = signing_digest(tx_bytes)
    try:
        if flag == ED25519_FLAG:
            ed25519.Ed25519PublicKey.from_public_bytes(public_key).verify(raw, digest)
        else:
            r = int.from_bytes(raw[:32], "big")
            s = int.from_bytes(raw[32:], "big")
            if s > _CURVE_ORDER[flag] // 2:
                raise SignatureError(
                    "Invalid user signature: Signature is not valid: "
                    "non-canonical (high-s) ECDSA signature"
                )
            curve: ec.EllipticCurve = ec.SECP256K1() if flag == SECP256K1_FLAG else ec.SECP256R1()
            key = ec.EllipticCurvePublicKey.from_encoded_point(curve, public_key)
            key.verify(utils.encode_dss_signature(r, s), digest, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureError(
            "Invalid user signature: Signature is not valid: Cannot verify signature"
        ) from None
    except ValueError as exc:
        if isinstance(exc, SignatureError):
            raise
        raise SignatureError(f"Invalid user signature: invalid public key: {exc}") from None
    return VerifiedSigner(address_of(flag, public_key), _SCHEMES[flag])
