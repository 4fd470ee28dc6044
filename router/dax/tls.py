"""``daxs://``: TLS on a DAX node's port, with the operator's certificate or one Meridian makes.

The DAX clients check a ``daxs://`` node as any TLS client checks a server,
against the host of the seed URL (``dax-protocol.md`` §1):

* Python (``amazon-dax-client``) wraps its socket with
  ``ssl.create_default_context()``: the system CAs, or ``SSL_CERT_FILE``;
  the name checked is the seed's host, an IP literal included.
* JavaScript (``@amazon-dax-sdk/client-dax``) uses Node's CAs plus
  ``NODE_EXTRA_CA_CERTS``, and resolves seeds with ``dns.resolve``, which
  skips ``/etc/hosts``: users give it an IP literal, so the certificate needs
  IP names, not only ``localhost``.

``--dax-tls`` without a certificate makes one (``ensure_self_signed``): a
self-signed certificate that is its own CA (``CA:TRUE``, so trusting the one
file is enough for OpenSSL and Node alike), an ECDSA P-256 key, and
subjectAltNames for the listen address, 127.0.0.1, ::1 and ``localhost`` (and
the machine's name when listening on every interface).  It is made once per
directory (the data folder; a per-user temporary folder for ``--in-memory``,
routers and ``meridian dax``) and reused on restart while it is valid and
names the listen address, so a user trusts it once.  ``cryptography`` is
imported only to make or inspect that certificate: nothing else needs it.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import ipaddress
import os
import socket
import ssl
import stat
import tempfile
from dataclasses import dataclass
from typing import Iterator

from meridian.model import limits

CERT_FILE_NAME = "dax-tls-cert.pem"
KEY_FILE_NAME = "dax-tls-key.pem"
_LOCK_FILE_NAME = "dax-tls.lock"
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})
_ALWAYS_IPS = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
_ALWAYS_DNS = ("localhost",)


class TlsError(ValueError):
    """A certificate, key or folder a DAX node cannot serve ``daxs://`` with: the operator's to fix."""


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files a ``daxs://`` node serves with.

    ``generated``: Meridian made the certificate, so clients must be told to
    trust it (``trust_hint``); ``fresh``: it was made by this start (not reused).
    """

    cert_path: str
    key_path: str
    generated: bool = False
    fresh: bool = False


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """The server-side context for ``loop.create_server(ssl=...)``; ``TlsError`` if the files do not load."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(files.cert_path, files.key_path)
    except OSError as exc:  # ssl.SSLError included: unreadable, not PEM, or a key that is not the certificate's
        raise TlsError(f"cannot serve daxs:// with certificate {files.cert_path} and key {files.key_path}: {exc}") from exc
    return context


def resolve(*, cert_path: str | None, key_path: str | None, generate: bool, directory: str | None,
            host: str) -> TlsFiles | None:  # fmt: skip
    """What the operator asked for: their files, a made (or reused) certificate, or None (plain ``dax://``).

    ``directory``: where a made certificate lives (None: ``default_directory()``).
    """
    if (cert_path is None) != (key_path is None):
        raise TlsError("--dax-tls-cert and --dax-tls-key go together")
    if cert_path is not None and key_path is not None:
        return TlsFiles(cert_path=cert_path, key_path=key_path)
    if not generate:
        return None
    return ensure_self_signed(directory or default_directory(), host)


def trust_hint(files: TlsFiles) -> str:
    """One line telling users how to make their DAX clients trust ``files``' certificate."""
    path = files.cert_path
    if not files.generated:
        return f"certificate {path}"
    made = "made now" if files.fresh else "reused"
    return (f"self-signed certificate {path} ({made}); trust it with SSL_CERT_FILE={path} (Python client) "
            f"or NODE_EXTRA_CA_CERTS={path} (JavaScript client)")  # fmt: skip


def default_directory() -> str:
    """A per-user folder under the temporary directory, so a router's certificate survives its restarts.

    Refused (``TlsError``) if someone else owns it or can write to it: they could swap the key.
    """
    path = os.path.join(tempfile.gettempdir(), f"meridian-dax-tls-{os.getuid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise TlsError(f"{path} is not a folder of this user's that only they can write: remove it, or give "
                       "--dax-tls-cert and --dax-tls-key")  # fmt: skip
    return path


def subject_names(host: str) -> tuple[list[ipaddress.IPv4Address | ipaddress.IPv6Address], list[str]]:
    """The IP addresses and DNS names a certificate for a node listening on ``host`` must carry."""
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = list(_ALWAYS_IPS)
    names = list(_ALWAYS_DNS)
    bare = host.strip("[]").split("%", 1)[0]
    if bare in _WILDCARD_HOSTS:
        names.append(socket.gethostname())  # clients reach a node on every interface by the machine's name
    else:
        try:
            ips.append(ipaddress.ip_address(bare))
        except ValueError:
            names.append(bare)
    return list(dict.fromkeys(ips)), list(dict.fromkeys(names))


def ensure_self_signed(directory: str, host: str) -> TlsFiles:
    """The certificate in ``directory`` if it is still good for ``host``, else a new one written there.

    A lock file serialises processes sharing the folder, so a certificate is
    never paired with another process's key.
    """
    directory = os.path.abspath(directory)  # printed for users to export: absolute, wherever they run from
    os.makedirs(directory, exist_ok=True)
    files = TlsFiles(os.path.join(directory, CERT_FILE_NAME), os.path.join(directory, KEY_FILE_NAME), generated=True)
    with _locked(os.path.join(directory, _LOCK_FILE_NAME)):
        if os.path.isfile(files.cert_path) and os.path.isfile(files.key_path) and _still_good(files.cert_path, host):
            return files
        cert_pem, key_pem = make_self_signed(host)
        _write_atomically(files.key_path, key_pem, mode=0o600)
        _write_atomically(files.cert_path, cert_pem, mode=0o644)
    return TlsFiles(files.cert_path, files.key_path, generated=True, fresh=True)


def make_self_signed(host: str, *, now: datetime.datetime | None = None) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM): a self-signed CA certificate naming ``subject_names(host)``."""
    from cryptography import x509  # noqa: PLC0415 - only --dax-tls needs cryptography
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415

    now = now or datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    ips, names = subject_names(host)
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Meridian"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"Meridian DAX node ({host or 'all interfaces'})"),
    ])  # fmt: skip
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    # CA:TRUE with keyCertSign: the file users trust is the root itself.  Both
    # key identifiers and a critical basicConstraints keep OpenSSL's strict
    # mode (Python 3.13's default context) content.
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=limits.DAX_TLS_CERT_BACKDATE_S))
        .not_valid_after(now + datetime.timedelta(days=limits.DAX_TLS_CERT_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)  # fmt: skip
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([*(x509.DNSName(n) for n in names),
                                                    *(x509.IPAddress(ip) for ip in ips)]), critical=False)  # fmt: skip
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _still_good(cert_path: str, host: str) -> bool:
    """The made certificate at ``cert_path`` is not near its end and names everything ``host`` needs."""
    from cryptography import x509  # noqa: PLC0415

    try:
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    renew_at = cert.not_valid_after_utc - datetime.timedelta(days=limits.DAX_TLS_CERT_RENEW_DAYS)
    if datetime.datetime.now(datetime.timezone.utc) >= renew_at:
        return False
    ips, names = subject_names(host)
    return set(ips) <= set(san.get_values_for_type(x509.IPAddress)) and set(names) <= set(
        san.get_values_for_type(x509.DNSName))


def _write_atomically(path: str, data: bytes, *, mode: int) -> None:
    """Write ``data`` beside ``path``, then rename it over: readers see the old file or the new, whole."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-dax-tls-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
