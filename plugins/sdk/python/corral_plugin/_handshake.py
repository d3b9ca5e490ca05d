"""The go-plugin handshake: environment checks, version negotiation, the
automatic mTLS certificate and the line printed on stdout.

Everything here follows plugins/proto/README.md, section "Startup".
"""

import base64
import datetime
import os
import sys
from typing import List, NoReturn, Optional, Tuple

# The magic cookie: the host sets MAGIC_COOKIE_KEY=MAGIC_COOKIE_VALUE in the
# plugin's environment. It is not a secret, only a guard against running a
# plugin by hand.
MAGIC_COOKIE_KEY = "CORRAL_PLUGIN"
MAGIC_COOKIE_VALUE = "8b2f3c1e-corral-worker-plugin"

# go-plugin's core protocol version: the first field of the handshake line.
CORE_PROTOCOL_VERSION = 1

# Worker protocol versions this SDK serves: 1 (a Run stream per job) and 2
# (every job over one multiplexed Session stream).
MIN_API_VERSION = 1
API_VERSION = 2

# go-plugin's default when PLUGIN_PROTOCOL_VERSIONS is missing: the
# handshake's ProtocolVersion.
_DEFAULT_VERSION = 1


class HandshakeError(Exception):
    """The plugin cannot start; the message says why (printed to stderr)."""


def check_cookie(environ=os.environ) -> None:
    """Raises HandshakeError unless the host's magic cookie is set."""
    if environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        raise HandshakeError(
            "This binary is a plugin. These are not meant to be executed directly. "
            "Please execute the program that consumes these plugins, which will "
            "load any plugins automatically "
            f"(corral_plugin: {MAGIC_COOKIE_KEY} is missing or wrong in the environment)"
        )


def negotiate_version(environ=os.environ) -> int:
    """Picks the newest worker protocol version both sides speak.

    The host lists its versions in PLUGIN_PROTOCOL_VERSIONS ("1,2"). With no
    version in common the SDK answers with its newest one, so the host fails
    the plugin with a message naming both sides' versions.
    """
    raw = environ.get("PLUGIN_PROTOCOL_VERSIONS", "")
    offered: List[int] = []
    for part in raw.split(","):
        part = part.strip()
        if part.isdigit():
            offered.append(int(part))
    if not offered:
        return _DEFAULT_VERSION
    common = [v for v in offered if MIN_API_VERSION <= v <= API_VERSION]
    return max(common) if common else API_VERSION


def client_cert(environ=os.environ) -> Optional[bytes]:
    """Returns the host's PEM certificate (PLUGIN_CLIENT_CERT), or None when
    the host did not ask for mTLS."""
    pem = environ.get("PLUGIN_CLIENT_CERT", "")
    return pem.encode("ascii") if pem.strip() else None


def server_certificate() -> Tuple[bytes, bytes, bytes]:
    """Generates the plugin's self-signed certificate for this process.

    Returns (certificate PEM, private key PEM, certificate DER). The key is
    ECDSA P-256; the certificate names "localhost" (the host checks that
    name), is its own CA, and is valid for server and client auth.
    """
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as e:
        raise HandshakeError(
            "the host requires mTLS (PLUGIN_CLIENT_CERT is set) but the Python "
            f"'cryptography' module is missing ({e}); install python3-cryptography "
            "(Debian) or `pip install cryptography`"
        ) from e

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=30))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem, cert.public_bytes(serialization.Encoding.DER)


def handshake_line(version: int, network: str, address: str, cert_der: Optional[bytes]) -> str:
    """Returns the line go-plugin reads from the plugin's stdout:

        CORE|VERSION|NETWORK|ADDRESS|grpc|CERT

    CERT is the server certificate's DER bytes in base64 without padding
    (omitted, with its separator, when there is no mTLS).
    """
    fields = [str(CORE_PROTOCOL_VERSION), str(version), network, address, "grpc"]
    if cert_der is not None:
        fields.append(base64.b64encode(cert_der).decode("ascii").rstrip("="))
    return "|".join(fields)


def fail(err: Exception) -> NoReturn:
    """Prints a handshake error to stderr and exits with status 1."""
    print(str(err), file=sys.stderr, flush=True)
    sys.exit(1)
