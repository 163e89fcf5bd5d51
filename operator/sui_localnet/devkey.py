"""The throwaway developer key the quick start uses, derived from the node's seed.

Deriving it (rather than drawing it at random) means a node restarted from its state
file hands out the same key, which still owns the coins and badges it was given.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_crypto import SuiKeyPair

from .crypto import ED25519_FLAG, address_of, blake2b256


@dataclass(frozen=True)
class DevKey:
    address: str
    keypair: SuiKeyPair

    def bech32(self) -> str:
        return str(self.keypair.to_bech32())

    def __repr__(self) -> str:
        return f"DevKey(address={self.address})"


def dev_key(seed: int, index: int = 0) -> DevKey:
    secret = blake2b256(f"sui-localnet/dev-key/{seed}/{index}".encode())
    public = (
        ed25519.Ed25519PrivateKey.from_private_bytes(secret)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    keypair = SuiKeyPair.from_pfc_bytes(SignatureScheme.ED25519, public, secret)
    return DevKey(address_of(ED25519_FLAG, public), keypair)
