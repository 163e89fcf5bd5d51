"""Key loading: every accepted form, pysui-compatible addresses, and no secret leaks."""

from __future__ import annotations

import base64
import copy
import hashlib
import logging
import pickle
from pathlib import Path

import pysui_fastcrypto as pfc
import pytest
from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_common.config.confgroup import GroupProtocol, ProfileGroup
from pysui.sui.sui_crypto import create_new_keypair

from atoma_operator.sui.keys import (
    DEFAULT_DERIVATION_PATHS,
    FORMAT_HINT,
    KeyLoadError,
    KeyScheme,
    Signer,
    load_signer,
    parse_signer,
)

SCHEMES = list(KeyScheme)


def _pysui_address(keystring: str) -> str:
    """The address pysui's own configuration derives for a keystore string."""
    group = ProfileGroup("t", "", "", [], [], [], [], GroupProtocol.GRPC)
    (address,) = group.add_keys(keys=[{"key_string": keystring, "alias": "k"}])
    return str(address)


@pytest.fixture(params=SCHEMES, ids=lambda s: s.name)
def generated(request: pytest.FixtureRequest) -> tuple[KeyScheme, str, object]:
    scheme: KeyScheme = request.param
    phrase, keypair = create_new_keypair(
        SignatureScheme(scheme.value), derv_path=DEFAULT_DERIVATION_PATHS[scheme]
    )
    return scheme, phrase, keypair


def test_every_form_gives_the_pysui_address(generated: tuple[KeyScheme, str, object]) -> None:
    scheme, phrase, keypair = generated
    keystore = keypair.serialize()  # type: ignore[attr-defined]
    bech32 = keypair.to_bech32()  # type: ignore[attr-defined]
    expected = _pysui_address(keystore)
    assert parse_signer(keystore).address == expected
    assert parse_signer(bech32).address == expected
    assert parse_signer(phrase, scheme=scheme).address == expected
    assert parse_signer(f"  {bech32}\n").address == expected  # mounted files end in \n
    assert parse_signer(keystore).scheme is scheme


def test_mnemonic_default_scheme_is_ed25519_and_path_matters() -> None:
    phrase, keypair = create_new_keypair(SignatureScheme.ED25519)
    default = parse_signer(phrase)
    assert default.scheme is KeyScheme.ED25519
    assert default.address == _pysui_address(keypair.serialize())
    other = parse_signer(phrase, derivation_path="m/44'/784'/1'/0'/0'")
    assert other.address != default.address
    pub, _prv = pfc.keys_from_mnemonics(0, "m/44'/784'/1'/0'/0'", phrase)
    assert other.public_key == bytes(pub)


def test_signatures_verify_with_the_public_key(generated: tuple[KeyScheme, str, object]) -> None:
    scheme, _, keypair = generated
    signer = parse_signer(keypair.serialize())  # type: ignore[attr-defined]
    tx = b"some transaction bytes"
    sig = base64.b64decode(signer.sign_tx(base64.b64encode(tx).decode()))
    assert sig[0] == scheme.value
    assert sig[65:] == signer.public_key
    # Sui signs blake2b-256(intent [0,0,0] || tx bytes)
    digest = hashlib.blake2b(bytes([0, 0, 0]) + tx, digest_size=32).digest()
    b64 = base64.b64encode
    assert pfc.verify_pubk(
        scheme.value, signer.public_key, b64(digest).decode(), b64(sig[1:65]).decode()
    )
    other = hashlib.blake2b(b"\x00\x00\x00other", digest_size=32).digest()
    assert not pfc.verify_pubk(
        scheme.value, signer.public_key, b64(other).decode(), b64(sig[1:65]).decode()
    )


def test_scheme_mismatch_is_reported() -> None:
    _, keypair = create_new_keypair(SignatureScheme.SECP256K1)
    with pytest.raises(KeyLoadError, match="SECP256K1 but the configured scheme is ED25519"):
        parse_signer(keypair.serialize(), scheme="ed25519")


def test_load_from_file_and_env(tmp_path: Path) -> None:
    _, keypair = create_new_keypair(SignatureScheme.SECP256R1)
    key_file = tmp_path / "key"
    key_file.write_text(keypair.to_bech32() + "\n")
    from_file = load_signer(path=key_file)
    from_env = load_signer(env_var="SUI_KEY", environ={"SUI_KEY": keypair.serialize()})
    assert from_file.address == from_env.address
    with pytest.raises(KeyLoadError, match="environment variable SUI_KEY is not set"):
        load_signer(env_var="SUI_KEY", environ={})
    with pytest.raises(KeyLoadError, match="cannot read signing key file"):
        load_signer(path=tmp_path / "missing")
    with pytest.raises(KeyLoadError, match="exactly one"):
        load_signer()


# --- the secret never leaks --------------------------------------------------------------

BAD_INPUTS = [
    "suiprivkey1qqqqsecretLEAKMARKERqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",  # bad checksum
    "LEAKMARKERLEAKMARKERLEAKMARKERLEAKMARKER123=",  # 44 chars, bad base64
    "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ==",  # decodes, but 32 bytes
    "leakmarker abandon ability able about above absent absorb abstract absurd abuse access",
    "abandon leakmarker",  # too few words
    "not a key at all LEAKMARKER!",
    "BEFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB",  # 33 bytes, unknown scheme flag 4
]


def _secret_fragments(text: str) -> list[str]:
    """Distinctive pieces of an input that must not appear anywhere."""
    return [text.strip(), "LEAKMARKER", "leakmarker", text.strip()[10:30]]


@pytest.mark.parametrize("bad", BAD_INPUTS)
def test_bad_keys_are_not_echoed(bad: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(KeyLoadError) as info:
        load_signer(env_var="K", environ={"K": bad})
    exc = info.value
    rendered = [str(exc), repr(exc), caplog.text]
    chain = exc.__cause__ or exc.__context__
    while chain is not None:  # nothing chained may carry the input either
        rendered += [str(chain), repr(chain)]
        chain = chain.__cause__ or chain.__context__
    for fragment in _secret_fragments(bad):
        for text in rendered:
            assert fragment not in text


def test_unrecognised_format_message() -> None:
    with pytest.raises(KeyLoadError) as info:
        parse_signer("#$%^")
    assert str(info.value) == FORMAT_HINT


def test_good_key_never_shown(
    generated: tuple[KeyScheme, str, object], caplog: pytest.LogCaptureFixture
) -> None:
    scheme, phrase, keypair = generated
    caplog.set_level(logging.DEBUG)
    keystore = keypair.serialize()  # type: ignore[attr-defined]
    bech32 = keypair.to_bech32()  # type: ignore[attr-defined]
    secret_hex = base64.b64decode(keystore)[1:].hex()
    signers = [parse_signer(keystore), parse_signer(bech32), parse_signer(phrase, scheme=scheme)]
    for signer in signers:
        shown = [repr(signer), str(signer), f"{signer}", caplog.text]
        for text in shown:
            for secret in (keystore, bech32, phrase, secret_hex, keystore[4:20]):
                assert secret not in text
        assert signer.address in repr(signer)
        assert scheme.name in str(signer)
    assert signers[0].address in caplog.text  # the load itself is logged, without the key


def test_signer_cannot_be_pickled_or_copied() -> None:
    _, keypair = create_new_keypair(SignatureScheme.ED25519)
    signer: Signer = parse_signer(keypair.serialize())
    with pytest.raises(TypeError):
        pickle.dumps(signer)
    with pytest.raises(TypeError):
        copy.deepcopy(signer)
    assert not hasattr(signer, "__dict__")
