"""Who may use a served avatar: HTTPS and a token whenever the server is reachable from other machines.

Browsers give `getUserMedia` (the camera) only to secure pages: https, or http on this machine's own
loopback. So a server on 127.0.0.1/localhost/::1 runs plain HTTP without a token, and any other address
must have a certificate (the user's, or a self-signed one made here, kept in the user config dir; its
SHA-256 fingerprint is printed so the browser's warning page can be checked against it) and a token
(random per start unless given), without which every request is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import secrets
import ssl
from pathlib import Path

from models.atomic_files import atomic_path, write_bytes_atomic

LOOPBACK_NAMES = ("localhost",)
SELF_SIGNED_DAYS = 365


class ServeSetupError(ValueError):
    """The server cannot start as configured; the message says what to give."""


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def access_token(host: str, given: str | None) -> str | None:
    """The token every request must carry: none on loopback, the given one, or a new random one."""
    if is_loopback(host):
        return given or None
    return given or secrets.token_urlsafe(18)


def certificate_fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the certificate's DER form, as browsers show it (AB:CD:...)."""
    der = ssl.PEM_cert_to_DER_cert(cert_pem.decode("ascii"))
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def self_signed_certificate(folder: Path, host: str) -> tuple[Path, Path]:
    """(cert, key) PEM files for `host`: reused while valid and made for the same host, else made anew."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    cert_path, key_path = folder / "serve-cert.pem", folder / "serve-key.pem"
    PUBLIC = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    now = dt.datetime.now(dt.timezone.utc)
    if cert_path.exists() and key_path.exists():
        try:
            old = x509.load_pem_x509_certificate(cert_path.read_bytes())
            names = old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            hosts = [str(v) for v in names.get_values_for_type(x509.IPAddress)] + names.get_values_for_type(x509.DNSName)
            key_pem = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            pair = key_pem.public_key().public_bytes(*PUBLIC) == old.public_key().public_bytes(*PUBLIC)
            if pair and host in hosts and old.not_valid_after_utc > now + dt.timedelta(days=1):
                return cert_path, key_path
        except (ValueError, TypeError, x509.ExtensionNotFound):
            pass                       # unreadable, foreign or not a pair (a start cut between the two): made anew
    key = ec.generate_private_key(ec.SECP256R1())
    alt = [x509.DNSName("localhost")]
    try:
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt.append(x509.DNSName(host))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"live serve ({host})")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=SELF_SIGNED_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(key_path) as tmp:  # created 0600: the key is never readable by others, not even mid-write
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    write_bytes_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def server_tls(host: str, cert: str | None, key: str | None, self_signed: bool,
               folder: Path) -> tuple[ssl.SSLContext | None, str | None]:
    """(the TLS context or None for plain HTTP, the certificate's fingerprint); refuses a remote host without one."""
    if self_signed and not (cert or key):
        cert_path, key_path = self_signed_certificate(folder, host)
    elif cert or key:
        if not (cert and key):
            raise ServeSetupError("HTTPS needs both --cert and --key (PEM files)")
        cert_path, key_path = Path(cert), Path(key)
        for p in (cert_path, key_path):
            if not p.is_file():
                raise ServeSetupError(f"{p} does not exist: give the PEM files of your certificate and its key")
    elif is_loopback(host):
        return None, None
    else:
        raise ServeSetupError(
            f"--host {host} serves other machines, and browsers give the camera only to secure pages: give a "
            "certificate (--cert CERT.pem --key KEY.pem), or --self-signed to make one (the browser warns once; "
            "compare the fingerprint this prints). On this machine alone, use --host 127.0.0.1 (no HTTPS needed)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(cert_path), str(key_path))
    except (ssl.SSLError, OSError) as e:
        raise ServeSetupError(f"{cert_path} and {key_path} are not a PEM certificate and its key ({e})") from None
    return context, certificate_fingerprint(cert_path.read_bytes())
