"""Loading the operator's signing key and signing transactions with it.

The key arrives from a mounted Secret file or an environment variable, in any of the
three forms the Sui CLI produces: bech32 `suiprivkey1...`, the keystore's base64
(flag byte + 32-byte secret) or a BIP-39 mnemonic. The `Signer` hides the secret:
it never shows it, refuses to be pickled, and loading errors never echo their input
(pysui's and pysui-fastcrypto's own errors do, so they are replaced, not chained).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

import pysui_fastcrypto as pfc
from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_crypto import SuiKeyPair

log = logging.getLogger(__name__)

BECH32_HRP = "suiprivkey"
KEYSTORE_B64_LEN = 44  # base64 of flag byte + 32-byte secret
MNEMONIC_WORD_COUNTS = frozenset({12, 15, 18, 21, 24})
FORMAT_HINT = (
    "not a recognised key format: expected suiprivkey1…, keystore base64 or a 12/24-word mnemonic"
)


class KeyScheme(Enum):
    """Signature schemes the operator accepts; the value is Sui's flag byte."""

    ED25519 = 0
    SECP256K1 = 1
    SECP256R1 = 2

    @classmethod
    def parse(cls, value: KeyScheme | str | int) -> KeyScheme:
        """Accept the enum, its name in any case ("ed25519") or the flag byte."""
        if isinstance(value, KeyScheme):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[value.strip().upper()]
        except KeyError:
            raise KeyLoadError(
                f"unknown key scheme {value!r}: expected ed25519, secp256k1 or secp256r1"
            ) from None


# Sui's standard derivation paths (sui keytool), one per scheme.
DEFAULT_DERIVATION_PATHS: Mapping[KeyScheme, str] = {
    KeyScheme.ED25519: "m/44'/784'/0'/0'/0'",
    KeyScheme.SECP256K1: "m/54'/784'/0'/0/0",
    KeyScheme.SECP256R1: "m/74'/784'/0'/0/0",
}

_DERIVATION_PATH_RE = re.compile(r"^m(/\d+'?){1,10}$")
_MNEMONIC_WORD_RE = re.compile(r"^[a-z]+$")


class KeyLoadError(ValueError):
    """The signing key could not be loaded. The message never contains key material."""


def address_of(scheme: KeyScheme, public_key: bytes) -> str:
    """Sui address: blake2b-256(flag ‖ public key), hex."""
    digest = hashlib.blake2b(bytes([scheme.value]) + public_key, digest_size=32)
    return "0x" + digest.hexdigest()


class Signer:
    """Signs transactions for one address; shows only its scheme and address."""

    __slots__ = ("__keypair", "_address", "_public_key", "_scheme")

    def __init__(self, keypair: SuiKeyPair) -> None:
        scheme = KeyScheme(int(keypair.scheme))
        public_key = bytes(keypair.public_key.key_bytes)
        self.__keypair = keypair
        self._scheme = scheme
        self._public_key = public_key
        self._address = address_of(scheme, public_key)

    @property
    def address(self) -> str:
        return self._address

    @property
    def scheme(self) -> KeyScheme:
        return self._scheme

    @property
    def public_key(self) -> bytes:
        return self._public_key

    def sign_tx(self, tx_bytes_b64: str) -> str:
        """Sign BCS TransactionData (base64) under the TransactionData intent.

        Returns the serialized signature, base64 of flag ‖ signature ‖ public key.
        """
        return str(self.__keypair.new_sign_secure(tx_bytes_b64))

    def __repr__(self) -> str:
        return f"Signer(scheme={self._scheme.name}, address={self._address})"

    __str__ = __repr__

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("Signer holds a secret key and cannot be pickled or copied")

    def __reduce__(self) -> NoReturn:
        raise TypeError("Signer holds a secret key and cannot be pickled or copied")

    def __getstate__(self) -> NoReturn:
        raise TypeError("Signer holds a secret key and cannot be pickled or copied")


def parse_signer(
    text: str,
    *,
    scheme: KeyScheme | str | None = None,
    derivation_path: str | None = None,
) -> Signer:
    """Build a Signer from key text in any supported form.

    `scheme` and `derivation_path` matter for a mnemonic (default Ed25519 and that
    scheme's standard path); for bech32 / keystore keys, whose scheme is encoded in the
    key, a given `scheme` must agree with it.
    """
    want = KeyScheme.parse(scheme) if scheme is not None else None
    value = text.strip()
    if not value:
        raise KeyLoadError("the signing key is empty")
    if value.lower().startswith(BECH32_HRP + "1"):
        keypair = _from_bech32(value)
    elif len(value) == KEYSTORE_B64_LEN and " " not in value:
        keypair = _from_keystore(value)
    else:
        words = value.lower().split()
        if len(words) in MNEMONIC_WORD_COUNTS and all(_MNEMONIC_WORD_RE.match(w) for w in words):
            keypair = _from_mnemonic(" ".join(words), want or KeyScheme.ED25519, derivation_path)
        elif len(words) > 1 and all(_MNEMONIC_WORD_RE.match(w) for w in words):
            raise KeyLoadError(
                f"a mnemonic must have 12, 15, 18, 21 or 24 words, this one has {len(words)}"
            )
        else:
            raise KeyLoadError(FORMAT_HINT)
    signer = Signer(keypair)
    if want is not None and signer.scheme is not want:
        raise KeyLoadError(
            f"the signing key is {signer.scheme.name} but the configured scheme is {want.name}"
        )
    log.info("loaded signing key: scheme=%s address=%s", signer.scheme.name, signer.address)
    return signer


def load_signer(
    *,
    path: str | os.PathLike[str] | None = None,
    env_var: str | None = None,
    environ: Mapping[str, str] | None = None,
    scheme: KeyScheme | str | None = None,
    derivation_path: str | None = None,
) -> Signer:
    """Load the key from exactly one of a file (a mounted Secret) or an env variable."""
    if (path is None) == (env_var is None):
        raise KeyLoadError("give exactly one of a key file path or an environment variable")
    if path is not None:
        source = Path(path)
        try:
            text = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise KeyLoadError(f"cannot read signing key file {source}: {reason}") from None
        where = f"file {source}"
    else:
        assert env_var is not None
        env = os.environ if environ is None else environ
        if env_var not in env:
            raise KeyLoadError(f"environment variable {env_var} is not set")
        text = env[env_var]
        where = f"environment variable {env_var}"
    try:
        return parse_signer(text, scheme=scheme, derivation_path=derivation_path)
    except KeyLoadError as exc:
        _raise_load_error(f"signing key in {where}: {exc}")


def _raise_load_error(message: str) -> NoReturn:
    """Raise outside any `except` block so no secret-bearing exception is chained."""
    raise KeyLoadError(message)


def _from_bech32(value: str) -> SuiKeyPair:
    failed = False
    try:
        flag, pub, prv = pfc.decode_bech32(value, BECH32_HRP)
    except (ValueError, TypeError):
        failed = True
    if failed or flag not in (s.value for s in KeyScheme):
        _raise_load_error("not a valid suiprivkey bech32 key (bad checksum, length or scheme)")
    return _keypair(KeyScheme(flag), bytes(pub), bytes(prv))


def _from_keystore(value: str) -> SuiKeyPair:
    failed = False
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        failed = True
    if failed:
        _raise_load_error(FORMAT_HINT)
    if len(raw) != 33:
        _raise_load_error(f"keystore key must decode to 33 bytes (flag + secret), got {len(raw)}")
    if raw[0] not in (s.value for s in KeyScheme):
        _raise_load_error(f"keystore key has unsupported scheme flag {raw[0]}")
    try:
        flag, pub, prv = pfc.keys_from_keystring(value)
    except (ValueError, TypeError):
        failed = True
    if failed:
        _raise_load_error("keystore key is not a valid secret for its scheme")
    return _keypair(KeyScheme(flag), bytes(pub), bytes(prv))


def _from_mnemonic(phrase: str, scheme: KeyScheme, derivation_path: str | None) -> SuiKeyPair:
    path = derivation_path.strip() if derivation_path else DEFAULT_DERIVATION_PATHS[scheme]
    if not _DERIVATION_PATH_RE.match(path):
        _raise_load_error(f"derivation path {path!r} is not of the form m/44'/784'/0'/0'/0'")
    failed = bad_path = False
    try:
        pub, prv = pfc.keys_from_mnemonics(scheme.value, path, phrase)
    except (ValueError, TypeError) as exc:
        # Only the error's kind is kept: the library's text can carry a backtrace.
        bad_path = "derivation path" in str(exc).lower()
        failed = True
    if failed:
        if bad_path:
            _raise_load_error(f"derivation path {path!r} is not valid for {scheme.name}")
        _raise_load_error("not a valid BIP-39 mnemonic (unknown word or bad checksum)")
    return _keypair(scheme, bytes(pub), bytes(prv))


def _keypair(scheme: KeyScheme, pub: bytes, prv: bytes) -> SuiKeyPair:
    keypair: SuiKeyPair = SuiKeyPair.from_pfc_bytes(SignatureScheme(scheme.value), pub, prv)
    return keypair
