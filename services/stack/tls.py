"""A private CA and a server certificate for a local TLS listener, made at start.

The files live in the component's state directory (never in the repository): the broker
reads ``server.pem`` (PKCS#8 key, certificate, CA) and clients trust ``ca.crt``. Keys are
ECDSA P-256: quick to make on a cold start and accepted by the JVM, OpenSSL and Python.
The server certificate serves both ends of mutual TLS (the broker's controller link), so
it carries the server and client purposes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: certificates are remade when they would expire within this margin
RENEW_MARGIN = dt.timedelta(days=2)
VALIDITY = dt.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where the CA certificate and the server's key + chain are."""

    ca_cert: Path
    server_pem: Path
    #: the server certificate's subject common name (its principal under mutual TLS)
    server_cn: str


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "proctor local stack"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(b"")
    path.chmod(0o600)
    path.write_bytes(data)


def _still_valid(path: Path, now: dt.datetime) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    return cert.not_valid_after_utc - RENEW_MARGIN > now


def ensure_tls(directory: Path, hosts: tuple[str, ...], server_cn: str) -> TlsFiles:
    """The CA and server certificate in ``directory``, made (or remade) when missing or
    about to expire. ``hosts`` are the names and IP addresses clients connect to."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.crt", directory / "server.pem", server_cn)
    now = dt.datetime.now(dt.UTC)
    if (
        files.server_pem.is_file()
        and _still_valid(files.ca_cert, now)
        and _still_valid(files.server_pem, now)
    ):
        return files
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("proctor local stack CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_cn)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ca_pem = ca_cert.public_bytes(pem)
    # The CA's key is not kept: a new server certificate comes with a new CA.
    _write_private(files.server_pem, key_pem + cert.public_bytes(pem) + ca_pem)
    tmp = files.ca_cert.with_suffix(".tmp")
    tmp.write_bytes(ca_pem)
    os.replace(tmp, files.ca_cert)
    return files
