"""HTTPS for the caretaker's page: TLS ends in this process, and the requests go on to waitress over loopback.

waitress speaks plain HTTP only. Wrapping its listening socket in `ssl` would make it run each TLS handshake
inside its single accept loop (one client that connects and says nothing stalls everyone) and read TLS records
with non-blocking calls it does not expect. So a small front here accepts on the public address, does each
handshake on a thread of its own with a time limit, and relays the bytes to waitress on 127.0.0.1. It records
which client each relay connection carries, by the relay's local port, and `FromRelay` puts that client's address
and the https scheme back into the request (the login limit counts per client). No HTTP is parsed here, so no
request can be smuggled past waitress's own parser.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import select
import socket
import ssl
import threading
import time
from pathlib import Path

from wardrobe.errors import ConfigError, WardrobeError

log = logging.getLogger(__name__)

HANDSHAKE_S = 10.0
"""A client has this long to connect to waitress's side and finish the TLS handshake."""
IDLE_S = 120.0
"""A relay with no bytes either way for this long is closed (a backstop: waitress closes its side of an idle
connection after web.idle_s, which ends the relay)."""
MAX_CLIENTS = 100
"""Connections relayed at once (waitress's own connection limit); beyond it new ones are closed at once."""
BUFFER = 64 << 10
CERT_NAME, KEY_NAME = "web-cert.pem", "web-key.pem"
CERT_DAYS = 825
"""The longest validity browsers accept for a server certificate a user chose to trust."""


def server_context(certificate: Path, key: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context for the pair; ConfigError in one line when they cannot be used."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    for what, path in (("web.certificate", certificate), ("web.key", key)):
        if not Path(path).is_file():
            raise ConfigError(f"{what} {path} is not a file; `wardrobe web certificate` makes a pair")
    try:
        ctx.load_cert_chain(certificate, key)
    except OSError as e:
        if isinstance(e, ssl.SSLError):
            raise ConfigError(f"web.certificate {certificate} and web.key {key} are not a PEM certificate and its "
                              f"private key ({e.reason or e}); `wardrobe web certificate` makes a pair") from None
        raise ConfigError(f"cannot read web.certificate or web.key: {e.strerror or e}") from None
    return ctx


class FromRelay:
    """WSGI middleware on waitress's side: each request gets the address of the client its relay carries, and the
    https scheme; a request that did not come through the front (another local process) is refused."""

    def __init__(self, app, peers: dict[int, tuple[str, int]]) -> None:
        self.app, self.peers = app, peers

    def __call__(self, environ, start_response):
        client = None
        if environ.get("REMOTE_ADDR") == "127.0.0.1" and str(environ.get("REMOTE_PORT", "")).isdigit():
            client = self.peers.get(int(environ["REMOTE_PORT"]))
        if client is None:
            start_response("421 Misdirected Request", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"This page is served over HTTPS only.\n"]
        environ.update({"REMOTE_ADDR": client[0], "REMOTE_PORT": str(client[1]), "HTTPS": "on",
                        "wsgi.url_scheme": "https"})
        return self.app(environ, start_response)


class Front:
    """The public HTTPS listener: a thread accepting, and a thread per client for its handshake and relay."""

    def __init__(self, context: ssl.SSLContext, host: str, port: int, inner_port: int,
                 peers: dict[int, tuple[str, int]]) -> None:
        self.context, self.inner_port, self.peers = context, inner_port, peers
        self.slots = threading.BoundedSemaphore(MAX_CLIENTS)
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        # Bound here, on the caller's thread, so a busy or forbidden address is one line before serving starts.
        self.listener = socket.create_server((host, port), family=family, backlog=128)

    def start(self) -> None:
        threading.Thread(target=self._accept, name="https-accept", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, addr = self.listener.accept()
            except OSError as e:  # out of file descriptors, say: wait a moment rather than spin or die
                log.error("cannot accept an HTTPS connection: %s", e)
                time.sleep(0.5)
                continue
            if not self.slots.acquire(blocking=False):
                conn.close()
                continue
            threading.Thread(target=self._client, args=(conn, addr[:2]), name="https-client", daemon=True).start()

    def _client(self, conn: socket.socket, client: tuple[str, int]) -> None:
        tls = inner = port = None
        try:
            conn.settimeout(HANDSHAKE_S)
            tls = self.context.wrap_socket(conn, server_side=True)
            inner = socket.create_connection(("127.0.0.1", self.inner_port), timeout=HANDSHAKE_S)
            port = inner.getsockname()[1]
            self.peers[port] = client  # before any byte reaches waitress
            pump(tls, inner)
        except (OSError, ValueError) as e:  # plain HTTP, a stranger's scan, a dropped connection: nothing to do
            log.debug("HTTPS connection from %s ended: %s", client[0], e)
        except Exception:
            log.exception("HTTPS connection from %s failed", client[0])
        finally:
            if port is not None:
                self.peers.pop(port, None)
            for s in (inner, tls, conn):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass
            self.slots.release()


def pump(tls: ssl.SSLSocket, inner: socket.socket, idle_s: float = IDLE_S) -> None:
    """Relay bytes both ways on one thread (an SSL socket must not be read and written from two threads at once)
    until waitress has closed and everything it said reached the client, or nothing moved for idle_s."""
    tls.setblocking(False)
    inner.setblocking(False)
    up, down = bytearray(), bytearray()  # client to waitress, waitress to client
    client_eof = inner_eof = inner_shut = False
    tls_wants_read = tls_wants_write = False  # TLS may need the other direction to finish a read or write
    poll = select.poll()
    registered: dict[int, int] = {}

    def watch(sock, mask):
        fd = sock.fileno()
        if mask == 0:
            if fd in registered:
                poll.unregister(fd)
                del registered[fd]
        elif registered.get(fd) != mask:
            (poll.modify if fd in registered else poll.register)(fd, mask)
            registered[fd] = mask

    while True:
        moved = True
        while moved:
            moved = False
            tls_wants_read = tls_wants_write = False
            if not client_eof and len(up) < BUFFER:
                try:
                    data = tls.recv(BUFFER)
                    up += data
                    client_eof = not data
                    moved = True
                except ssl.SSLWantReadError:
                    tls_wants_read = True
                except ssl.SSLWantWriteError:
                    tls_wants_write = True
            if up:
                try:
                    sent = inner.send(up)
                    del up[:sent]
                    moved = moved or sent > 0
                except BlockingIOError:
                    pass
            if client_eof and not up and not inner_shut:
                inner.shutdown(socket.SHUT_WR)  # the client is done: waitress answers what it has, then closes
                inner_shut = True
            if not inner_eof and len(down) < BUFFER:
                try:
                    data = inner.recv(BUFFER)
                    down += data
                    inner_eof = not data
                    moved = True
                except BlockingIOError:
                    pass
            if down:
                try:
                    sent = tls.send(down)
                    del down[:sent]
                    moved = moved or sent > 0
                except ssl.SSLWantWriteError:
                    tls_wants_write = True
                except ssl.SSLWantReadError:
                    tls_wants_read = True
        if inner_eof and not down:
            return
        tls_mask = ((select.POLLIN if tls_wants_read or (not client_eof and len(up) < BUFFER) else 0)
                    | (select.POLLOUT if tls_wants_write or down else 0))
        inner_mask = ((select.POLLIN if not inner_eof and len(down) < BUFFER else 0)
                      | (select.POLLOUT if up else 0))
        watch(tls, tls_mask)
        watch(inner, inner_mask)
        if not poll.poll(idle_s * 1000):
            return


def default_names() -> list[str]:
    """The names a closet is reached by at home: its host name, with .local (mDNS), and this machine's own."""
    host = socket.gethostname()
    return [host, f"{host}.local", "localhost", "127.0.0.1", "::1"]


def dns_name(name: str) -> str:
    """A host name as a certificate holds it: ASCII, international names in their xn-- form (café.lan becomes
    xn--caf-dma.lan); WardrobeError for anything that is not a host name."""
    if not name or any(c.isspace() or c in "/:@" for c in name):
        raise WardrobeError(f"--name {name!r} is neither a host name nor an IP address")
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:  # an empty or over-long label (63 at most), or text that is not a name
        raise WardrobeError(f"--name {name[:80]!r} is not a host name (labels of 1 to 63 letters, digits or hyphens, "
                            f"253 characters in all)") from None
    if len(ascii_name) > 253:
        raise WardrobeError(f"--name {name[:40]!r}... is longer than a host name may be (253 characters)")
    return ascii_name


def make_certificate(state_dir: Path, names: list[str], force: bool = False) -> tuple[Path, Path, str]:
    """A self-signed ECDSA P-256 certificate for the names, and its key (owner-only), in the state folder;
    (certificate, key, SHA-256 fingerprint as the browser shows it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from wardrobe.web.password import write_private

    cert_path, key_path = Path(state_dir) / CERT_NAME, Path(state_dir) / KEY_NAME
    if not force and (cert_path.exists() or key_path.exists()):
        raise WardrobeError(f"{cert_path} or {key_path} already exists: add --force to replace them (browsers that "
                            f"accepted the old certificate will warn again)")
    sans: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(dns_name(name)))
    key = ec.generate_private_key(ec.SECP256R1())
    common = sans[0].value if isinstance(sans[0], x509.DNSName) else names[0]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common[:64]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wardrobe closet (self-signed)")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    try:
        write_private(key_path, key_pem)
        write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    except OSError as e:
        raise WardrobeError(f"cannot write the certificate into {state_dir}: {e.strerror or e}; use --state-dir "
                            f"to choose a writable folder") from None
    fingerprint = ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))
    return cert_path, key_path, fingerprint
