"""HTTPS upstreams, through the default transport and pyreqwest's: every https client checks the certificate against the system's roots, exactly as before
plain-http clients stopped loading them. A local CA (generated here) stands in for a public one: refused
while the system does not trust it, accepted once ``SSL_CERT_FILE`` names it."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sluicegate.settings import Settings
from sluicegate.upstream.guard import Guard, GuardPolicy
from sluicegate.upstream.h1 import H1Transport
from sluicegate.upstream.reqwest import ReqwestTransport
from sluicegate.upstream.transport import TransportError
from tests.upstream.guard_stubs import FakeClock, StubResolver

LOOPBACK = Settings(host="127.0.0.1", upstream_connect_timeout_s=2, upstream_read_timeout_s=2)
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}"


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey,
                 *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture
async def tls_upstream(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """An HTTPS server on 127.0.0.1 whose certificate a fresh local CA signed; yields its URL and the CA's
    PEM file."""
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("sluicegate test CA", ca_key, "sluicegate test CA", ca_key, ca=True)
    leaf = _certificate("127.0.0.1", leaf_key, "sluicegate test CA", ca_key, ca=False)
    ca_file, chain, key_file = tmp_path / "ca.pem", tmp_path / "leaf.pem", tmp_path / "leaf.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key_file)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(ANSWER)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions", ca_file
    server.close()


async def _status(url: str, kind: type[H1Transport | ReqwestTransport]) -> int:
    transport = kind(LOOPBACK, Guard(GuardPolicy.from_settings(LOOPBACK), resolver=StubResolver({}), clock=FakeClock()))
    try:
        response = await transport.send("POST", url, {"content-type": "application/json"}, b'{"model":"m"}')
        await response.read(100)
        return response.status
    finally:
        await transport.close()


@pytest.mark.parametrize("kind", [H1Transport, ReqwestTransport])
async def test_an_https_upstream_is_trusted_only_through_the_systems_roots(tls_upstream, monkeypatch, kind):
    url, ca_file = tls_upstream
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(TransportError):  # a certificate from an unknown CA
        await _status(url, kind)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    assert await _status(url, kind) == 200
    with pytest.raises(TransportError):  # the same server through plain http: no answer, never a skipped check
        await _status(url.replace("https://", "http://"), kind)
