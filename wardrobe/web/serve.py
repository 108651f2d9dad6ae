"""`wardrobe web`: serve the caretaker's page with waitress, once a password is set."""

from __future__ import annotations

import logging
import sys

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
        import waitress

        from wardrobe.web.app import create_app
    except ImportError as e:
        raise WardrobeError(f"the caretaker's page needs {e.name}: pip install 'wardrobe[web]'") from None
    app = create_app(settings, config_path=config_path)
    log.info("the caretaker's page is on http://%s:%d/", host if host not in ("0.0.0.0", "::") else "<this closet>",
             port)
    try:
        waitress.serve(app, host=host, port=port, threads=4, ident="wardrobe", clear_untrusted_proxy_headers=True)
    except OSError as e:
        raise WardrobeError(f"cannot serve on {host}:{port}: {e.strerror or e}") from None
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
    return stream.readline().rstrip("\r\n")


def change_password(settings, stream=None) -> int:
    """`wardrobe web password`: store a new password's hash."""
    path = set_password(settings.state_dir, read_new_password(stream))
    print(f"password set (its salted scrypt hash is in {path}); every open session of the page has ended")
    return 0
