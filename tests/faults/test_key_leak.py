"""The signing key never shows up in logs, Events, status, ConfigMaps or /metrics.

A full flow with the error paths that put text in those places (a lost answer, a
chain outage, a Move abort, a good settlement and its attestation-free completion),
then every rendering of the key is searched for in everything the operator wrote.
"""

from __future__ import annotations

import base64

import pytest
from e2e_support import is_true, settlement
from fault_support import Fleet
from pysui.sui.sui_crypto import keypair_from_keystring

pytestmark = pytest.mark.e2e


def key_renderings(bech32: str) -> dict[str, str]:
    """The forms a key could leak in: bech32, keystore base64, raw hex and base64."""
    kp = keypair_from_keystring(bech32)
    secret = bytes(kp.private_key.key_bytes)
    assert len(secret) == 32
    return {
        "bech32": bech32,
        "bech32 body": bech32[len("suiprivkey1") :][:40],
        "keystore base64": kp.serialize(),
        "hex": secret.hex(),
        "HEX": secret.hex().upper(),
        "base64": base64.b64encode(secret).decode(),
        "urlsafe base64": base64.urlsafe_b64encode(secret).decode().rstrip("="),
    }


def test_signing_key_appears_nowhere(fleet: Fleet) -> None:
    key = fleet.chain.dev["private_key"]
    forms = key_renderings(key)
    good = fleet.add_stacks(3)
    fleet.chain.admin("/faults", {"lose_responses": 1})
    proc = fleet.operator(ATOMA_LOG_FORMAT="json")
    names = fleet.settle_each(good)
    fleet.create([settlement("aborts", fleet.ns, [9_999_999])])
    fleet.wait_ready(names, timeout=120)
    fleet.wait_for(["aborts"], lambda o: is_true(o, "Stalled"), timeout=60, what="Stalled")
    fleet.chain.admin("/faults", {"unavailable": True, "unavailable_seconds": 3})
    more = fleet.settle_each(fleet.add_stacks(2), prefix="late")
    fleet.wait_ready(more, timeout=120)
    for _ in range(2):
        fleet.chain.admin("/epoch/advance", {})
    fleet.wait_for(names, lambda o: is_true(o, "Settled"), timeout=60, what="Settled")

    plane = fleet.plane
    outputs = {
        "operator log": fleet.logs(),
        "events": plane.kubectl("get", "events", "-n", fleet.ns, "-o", "yaml").stdout,
        "resources": plane.kubectl("get", "stl,atst", "-n", fleet.ns, "-o", "yaml").stdout,
        "configmaps": plane.kubectl("get", "configmaps", "-A", "-o", "yaml").stdout,
        "metrics": proc.metrics_text(),
    }
    assert "Submitted" in outputs["events"] and "txDigest" in outputs["resources"]
    assert "atoma_operator_transactions_submitted" in outputs["metrics"]
    assert len(outputs["operator log"]) > 1000, "the operator log is suspiciously empty"
    leaks = [
        f"{form} in {where}"
        for where, text in outputs.items()
        for form, needle in forms.items()
        if needle in text
    ]
    assert not leaks, leaks
