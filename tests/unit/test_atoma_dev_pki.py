"""Certificates for the throwaway control plane: right identities, usages and modes."""

from __future__ import annotations

import base64
import ipaddress
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from atoma_dev.kubeconfig import write_token_kubeconfig
from atoma_dev.pki import ADMIN_GROUP, generate_pki


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_certificates_chain_to_the_ca_with_the_right_usages(tmp_path: Path) -> None:
    pki = generate_pki(tmp_path)
    ca, serving, admin = _cert(pki.ca_cert), _cert(pki.serving_cert), _cert(pki.admin_cert)
    serving.verify_directly_issued_by(ca)
    admin.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert (
        ExtendedKeyUsageOID.SERVER_AUTH
        in serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )

    # The apiserver maps O= to groups: system:masters is what makes this the admin.
    orgs = admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert [o.value for o in orgs] == [ADMIN_GROUP]
    assert (
        ExtendedKeyUsageOID.CLIENT_AUTH
        in admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )


def test_service_account_keys_are_a_matching_rsa_pair(tmp_path: Path) -> None:
    pki = generate_pki(tmp_path)
    private = serialization.load_pem_private_key(pki.sa_private_key.read_bytes(), None)
    public = serialization.load_pem_public_key(pki.sa_public_key.read_bytes())
    assert isinstance(private, rsa.RSAPrivateKey)
    assert isinstance(public, rsa.RSAPublicKey)
    assert private.public_key().public_numbers() == public.public_numbers()


def test_private_keys_are_owner_only_and_every_run_is_fresh(tmp_path: Path) -> None:
    first = generate_pki(tmp_path / "a")
    second = generate_pki(tmp_path / "b")
    for key in (first.serving_key, first.admin_key, first.sa_private_key):
        assert key.stat().st_mode & 0o077 == 0, key
    assert first.ca_cert.read_bytes() != second.ca_cert.read_bytes()


def test_token_kubeconfig_is_self_contained_and_private(tmp_path: Path) -> None:
    pki = generate_pki(tmp_path / "pki")
    path = write_token_kubeconfig(
        tmp_path / "k" / "sa.kubeconfig",
        server="https://127.0.0.1:6443",
        ca_file=pki.ca_cert,
        token="not-a-real-token",
        name="system:serviceaccount:ns:sa",
    )
    assert path.stat().st_mode & 0o077 == 0
    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    assert base64.b64decode(cluster["certificate-authority-data"]) == pki.ca_cert.read_bytes()
    assert config["users"][0]["user"] == {"token": "not-a-real-token"}
    assert config["current-context"] == "system:serviceaccount:ns:sa"
