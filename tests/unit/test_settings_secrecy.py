"""`atoma-operator run` with a bad key configuration: refused at once, the key never shown.

pydantic repeats input values in its errors; with both key settings set, the model
validator's input is every setting, so the start-up error used to print part of the key.
Each case starts the real CLI as a subprocess and searches everything it printed for any
6-character piece of the key's secret part.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pysui.abstracts.client_keypair import SignatureScheme
from pysui.sui.sui_crypto import create_new_keypair

CLI = Path(sys.executable).with_name("atoma-operator")
WINDOW = 6
CHAIN_IDS = {
    "ATOMA_PACKAGE_ID": "0x" + "a" * 64,
    "ATOMA_ATOMA_DB_ID": "0x" + "b" * 64,
}
BECH32_PREFIX = "suiprivkey1"  # public: the format's name, printed in format hints


def _secret_part(key: str) -> str:
    """The part of a key that identifies it (a bech32 key's `suiprivkey1` is not secret)."""
    return key.removeprefix(BECH32_PREFIX)


def _pieces(secret: str) -> Iterator[str]:
    for start in range(len(secret) - WINDOW + 1):
        yield secret[start : start + WINDOW]


def _run(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ATOMA_")}
    clean.update(env)
    clean["KUBECONFIG"] = str(tmp_path / "no-such-kubeconfig")  # nothing to reach anyway
    return subprocess.run(
        [str(CLI), "run", "--namespace", "atoma-test"],
        env=clean,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _assert_refused_without_the_key(
    result: subprocess.CompletedProcess[str], key: str, expected: str
) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert expected in result.stderr, output
    secret = _secret_part(key)
    assert len(secret) > WINDOW
    leaked = [piece for piece in _pieces(secret) if piece in output]
    assert not leaked, f"key material in the output: {leaked}"


@pytest.fixture(scope="module")
def valid_key() -> str:
    _, keypair = create_new_keypair(SignatureScheme.ED25519)
    bech32: str = keypair.to_bech32()  # type: ignore[attr-defined]
    return bech32


def test_both_key_settings_are_refused_without_echoing_the_key(
    valid_key: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(valid_key + "\n")
    result = _run(
        {**CHAIN_IDS, "ATOMA_KEY_FILE": str(key_file), "ATOMA_SIGNING_KEY": valid_key}, tmp_path
    )
    _assert_refused_without_the_key(result, valid_key, "not both")


def _malformed_keys(valid: str) -> dict[str, str]:
    raw = base64.b64decode(
        base64.b64encode(bytes([0]) + bytes(range(100, 132)))  # a keystore key's shape
    )
    return {
        "bech32-bad-checksum": valid[:-3] + ("qqq" if not valid.endswith("qqq") else "ppp"),
        "keystore-wrong-length": base64.b64encode(raw[:30] + b"\x01\x02").decode() + "AAAA",
        "keystore-bad-flag": base64.b64encode(bytes([9]) + raw[1:]).decode(),
        "unknown-format": "z" + valid[len(BECH32_PREFIX) :],
        "mnemonic-bad-checksum": " ".join(["abandon"] * 11 + ["zoo"]),
    }


@pytest.mark.parametrize(
    "case",
    [
        "bech32-bad-checksum",
        "keystore-wrong-length",
        "keystore-bad-flag",
        "unknown-format",
        "mnemonic-bad-checksum",
    ],
)
def test_a_malformed_key_is_refused_without_echoing_it(
    case: str, valid_key: str, tmp_path: Path
) -> None:
    key = _malformed_keys(valid_key)[case]
    result = _run({**CHAIN_IDS, "ATOMA_SIGNING_KEY": key}, tmp_path)
    _assert_refused_without_the_key(result, key, "cannot start")


def test_a_malformed_key_file_is_refused_without_echoing_it(valid_key: str, tmp_path: Path) -> None:
    key = _malformed_keys(valid_key)["bech32-bad-checksum"]
    key_file = tmp_path / "key"
    key_file.write_text(key + "\n")
    result = _run({**CHAIN_IDS, "ATOMA_KEY_FILE": str(key_file)}, tmp_path)
    _assert_refused_without_the_key(result, key, str(key_file))


def test_a_malformed_json_setting_names_the_field_not_the_value(tmp_path: Path) -> None:
    marker = "topsecretvalue"
    result = _run({**CHAIN_IDS, "ATOMA_BADGES": f'[{{"{marker}"'}, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "badges" in result.stderr
    assert marker not in result.stdout + result.stderr


def test_a_malformed_config_file_names_the_line_not_the_text(tmp_path: Path) -> None:
    secret = "suiprivkey1" + "q" * 20 + "topsecretvalue"
    config = tmp_path / "config.yaml"
    config.write_text(f'signing_key: "{secret}\nfoo: [\n')
    result = _run({**CHAIN_IDS, "ATOMA_CONFIG_FILE": str(config)}, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "ATOMA_CONFIG_FILE is not valid YAML at line" in result.stderr
    assert "topsecretvalue" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
