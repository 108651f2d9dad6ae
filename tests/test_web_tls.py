"""The caretaker's page over HTTPS: `wardrobe web certificate` makes a real self-signed pair, and the real server
(`wardrobe web`, the TLS front and waitress) answers over real TLS on 127.0.0.1, checked against that certificate."""

from __future__ import annotations

import contextlib
import http.client
import http.cookiejar
import json
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.conftest import ROOT
from tests.test_cli import wardrobe
from tests.test_deploy import WEB_UNIT
from tests.test_web import PASSWORD, described, free_port, press_ids, token  # noqa: F401  (described: a fixture)
from tests.test_web_browser import fill_state
from wardrobe.web.security import FORM_MAX_BYTES


@pytest.fixture
def state(tmp_path, described):  # noqa: F811
    """A closet's state folder with three real presses and the caretaker's password."""
    return fill_state(tmp_path / "state", described)


def make_pair(state_dir, *names):
    flags = [a for n in names for a in ("--name", n)]
    return wardrobe("web", "certificate", "--state-dir", str(state_dir), *flags)


def test_web_certificate_makes_a_self_signed_pair_for_the_closets_names(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    r = make_pair(tmp_path / "s", "closet.example", "192.168.1.40")
    assert r.returncode == 0, r.stderr
    cert_path, key_path = tmp_path / "s" / "web-cert.pem", tmp_path / "s" / "web-key.pem"
    assert key_path.stat().st_mode & 0o077 == 0
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["closet.example"]
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["192.168.1.40"]
    fingerprint = ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))
    assert f"SHA-256 fingerprint: {fingerprint}" in r.stdout
    assert f'certificate = "{cert_path}"\nkey = "{key_path}"' in r.stdout
    assert "under [web] in /etc/wardrobe/config.toml" in r.stdout  # the closet's own file
    config = tmp_path / "my.toml"
    config.write_text(f'state_dir = "{tmp_path / "other"}"\n')
    r = wardrobe("web", "certificate", "--config", str(config))
    assert r.returncode == 0 and f"under [web] in {config}," in r.stdout, r.stdout  # the file given, not /etc's
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_path, key_path)  # a matching pair

    again = make_pair(tmp_path / "s")
    assert again.returncode == 2 and "add --force" in again.stderr and len(again.stderr.splitlines()) == 1
    assert cert_path.read_bytes() == cert.public_bytes(serialization.Encoding.PEM)  # untouched
    forced = wardrobe("web", "certificate", "--state-dir", str(tmp_path / "s"), "--force")
    assert forced.returncode == 0 and x509.load_pem_x509_certificate(cert_path.read_bytes()) != cert
    names = x509.load_pem_x509_certificate(cert_path.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert socket.gethostname() in names.get_values_for_type(x509.DNSName)  # the default names
    assert "127.0.0.1" in [str(a) for a in names.get_values_for_type(x509.IPAddress)]


def write_config(tmp_path, state_dir, port, **web) -> str:
    lines = [f'state_dir = "{state_dir}"', "[web]", f'address = "127.0.0.1:{port}"']
    lines += [f'{k} = "{v}"' for k, v in web.items()]
    config = tmp_path / "https.toml"
    config.write_text("\n".join(lines) + "\n")
    return str(config)


@pytest.mark.parametrize("which", ["certificate", "key"])
def test_a_certificate_without_its_key_is_one_line(tmp_path, which):
    r = wardrobe("web", "--config", write_config(tmp_path, tmp_path, 1, **{which: str(tmp_path / "x.pem")}))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "wardrobe: web.certificate and web.key go together: set both (HTTPS) or neither (plain HTTP); "
        "`wardrobe web certificate` makes a pair"]


def test_a_missing_or_unusable_pair_is_one_line_at_start(state, tmp_path):
    assert make_pair(tmp_path / "pair").returncode == 0
    cert, key = tmp_path / "pair" / "web-cert.pem", tmp_path / "pair" / "web-key.pem"
    other = tmp_path / "other"
    assert make_pair(other).returncode == 0
    for c, k, said in ((tmp_path / "none.pem", key, "is not a file"),
                       (cert, other / "web-key.pem", "are not a PEM certificate and its private key"),
                       (key, cert, "are not a PEM certificate and its private key")):
        r = wardrobe("web", "--config", write_config(tmp_path, state, free_port(), certificate=c, key=k))
        assert r.returncode == 2 and said in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@contextlib.contextmanager
def serving(state, tmp_path, wrap=()):
    """`wardrobe web` (inside `wrap`) with a pair from `wardrobe web certificate`: (base URL, a client context
    trusting only that certificate, the inner waitress port from the log, the server process)."""
    assert make_pair(state).returncode == 0
    port = free_port()
    config = write_config(tmp_path, state, port, certificate=state / "web-cert.pem", key=state / "web-key.pem")
    log = open(tmp_path / "server.log", "w+")
    proc = subprocess.Popen([*wrap, sys.executable, "-m", "wardrobe", "web", "--config", config], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    trusted = ssl.create_default_context(cafile=state / "web-cert.pem")  # verifies the name too: 127.0.0.1
    base = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2, context=trusted) as r:
                    assert json.loads(r.read()) == {"ok": True}
                break
            except OSError:
                log.seek(0)
                assert proc.poll() is None and time.monotonic() < deadline, log.read()
                time.sleep(0.2)
        log.seek(0)
        inner = int(re.search(r"relayed to 127\.0\.0\.1:(\d+)", log.read()).group(1))
        yield base, trusted, inner, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture
def https(state, tmp_path):
    with serving(state, tmp_path) as served:
        yield served


def log_in_over_https(base, trusted) -> None:
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
                                          urllib.request.HTTPSHandler(context=trusted))
    with browser.open(f"{base}/login", timeout=10) as r:
        page = r.read()
        cookie = r.headers["Set-Cookie"]
        assert "Secure" in [a.strip() for a in cookie.split(";")] and "HttpOnly" in cookie
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    form = urllib.parse.urlencode({"password": PASSWORD, "csrf_token": token(page)}).encode()
    with browser.open(f"{base}/login", data=form, timeout=30) as r:
        assert r.url == f"{base}/"  # the redirect stays on https
        page = r.read()
        assert b"<h1>Recent presses</h1>" in page
    with browser.open(f"{base}/presses/{press_ids(page)[0]}/photo", timeout=10) as r:
        assert r.headers["Content-Type"] == "image/jpeg" and r.read()[:2] == b"\xff\xd8"


def test_the_page_over_https_logs_in_with_a_secure_cookie(https):
    base, trusted, _, _ = https
    log_in_over_https(base, trusted)


def test_https_works_inside_the_units_sandbox(state, tmp_path):
    """The front's threads, poll and OpenSSL under the web unit's RestrictAddressFamilies (internet sockets only),
    MemoryDenyWriteExecute and ProtectProc, reproduced by tests/sandboxed.py (needs root)."""
    with serving(state, tmp_path, [sys.executable, "-m", "tests.sandboxed", str(WEB_UNIT), "--"]) as (base, trusted,
                                                                                                     _, _):
        log_in_over_https(base, trusted)


def test_nothing_is_served_in_the_clear(https):
    base, _, inner, _ = https
    port = urllib.parse.urlsplit(base).port
    with pytest.raises((OSError, http.client.HTTPException)):  # plain HTTP to the HTTPS port: the handshake fails
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()
    # waitress's own side listens on loopback, but answers only requests the front relayed
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{inner}/healthz", timeout=5)
    assert refused.value.code == 421 and refused.value.read() == b"This page is served over HTTPS only.\n"


def test_a_client_that_connects_and_says_nothing_stalls_nobody(https):
    """Each handshake runs on its own thread with a time limit: a silent connection (or a plain-HTTP one) must
    not hold up the next client, as it would if the accept loop did the handshake."""
    base, trusted, _, _ = https
    port = urllib.parse.urlsplit(base).port
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        started = time.monotonic()
        with urllib.request.urlopen(f"{base}/healthz", timeout=5, context=trusted) as r:
            assert json.loads(r.read()) == {"ok": True}
        assert time.monotonic() - started < 2
    finally:
        for s in silent:
            s.close()


def login_from(base, trusted, source, password):
    """One login attempt over HTTPS from a given loopback address (Linux routes all of 127.0.0.0/8 to lo)."""
    host, port = urllib.parse.urlsplit(base).hostname, urllib.parse.urlsplit(base).port
    conn = http.client.HTTPSConnection(host, port, context=trusted, timeout=30, source_address=(source, 0))
    try:
        conn.request("GET", "/login")
        r = conn.getresponse()
        page, cookie = r.read(), r.headers["Set-Cookie"].split(";")[0]
        body = urllib.parse.urlencode({"password": password, "csrf_token": token(page)})
        conn.request("POST", "/login", body=body, headers={"Cookie": cookie,
                                                           "Content-Type": "application/x-www-form-urlencoded"})
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def test_the_login_limit_counts_each_client_not_the_relay(https):
    """The front relays every client from 127.0.0.1; the page must still see who each client is."""
    base, trusted, _, _ = https
    for _ in range(5):
        assert login_from(base, trusted, "127.0.0.2", "a guess") == 403
    assert login_from(base, trusted, "127.0.0.2", PASSWORD) == 429
    assert login_from(base, trusted, "127.0.0.3", PASSWORD) == 302


def test_a_browser_logs_in_over_https_and_keeps_a_secure_cookie(https, state):
    """Debian's chromium trusting exactly this certificate's key (as a caretaker does who accepts it once)."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from playwright.sync_api import sync_playwright

    from tests.test_web_browser import BROWSER_ARGS, CHROMIUM

    base, _, _, _ = https
    cert = x509.load_pem_x509_certificate((state / "web-cert.pem").read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pin = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=[*BROWSER_ARGS, f"--ignore-certificate-errors-spki-list={pin}"])
        try:
            page = browser.new_page()
            page.goto(f"{base}/")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{base}/")
            assert page.get_by_role("heading", level=1).inner_text() == "Recent presses"
            assert page.evaluate("window.isSecureContext")
            cookie = {c["name"]: c for c in page.context.cookies()}["wardrobe_session"]
            assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        finally:
            browser.close()


def test_many_clients_at_once_each_get_their_whole_answer(https, state):
    """Photos to many clients at once over kept-alive connections, each byte for byte; then a body several times
    the relay's buffer on the way in, which reaches the page whole and is refused there as too large."""
    from concurrent.futures import ThreadPoolExecutor

    from wardrobe.history import PressStore

    base, trusted, _, _ = https
    host, port = "127.0.0.1", urllib.parse.urlsplit(base).port
    conn = http.client.HTTPSConnection(host, port, context=trusted, timeout=30)
    conn.request("GET", "/login")
    r = conn.getresponse()
    page, cookie = r.read(), r.headers["Set-Cookie"].split(";")[0]
    conn.request("POST", "/login", body=urllib.parse.urlencode({"password": PASSWORD, "csrf_token": token(page)}),
                 headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse()
    r.read()
    assert r.status == 302
    cookie = r.headers["Set-Cookie"].split(";")[0]
    conn.close()
    store = PressStore(state / "history.db", create=False)
    photos = {p.id: store.photo(p.id) for p in store.presses()}

    def fetch(press_id):
        c = http.client.HTTPSConnection(host, port, context=trusted, timeout=60)
        try:
            for _ in range(3):  # one connection, kept alive between requests
                c.request("GET", f"/presses/{press_id}/photo", headers={"Cookie": cookie})
                resp = c.getresponse()
                assert resp.status == 200 and resp.read() == photos[press_id]
            big = b"x" * (FORM_MAX_BYTES + 1)  # any post but a photo upload is refused above this
            c.request("POST", "/login", body=big, headers={"Content-Type": "application/x-www-form-urlencoded"})
            resp = c.getresponse()
            resp.read()
            return resp.status
        finally:
            c.close()

    with ThreadPoolExecutor(16) as pool:
        assert list(pool.map(fetch, list(photos) * 8)) == [413] * (len(photos) * 8)
