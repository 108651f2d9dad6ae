"""What every request and response goes through: forms read as they came, ids in ASCII digits, CSRF tokens,
security headers, and the login rate limit."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from urllib.parse import parse_qsl

from flask import Flask, Request, abort, request, session
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.routing import IntegerConverter

from wardrobe.files import undecodable

CSP = ("default-src 'none'; img-src 'self'; media-src 'self'; style-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
"""No scripts at all (the pages work without them), nothing from elsewhere, never inside a frame; the voice
labels play from this site."""
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def csrf_token() -> str:
    """This session's CSRF token, made on first use (templates put it in every form)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


FORM_MAX_BYTES = 1 << 20
"""Any post but a photo upload: larger is refused before it is read (even before the token is checked)."""
UPLOADS = ("clothes.enrol_upload",)


class KeptBytesMultiPart(MultiPartParser):
    """Werkzeug's multipart parser, its text fields decoded as UTF-8 with any other bytes kept as surrogate escapes
    (Werkzeug would put U+FFFD in their place, which cannot be told from a pasted one)."""

    def get_part_charset(self, headers) -> str:
        return "latin-1"  # every byte as it came, one character each: `parse` decodes them as UTF-8

    def parse(self, stream, boundary, content_length):
        fields, files = super().parse(stream, boundary, content_length)
        return self.cls([(k, v.encode("latin-1").decode("utf-8", "surrogateescape"))
                         for k, v in fields.items(multi=True)]), files


class KeptBytesForms(FormDataParser):
    """Werkzeug's form parser, except that bytes which are not UTF-8 are kept as surrogate escapes, as Python keeps
    them in file names and arguments, so `undecodable` finds them. Werkzeug keeps a `%FF` of a urlencoded form as
    the text "%FF", which cannot be told from a typed "%FF" (sent as %25FF) once parsed."""

    def parse(self, stream, mimetype, content_length, options=None):
        try:
            if mimetype == "application/x-www-form-urlencoded":
                return stream, self.cls(self.urlencoded(stream)), self.cls()
            if mimetype == "multipart/form-data":
                boundary = (options or {}).get("boundary", "").encode("ascii")
                if not boundary:
                    raise ValueError("missing boundary")
                parser = KeptBytesMultiPart(stream_factory=self.stream_factory, cls=self.cls,
                                            max_form_memory_size=self.max_form_memory_size,
                                            max_form_parts=self.max_form_parts)
                return stream, *parser.parse(stream, boundary, content_length)
        except ValueError:  # as Werkzeug's: a broken form is an empty one (its token is missing, so 400)
            if not self.silent:
                raise
            return stream, self.cls(), self.cls()
        return super().parse(stream, mimetype, content_length, options)

    def urlencoded(self, stream) -> list[tuple[str, str]]:
        """The fields of a urlencoded form: 413 past max_form_memory_size bytes or max_form_parts fields, read only
        that far whatever Content-Length says (a chunked body has none), so no form costs more than a typed one."""
        limit, parts = self.max_form_memory_size, self.max_form_parts
        data = stream.read() if limit is None else stream.read(limit + 1)
        if (limit is not None and len(data) > limit) or (parts is not None and data.count(b"&") >= parts):
            raise RequestEntityTooLarge()
        return parse_qsl(data.decode("utf-8", "surrogateescape"), keep_blank_values=True, errors="surrogateescape")


class PageRequest(Request):
    """Flask's request with its forms read by `KeptBytesForms`."""

    form_data_parser_class = KeptBytesForms


class AsciiIntConverter(IntegerConverter):
    """`<int:...>` for ASCII digits only: Werkzeug's takes any script's (`\\d`, then int()), so `/presses/１/photo`
    (fullwidth) or `/presses/١/photo` (Arabic-Indic) was press 1 under a second name."""

    regex = "0|[1-9][0-9]*"


def check_form() -> None:
    """Refuse a state-changing request whose form is larger than any this page sends (413), holds text that is not
    UTF-8 (400; as the command line refuses such names and passwords) or lacks this session's token (400 when
    missing, 403 when wrong)."""
    if request.method not in UNSAFE_METHODS:
        return
    if request.endpoint not in UPLOADS:
        request.max_content_length = FORM_MAX_BYTES
    bad = next((k for k, v in request.form.items(multi=True) if undecodable(k) or undecodable(v)), None)
    if bad is not None:
        which = "A field's name" if undecodable(bad) else f"The {bad} field"
        abort(400, description=f"{which} is not UTF-8 text (bytes no keyboard sends); nothing was changed.")
    sent = request.form.get("csrf_token", "")
    if not sent:
        abort(400, description="The form is missing its security token; reload the page and try again.")
    expected = session.get("csrf")
    if not expected or not hmac.compare_digest(sent.encode(), str(expected).encode()):
        abort(403, description="The form's security token is wrong or expired; reload the page and try again.")


def add_headers(response):
    """Security headers on every response; private pages and photos are never cached."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    return response


class LiveSessions:
    """The sessions logged in and not logged out, kept by the server (the cookie alone is not enough: logging out
    ends a copy of it too). In memory: a restart of the page logs everyone out."""

    def __init__(self, most: int = 1000) -> None:
        self.ids: dict[str, float] = {}
        self.most = most
        self.lock = threading.Lock()

    def open(self) -> str:
        """A new session's id."""
        sid = secrets.token_urlsafe(32)
        with self.lock:
            if len(self.ids) >= self.most:  # the oldest logins go first
                for old in sorted(self.ids, key=self.ids.get)[: len(self.ids) - self.most + 1]:
                    del self.ids[old]
            self.ids[sid] = time.monotonic()
        return sid

    def holds(self, sid) -> bool:
        """Whether this id is a session still open."""
        with self.lock:
            return isinstance(sid, str) and sid in self.ids

    def close(self, sid) -> None:
        """Log this session out."""
        with self.lock:
            if isinstance(sid, str):
                self.ids.pop(sid, None)


class RateLimit:
    """At most `tries` wrong passwords per `window_s` seconds per client address (the login form, and the password
    typed again), and at most `all_tries` from all addresses together (many addresses on one network must not
    multiply the guesses). A try counts while it is checked (a hundred at once cannot all slip through) and is given
    back when the password was right: only wrong ones use up the limit. An address that gave the right password in
    the last `trusted_s` seconds is not held by the all-addresses limit (its own still holds), so a host that keeps
    guessing cannot lock the caretaker's phone out."""

    def __init__(self, tries: int = 5, window_s: float = 60.0, all_tries: int = 30,
                 trusted_s: float = 30 * 24 * 3600.0) -> None:
        self.tries, self.window_s, self.all_tries, self.trusted_s = tries, window_s, all_tries, trusted_s
        self.everyone: deque = deque()
        self.seen: dict[str, deque] = {}
        self.good: dict[str, float] = {}
        """Address -> when it last gave the right password."""
        self.lock = threading.Lock()  # waitress serves on several threads

    def allow(self, client: str) -> float:
        """0 when this attempt may go ahead (and counts it until `succeeded`); otherwise seconds until the next
        one may."""
        now = time.monotonic()
        with self.lock:
            while self.everyone and now - self.everyone[0] >= self.window_s:
                self.everyone.popleft()
            trusted = now - self.good.get(client, -self.trusted_s) < self.trusted_s
            if len(self.everyone) >= self.all_tries and not trusted:
                return self.window_s - (now - self.everyone[0])
            recent = self.seen.setdefault(client, deque())
            while recent and now - recent[0] >= self.window_s:
                recent.popleft()
            if len(recent) >= self.tries:
                return self.window_s - (now - recent[0])
            recent.append(now)
            self.everyone.append(now)
            if len(self.seen) > 10000:  # a flood of addresses must not grow memory without bound
                for key in [k for k, v in self.seen.items() if not v or now - v[-1] >= self.window_s]:
                    del self.seen[key]
            return 0.0

    def succeeded(self, client: str) -> None:
        """The try `allow` counted for this client gave the right password: give it back, and trust the address."""
        now = time.monotonic()
        with self.lock:
            recent = self.seen.get(client)
            if recent:
                stamp = recent.pop()
                try:
                    self.everyone.remove(stamp)
                except ValueError:
                    pass  # already past the window
            self.good[client] = now
            if len(self.good) > 1000:  # the addresses that logged in, bounded: the oldest go first
                for key in sorted(self.good, key=self.good.get)[: len(self.good) - 1000]:
                    del self.good[key]


def install(app: Flask) -> None:
    """Wire the request class, the id converter, the form checks, the headers and the token helper into an app
    (before any route is added: the routes take the converter when they are added)."""
    app.request_class = PageRequest
    app.url_map.converters["int"] = AsciiIntConverter
    app.before_request(check_form)
    app.after_request(add_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
