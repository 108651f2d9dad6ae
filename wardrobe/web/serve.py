"""`wardrobe web`: serve the caretaker's page with waitress, once a password is set."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from wardrobe.errors import WardrobeError
from wardrobe.settings import parse_address
from wardrobe.web.password import PasswordError, load_record, set_password

log = logging.getLogger(__name__)

NO_PASSWORD = ("no password is set for the caretaker's page: set one with `wardrobe web password` "
               "(it reads the new password from standard input)")


def serve(settings, address: str | None = None, config_path=None) -> int:
    """Serve until stopped; refuse to start without a password."""
    host, port = parse_address(address or settings.web.address, "--address" if address else "web.address")
    if load_record(settings.state_dir) is None:
        raise PasswordError(NO_PASSWORD)
    try:
        from wardrobe.web.app import create_app
        from wardrobe.web.server import make_server
    except ImportError as e:
        raise WardrobeError(f"the caretaker's page needs {e.name}: in the wardrobe source folder, pip install '.[web]'") from None
    app = create_app(settings, config_path=config_path)
    shown = host if host not in ("0.0.0.0", "::") else "<this closet>"
    try:
        if settings.web.certificate is None:
            server = make_server(app, host, port, settings.web.idle_s)
            log.info("the caretaker's page is on http://%s:%d/", shown, port)
            server.run()
            return 0
        from wardrobe.web import tls

        context = tls.server_context(settings.web.certificate, settings.web.key)
        peers: dict[int, tuple[str, int]] = {}
        inner = make_server(tls.FromRelay(app, peers), "127.0.0.1", 0, settings.web.idle_s, url_scheme="https")
        tls.Front(context, host, port, inner.effective_port, peers).start()
        log.info("the caretaker's page is on https://%s:%d/ (relayed to 127.0.0.1:%s)", shown, port,
                 inner.effective_port)
        inner.run()
    except OSError as e:
        raise WardrobeError(f"cannot serve on {host}:{port}: {e.strerror or e}") from None
    return 0


def make_certificate(settings, names: list[str], force: bool = False, config: Path | None = None) -> int:
    """`wardrobe web certificate`: a self-signed pair in the state folder, and the lines that turn HTTPS on (in the
    configuration file given with --config, else the closet's own)."""
    from wardrobe.settings import DEFAULT_CONFIG
    from wardrobe.web.tls import default_names
    from wardrobe.web.tls import make_certificate as make

    cert, key, fingerprint = make(settings.state_dir, names or default_names(), force)
    print(f"certificate: {cert}\nkey: {key}\nSHA-256 fingerprint: {fingerprint}\n"
          f"Compare it with the one the browser shows the first time it warns about the certificate.\n"
          f"To serve the page over HTTPS, add under [web] in {config or DEFAULT_CONFIG}, then restart wardrobe-web:\n"
          f'certificate = "{cert}"\nkey = "{key}"')
    return 0


def read_new_password(stream=None) -> str:
    """The new password: typed twice at a terminal, else the first line of standard input."""
    stream = stream or sys.stdin
    if stream.isatty():
        import getpass

        first = getpass.getpass("New password for the caretaker's page: ")
        if getpass.getpass("The same again: ") != first:
            raise PasswordError("the two passwords differ; nothing was changed")
        return first
    try:
        line = stream.readline()
    except UnicodeDecodeError:
        raise PasswordError("the password is not UTF-8 text; nothing was changed") from None
    if not line:
        raise PasswordError("no password on standard input (type it at a terminal, or give it as the first line: "
                            "echo 'PASSWORD' | wardrobe web password); nothing was changed")
    return line.rstrip("\r\n")


def change_password(settings, stream=None) -> int:
    """`wardrobe web password`: store a new password's hash."""
    path = set_password(settings.state_dir, read_new_password(stream))
    print(f"password set (its salted scrypt hash is in {path}); every open session of the page has ended")
    return 0
