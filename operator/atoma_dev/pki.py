"""Certificates and keys for a throwaway kube-apiserver: CA, serving, admin client, SA keys.

Generated per control-plane instance (milliseconds with EC keys), so nothing secret is
shared between runs or checked in. The admin certificate is in group system:masters,
which RBAC always allows; least-privilege checks use ServiceAccount tokens instead.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ADMIN_USER = "atoma-dev-admin"
ADMIN_GROUP = "system:masters"
# The in-cluster names and the first service IP of --service-cluster-ip-range, so the
# serving certificate would also verify for clients that use the kubernetes Service.
DEFAULT_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
DEFAULT_IPS = ("127.0.0.1", "10.0.0.1")


@dataclass(frozen=True)
class PkiFiles:
    """Paths of the PEM files written by generate_pki()."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_private_key: Path
    sa_public_key: Path


def _write(path: Path, data: bytes, *, secret: bool) -> Path:
    # Create with the final mode so a private key is never world-readable, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _issue(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    usage: x509.ObjectIdentifier,
    validity: dt.timedelta,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _self_signed_ca(key: ec.EllipticCurvePrivateKey, validity: dt.timedelta) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = _name("atoma-dev-ca")
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


def generate_pki(
    directory: Path,
    *,
    dns_names: tuple[str, ...] = DEFAULT_DNS_NAMES,
    ips: tuple[str, ...] = DEFAULT_IPS,
    validity: dt.timedelta = dt.timedelta(days=30),
) -> PkiFiles:
    """Write a fresh CA, serving and admin certificates and an RSA SA key pair."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _self_signed_ca(ca_key, validity)

    serving_key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    serving = _issue(
        _name("kube-apiserver"),
        serving_key.public_key(),
        ca,
        ca_key,
        ExtendedKeyUsageOID.SERVER_AUTH,
        validity,
        sans,
    )

    admin_key = ec.generate_private_key(ec.SECP256R1())
    admin = _issue(
        _name(ADMIN_USER, ADMIN_GROUP),
        admin_key.public_key(),
        ca,
        ca_key,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        validity,
    )

    # RSA because every token consumer supports RS256 (the signing algorithm it implies).
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_public = sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PkiFiles(
        ca_cert=_write(directory / "ca.crt", _cert_pem(ca), secret=False),
        serving_cert=_write(directory / "apiserver.crt", _cert_pem(serving), secret=False),
        serving_key=_write(directory / "apiserver.key", _key_pem(serving_key), secret=True),
        admin_cert=_write(directory / "admin.crt", _cert_pem(admin), secret=False),
        admin_key=_write(directory / "admin.key", _key_pem(admin_key), secret=True),
        sa_private_key=_write(directory / "sa.key", _key_pem(sa_key), secret=True),
        sa_public_key=_write(directory / "sa.pub", sa_public, secret=False),
    )


@dataclass(frozen=True)
class ServerPki:
    """A fresh CA and one serving certificate it signed (PEM paths)."""

    ca_cert: Path
    cert: Path
    key: Path


def generate_server_pki(
    directory: Path,
    *,
    common_name: str,
    dns_names: tuple[str, ...] = ("localhost",),
    ips: tuple[str, ...] = ("127.0.0.1",),
    validity: dt.timedelta = dt.timedelta(days=30),
) -> ServerPki:
    """Write a throwaway CA and a server certificate for `dns_names`/`ips` (e.g. the Sui
    stand-in serving https://, so clients are tested with a CA bundle)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _self_signed_ca(ca_key, validity)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = _issue(
        _name(common_name),
        key.public_key(),
        ca,
        ca_key,
        ExtendedKeyUsageOID.SERVER_AUTH,
        validity,
        sans,
    )
    return ServerPki(
        ca_cert=_write(directory / "ca.crt", _cert_pem(ca), secret=False),
        cert=_write(directory / "server.crt", _cert_pem(cert), secret=False),
        key=_write(directory / "server.key", _key_pem(key), secret=True),
    )
