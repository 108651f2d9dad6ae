"""The caretaker's page, part two: the user's clothes, the model, health and settings, over HTTP with Flask's test
client on the real app, real SQLite files (history and closet), real photos, the real model store and the real
`wardrobe enrol`; the settings reach a real daemon."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest

from tests import test_web
from tests.conftest import PHOTOS, ROOT, SHIPPED, TRUSTED, rgb_of
from tests.test_models_store import make_version
from tests.test_web import PASSWORD, PRINT_HEAVY_MODULES, log_in, settings_for, token
from wardrobe import running
from wardrobe import settings as settings_mod
from wardrobe.audio import wav_bytes
from wardrobe.bundle import Bundle
from wardrobe.closet import Closet
from wardrobe.errors import ConfigError
from wardrobe.history import PressStore
from wardrobe.images import MAX_PIXELS, shrink
from wardrobe.models_store import ModelStore
from wardrobe.signing import key_id, read_public
from wardrobe.web.app import create_app
from wardrobe.web.clothes import UPLOAD_MAX_BYTES

# The first part's fixtures: a state folder with three real presses and the password, the app, a logged-in client.
described, state, app, client, logged_in = (test_web.described, test_web.state, test_web.app, test_web.client,
                                            test_web.logged_in)


def text_of(r) -> str:
    return html.unescape(r.data.decode())


def errors_of(r) -> list[str]:
    """The page's error lines (role=alert)."""
    return [html.unescape(m) for m in re.findall(r'<p class="error" role="alert"[^>]*>(.*?)</p>', r.data.decode(), re.S)]


def page_token(client, path="/clothes") -> str:
    return token(client.get(path).data)


@pytest.fixture(scope="module")
def pipeline():
    from wardrobe.classify import Classifier
    from wardrobe.pipeline import Pipeline

    return Pipeline(Classifier.load(SHIPPED))


CLIP = wav_bytes((np.sin(np.linspace(0, 800 * np.pi, 16000)) * 8000).astype(np.int16), 16000)
"""A recorded voice label: one second of a 400 Hz tone as a real WAV file."""


@pytest.fixture
def closet(state, pipeline):
    """Two enrolled garments: jeans by name, a coat by voice label with its recording."""
    c = Closet(state / "closet.db")
    for photo, kw in (("product-jeans-blue.jpg", {"name": "blue jeans"}),
                      ("home-outwear.jpg", {"voice_label": "20261129-101500", "voice_clip": CLIP})):
        rgb = shrink(rgb_of(photo), 640)
        c.enrol_described(pipeline.describe(rgb), rgb, pipeline.model_version, **kw)
    yield c
    c.close()


# -- the user's clothes ------------------------------------------------------------------------------------


def test_the_clothes_page_shows_each_garment_with_its_thumbnail_name_and_playable_voice_label(logged_in, closet):
    jeans, coat = closet.garments()
    r = logged_in.get("/clothes")
    page = r.data.decode()
    assert r.status_code == 200 and "<h2 id=\"name-1\">blue jeans</h2>" in page
    assert f'<h2 id="name-{coat.id}">voice label 20261129-101500</h2>' in page
    for g in (jeans, coat):
        assert f'src="/clothes/{g.id}/thumbnail"' in page
        t = logged_in.get(f"/clothes/{g.id}/thumbnail")
        assert t.status_code == 200 and t.mimetype == "image/jpeg" and t.data == g.thumbnail
    assert re.search(rf'<audio controls preload="none" src="/clothes/{coat.id}/voice"', page)
    assert f"/clothes/{jeans.id}/voice" not in page  # no recording, no player
    v = logged_in.get(f"/clothes/{coat.id}/voice")
    assert v.status_code == 200 and v.mimetype == "audio/wav" and v.data == CLIP
    assert logged_in.get(f"/clothes/{jeans.id}/voice").status_code == 404
    assert "media-src 'self'" in v.headers["Content-Security-Policy"]  # the player may load it
    assert '<label for="rename-1">' in page and '<label for="photo">' in page and '<label for="enrol-name">' in page


def test_thumbnails_and_recordings_are_found_by_integer_id_only(logged_in, closet):
    for path in ("/clothes/9999/thumbnail", "/clothes/-1/thumbnail", "/clothes/..%2Fcloset.db/thumbnail",
                 "/clothes/blue%20jeans/thumbnail", "/clothes/1%2F..%2F..%2Fweb-password/voice", "/clothes/x/voice",
                 "/clothes/9999/voice"):
        assert logged_in.get(path).status_code == 404, path


def test_the_clothes_pages_need_a_login(client, closet):
    for path in ("/clothes", "/clothes/1/thumbnail", "/clothes/2/voice", "/presses/1/enrol", "/model", "/health",
                 "/settings"):
        r = client.get(path)
        assert r.status_code == 302 and r.headers["Location"].startswith("/login"), path


def test_rename_and_remove_refuse_a_missing_or_wrong_csrf_token(logged_in, closet, state):
    for path, form in (("/clothes/1/rename", {"name": "old jeans"}), ("/clothes/1/remove", {}),
                       ("/clothes/enrol", {"name": "x"}), ("/presses/1/enrol", {"name": "x"}),
                       ("/model/rollback", {"password": PASSWORD}),
                       ("/settings", {"colour_names": "basic", "volume": "50", "language": "ko"})):
        assert logged_in.post(path, data=form).status_code == 400, path
        assert logged_in.post(path, data={**form, "csrf_token": "forged"}).status_code == 403, path
    assert [g.name for g in Closet(state / "closet.db").garments()] == ["blue jeans", None]
    assert not (state / "settings.toml").exists() and not (state / "models").exists()


def test_rename_uses_the_closets_checks_and_remove_forgets_the_garment(logged_in, closet, state):
    r = logged_in.post("/clothes/1/rename", data={"name": "  old   jeans ", "csrf_token": page_token(logged_in)})
    assert r.status_code == 302 and r.headers["Location"].endswith("#garment-1")
    assert "Garment 1 is now called “old jeans”." in text_of(logged_in.get("/clothes"))
    assert Closet(state / "closet.db").find("1").name == "old jeans"
    r = logged_in.post("/clothes/2/rename", data={"name": "OLD JEANS", "csrf_token": page_token(logged_in)})
    assert r.status_code == 400 and errors_of(r) == ["another garment is already called 'old jeans' (id 1): "
                                                      "choose another name"]
    r = logged_in.post("/clothes/2/rename", data={"name": "bad\x07name", "csrf_token": page_token(logged_in)})
    assert r.status_code == 400 and errors_of(r) == ["the new name cannot be used: the name holds control characters"]
    assert Closet(state / "closet.db").find("2").name is None
    r = logged_in.post("/clothes/2/remove", data={"csrf_token": page_token(logged_in)})
    assert r.status_code == 302 and [g.id for g in Closet(state / "closet.db").garments()] == [1]
    assert logged_in.get("/clothes/2/thumbnail").status_code == 404
    assert logged_in.post("/clothes/2/remove", data={"csrf_token": page_token(logged_in)}).status_code == 404


def test_a_form_field_that_is_not_utf8_is_refused_and_a_typed_percent_ff_is_a_name(logged_in, closet, state):
    """Found by a hostile try: a name sent as %FF (a byte that is not UTF-8) was stored as the text "%FF", which
    Werkzeug's parser cannot tell from a typed one (sent as %25FF); a raw byte in an upload's name became U+FFFD.
    Both are refused in one line, as the command line refuses such a name; a typed "%FF" or "\ufffd" is a name."""
    import io

    def raw(path, body: bytes, content_type="application/x-www-form-urlencoded"):
        return logged_in.post(path, data=body, content_type=content_type)

    r = raw("/clothes/1/rename", b"name=old+%FF+jeans&csrf_token=" + page_token(logged_in).encode())
    assert r.status_code == 400 and "The name field is not UTF-8 text (bytes no keyboard sends); nothing was " \
                                     "changed." in text_of(r)
    r = raw("/clothes/1/rename", b"name=old+\xff+jeans&csrf_token=" + page_token(logged_in).encode())
    assert r.status_code == 400 and "The name field is not UTF-8 text" in text_of(r)
    boundary = "b0undary"
    body = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
                   for k, v in (("csrf_token", page_token(logged_in)), ("name", "navy \udcff coat"))
                   ).encode("utf-8", "surrogateescape")
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="p.jpg"\r\n\r\nnot a '
             f'photo\r\n--{boundary}--\r\n').encode()
    r = raw("/clothes/enrol", body, f"multipart/form-data; boundary={boundary}")
    assert r.status_code == 400 and "The name field is not UTF-8 text" in text_of(r)
    assert Closet(state / "closet.db").find("1").name == "blue jeans"
    for body in (b"password=%C3%28&csrf_token=y", b"password=x&csrf_token=%C3%28"):  # refused, never a 500
        r = raw("/login", body)
        assert r.status_code == 400 and "field is not UTF-8 text" in text_of(r), body
    r = logged_in.post("/clothes/1/rename", data={"name": "jeans %FF", "csrf_token": page_token(logged_in)})
    assert r.status_code == 302 and Closet(state / "closet.db").find("1").name == "jeans %FF"
    r = logged_in.post("/clothes/enrol", data={"photo": (io.BytesIO(b"not a photo"), "p.jpg"), "name": "coat \ufffd",
                                               "csrf_token": page_token(logged_in)}, content_type="multipart/form-data")
    assert r.status_code == 400 and len(errors_of(r)) == 1 and "not a readable image" in errors_of(r)[0]


def test_a_closet_without_garments_shows_an_empty_page_and_makes_no_file(logged_in, state):
    r = logged_in.get("/clothes")
    assert r.status_code == 200 and "No garments enrolled yet" in text_of(r)
    assert not (state / "closet.db").exists()


def test_enrol_from_an_uploaded_photo_runs_wardrobe_enrol(logged_in, state):
    data = (PHOTOS / "product-jeans-blue.jpg").read_bytes()
    r = logged_in.post("/clothes/enrol", data={"photo": (__import__("io").BytesIO(data), "jeans.jpg"),
                                               "name": "blue jeans", "csrf_token": page_token(logged_in)},
                       content_type="multipart/form-data")
    assert r.status_code == 302, errors_of(r)
    (g,) = Closet(state / "closet.db").garments()
    assert g.name == "blue jeans" and g.colours and len(g.embedding) > 16
    page = text_of(logged_in.get("/clothes"))
    assert re.search(r'<p class="note" role="status">Enrolled as \'blue jeans\' \(id 1; [^<]+\.\)</p>', page), page


def test_enrol_refuses_what_wardrobe_enrol_refuses_in_one_line(logged_in, state, tmp_path):
    import cv2

    def upload(data: bytes, name: str = "navy coat", **extra):
        return logged_in.post("/clothes/enrol", data={"photo": (__import__("io").BytesIO(data), "p.png"), "name": name,
                                                      "csrf_token": page_token(logged_in), **extra},
                              content_type="multipart/form-data")

    outwear = (PHOTOS / "home-outwear.jpg").read_bytes()
    r = upload(outwear, "   ")
    assert r.status_code == 400 and errors_of(r) == ["The garment needs a name: the name is empty."]
    r = upload(b"this is not a photo")
    assert r.status_code == 400 and len(errors_of(r)) == 1 and "not a readable image" in errors_of(r)[0]
    dark = cv2.imencode(".png", np.full((480, 640, 3), 3, np.uint8))[1].tobytes()
    r = upload(dark)  # the enrol command's own check: a garment clearly in view
    assert r.status_code == 400 and len(errors_of(r)) == 1 and errors_of(r)[0].startswith("Not enrolled: ")
    assert not (state / "closet.db").exists() or Closet(state / "closet.db").garments() == []
    assert upload((PHOTOS / "product-jeans-blue.jpg").read_bytes(), "Blue Jeans").status_code == 302
    r = upload(outwear, "blue jeans")  # a name belongs to one garment, as `wardrobe enrol` says
    assert r.status_code == 400 and errors_of(r) == [
        "Not enrolled: another garment is already called 'Blue Jeans' (id 1) and this does not look like it; choose "
        "another name, or tick \"Another photo of a garment already enrolled under this name\" if it is the same "
        "garment"]
    assert [g.name for g in Closet(state / "closet.db").garments()] == ["Blue Jeans"]
    assert upload(outwear, "blue jeans", add_view="on").status_code == 302  # --add-view: "it is the same garment"
    assert [g.name for g in Closet(state / "closet.db").garments()] == ["Blue Jeans", "blue jeans"]
    # Found by a hostile try of the page: a name "2" that `enrolled remove 2` takes for id 2; "another photo" of a
    # misspelt name quietly made a new garment; a damaged photo's answer named the page's temporary file.
    r = upload(outwear, "2")
    assert r.status_code == 400 and "digits alone would be taken for an id" in errors_of(r)[0]
    r = upload(outwear, "blu jeans", add_view="on")
    assert r.status_code == 400 and "no garment is called 'blu jeans' yet" in errors_of(r)[0]
    assert "--add-view" not in errors_of(r)[0] and "Another photo of a garment" in errors_of(r)[0]
    r = upload(outwear[:3000], "red coat")  # a JPEG cut short: its header is whole, its picture is not
    assert r.status_code == 400 and errors_of(r) == ["Not enrolled: not a readable image (corrupt or not a photo)"]
    assert [g.name for g in Closet(state / "closet.db").garments()] == ["Blue Jeans", "blue jeans"]


def test_one_enrolment_at_a_time(logged_in, state):
    """Each enrolment loads the model in a child process: a second one while the first runs is refused."""
    import io

    from wardrobe.web.clothes import ENROLLING

    with ENROLLING:
        r = logged_in.post("/clothes/enrol", data={"photo": (io.BytesIO((PHOTOS / "product-jeans-blue.jpg").read_bytes()),
                                                             "j.jpg"), "name": "jeans",
                                                   "csrf_token": page_token(logged_in)},
                           content_type="multipart/form-data")
    assert r.status_code == 400 and errors_of(r) == ["Another garment is being enrolled right now; try again in a "
                                                      "moment."]
    assert not (state / "closet.db").exists()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (its data is one tiny row: it is never decoded)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 4)) + chunk(b"IEND", b""))


def test_uploads_are_bounded_in_bytes_and_in_pixels(logged_in, state):
    import io

    side = int(MAX_PIXELS ** 0.5) + 100
    r = logged_in.post("/clothes/enrol", data={"photo": (io.BytesIO(png_header(side, side)), "huge.png"),
                                               "name": "huge", "csrf_token": page_token(logged_in)},
                       content_type="multipart/form-data")
    assert r.status_code == 400 and errors_of(r) == [
        f"The photo: {side} x {side} pixels is too large a photo (at most {MAX_PIXELS // 1_000_000} megapixels)."]
    big = b"\xff\xd8" + b"\0" * UPLOAD_MAX_BYTES
    r = logged_in.post("/clothes/enrol", data={"photo": (io.BytesIO(big), "big.jpg"), "name": "big",
                                               "csrf_token": page_token(logged_in)},
                       content_type="multipart/form-data")
    assert r.status_code == 413 and "larger than 16 MB" in text_of(r)
    assert len(re.findall(r"<p>(.*?)</p>", r.data.decode())) == 2  # the one line, and the way back
    assert not (state / "closet.db").exists()
    r = logged_in.post("/clothes/1/rename", data={"name": "a" * (2 << 20), "csrf_token": page_token(logged_in)})
    assert r.status_code == 413 and "That form is far larger" in text_of(r) and "photo" not in text_of(r)


def test_enrol_from_a_past_press_photo(logged_in, state):
    store = PressStore(state / "history.db")
    press = min(store.presses(), key=lambda p: p.id)  # the jeans (test_web's PHOTOS, first)
    page = logged_in.get(f"/presses/{press.id}/enrol")
    assert page.status_code == 200 and f'src="/presses/{press.id}/photo"' in page.data.decode()
    assert f'href="/presses/{press.id}/enrol"' in logged_in.get("/").data.decode()
    r = logged_in.post(f"/presses/{press.id}/enrol", data={"name": "work jeans", "csrf_token": token(page.data)})
    assert r.status_code == 302, errors_of(r)
    (g,) = Closet(state / "closet.db").garments()
    assert g.name == "work jeans"
    assert logged_in.get("/presses/9999/enrol").status_code == 404


# -- the model ---------------------------------------------------------------------------------------------


@pytest.fixture
def installed(state, tmp_path):
    """Two signed versions in the closet's model store, v2 current."""
    from tests.conftest import trust

    store = ModelStore(state / "models")
    for v in ("web-v1", "web-v2"):
        store.install(make_version(tmp_path, v), trust(), None)
    return store


def test_the_model_page_shows_the_version_its_signer_its_test_figures_and_the_installed_versions(logged_in, installed):
    (pub,) = TRUSTED.glob("*.pub")
    kid = key_id(read_public(pub))
    page = text_of(logged_in.get("/model"))
    assert "<h2>In use: web-v2</h2>" in page
    assert f"<dt>Signed</dt><dd>signed by {pub.stem} ({kid})</dd>" in page  # the trust check's own words
    named = Bundle.load(SHIPPED).test_figure()  # the figure doctor and models show, named: on the page too
    assert named.startswith("test top-1 ") and f"<strong>{named}</strong>" in page
    assert page.count(f"<td>{named}</td>") == 2  # each installed version (both made from the shipped bundle)
    metrics = json.loads((SHIPPED / "bundle.json").read_text())["metrics"]["test"]["onnx"]
    for name in ("all", "clothing-photos", "product-photos"):
        assert f'<th scope="row">{name}</th><td>{metrics[name]["n"]}</td><td>{100 * metrics[name]["top1"]:.1f}\xa0%</td>' \
               in page, name
    assert page.count('<th scope="row">web-v') == 2 and "Switched to, in order: web-v1 → web-v2." in page
    assert re.findall(r'<option value="([^"]+)"', page) == ["web-v1"]


def test_rollback_asks_for_the_password_again(logged_in, installed, app):
    page = logged_in.get("/model").data
    r = logged_in.post("/model/rollback", data={"version": "web-v1", "password": "not it", "csrf_token": token(page)})
    assert r.status_code == 403 and errors_of(r) == ["That password is not right; nothing was changed."]
    assert installed.current() == "web-v2"
    r = logged_in.post("/model/rollback", data={"version": "../../etc", "password": PASSWORD,
                                                "csrf_token": token(page)})
    assert r.status_code == 400 and installed.current() == "web-v2"
    r = logged_in.post("/model/rollback", data={"version": "web-v1", "password": PASSWORD, "csrf_token": token(page)})
    assert r.status_code == 302 and installed.current() == "web-v1"
    assert installed.history()[-1] == "web-v1"
    after = text_of(logged_in.get("/model"))
    assert "The current model is now web-v1. Note: the closet is not running" in after
    assert "<h2>In use: web-v1</h2>" in after


def test_the_correction_form_offers_the_classes_of_the_model_in_use_now(logged_in, installed, state, tmp_path):
    """A model installed (or rolled back to) while the page runs brings its own garments to the form at once; and a
    current model whose signature no longer holds is not the one in use, so its classes are not offered."""
    from tests.conftest import SIGNING_KEY, trust
    from wardrobe.bundle import write_manifest
    from wardrobe.signing import sign_bundle

    renamed = make_version(tmp_path, "web-v3")
    meta = json.loads((renamed / "bundle.json").read_text())
    meta["classes"] = [c if c != "blazer" else "tuxedo" for c in meta["classes"]]
    (renamed / "bundle.json").write_text(json.dumps(meta))
    write_manifest(renamed)
    sign_bundle(renamed, SIGNING_KEY)
    (p,) = [x for x in PressStore(state / "history.db").presses()][:1]

    def offered() -> list[str]:
        return re.findall(r'<option value="([^"]+)"', logged_in.get(f"/presses/{p.id}/wrong").data.decode())

    assert "blazer" in offered() and "tuxedo" not in offered()
    installed.install(renamed, trust(), None)  # the page was made before: it must not keep the old list
    assert "tuxedo" in offered() and "blazer" not in offered()
    page = logged_in.get(f"/presses/{p.id}/wrong").data
    r = logged_in.post(f"/presses/{p.id}/wrong", data={"garment": "tuxedo", "main": "black",
                                                       "csrf_token": token(page)})
    assert r.status_code == 302 and PressStore(state / "history.db").corrections()[0].garment == "tuxedo"
    installed.rollback("web-v2")
    assert "blazer" in offered() and "tuxedo" not in offered()
    meta["classes"][0] = "spacesuit"  # web-v3 tampered with where it lies: refused, the last good model is used
    (state / "models" / "web-v3" / "bundle.json").write_text(json.dumps(meta))
    installed.rollback("web-v3")
    assert "spacesuit" not in offered() and "blazer" in offered()


def test_the_rollback_password_is_rate_limited_like_the_login(logged_in, installed):
    """The login and the password typed again share one limit per client: five wrong tries a minute in all (the
    right password at login does not count)."""
    page = logged_in.get("/model").data
    codes = [logged_in.post("/model/rollback", data={"password": "guess", "csrf_token": token(page)}).status_code
             for _ in range(5)]
    r = logged_in.post("/model/rollback", data={"version": "web-v1", "password": PASSWORD, "csrf_token": token(page)})
    assert codes == [403] * 5 and r.status_code == 429 and errors_of(r)[0].startswith("Too many tries.")
    assert installed.current() == "web-v2"


def test_the_shipped_model_is_named_as_such_and_has_nothing_to_roll_back_to(logged_in):
    page = text_of(logged_in.get("/model"))
    version = json.loads((SHIPPED / "bundle.json").read_text())["version"]
    assert f"<h2>In use: {version}</h2>" in page and "the model that came with wardrobe" in page
    assert "There is no earlier installed version to roll back to." in page


# -- health ------------------------------------------------------------------------------------------------


def test_the_health_page_says_what_doctor_checks_and_what_it_cannot_check_from_here(logged_in, installed, state):
    from wardrobe.doctor import CHECKS

    page = text_of(logged_in.get("/health"))
    rows = re.findall(r'<li class="[^"]+"><strong>(\w+)</strong>: <span class="state">([A-Za-z ]+)</span>\. (.*?)</li>', page)
    assert [r[0] for r in rows] == [name for name, _ in CHECKS]
    states = {name: (s, found) for name, s, found in rows}
    for device in ("camera", "button", "light", "audio"):
        assert states[device] == ("not checked from the page", "the page's service cannot reach the devices, and "
                                                                "the closet has not said; run `wardrobe doctor` on "
                                                                "the closet")
    assert states["model"][0] == "OK" and "model web-v2" in states["model"][1] and "signature" in states["model"][1]
    key = next(TRUSTED.glob("*.pub"))
    assert states["updates"][0] == "OK" and states["updates"][1].startswith(f"new models must be signed by: {key.stem} (")
    assert states["voice"][0] == "not checked from the page" and "load the voice" in states["voice"][1]
    free = shutil.disk_usage(state).free / 1e9
    shown = float(re.search(r"([\d.]+) GB free of", page).group(1))
    assert abs(shown - free) < 0.5
    assert "<dt>The appliance</dt><dd>not running</dd>" in page and "journalctl -u wardrobe" in page


def test_the_health_page_shows_the_devices_and_the_last_errors_as_the_running_closet_found_them(tmp_path):
    """An audit of issue 24: the page showed the devices as "not checked" and sent the caretaker to the journal for
    the errors, which its sandbox cannot read. The real daemon (MockFactory button, no camera) now writes what it
    found and its last errors into the state folder; the page shows them."""
    from tests.test_daemon import DaemonProcess
    from wardrobe.status import status_path
    from wardrobe.web.password import set_password

    d = DaemonProcess(tmp_path, "--output", "none", camera=tmp_path / "unplugged")
    try:
        d.wait_for(r"ready in")
        deadline = time.monotonic() + 20
        while not (status_path(d.state).exists() and "camera" in status_path(d.state).read_text()):
            assert time.monotonic() < deadline, d.log
            time.sleep(0.1)
        set_password(d.state, PASSWORD)
        client = create_app(settings_for(d.state, tmp_path)).test_client()
        log_in(client)
        page = text_of(client.get("/health"))
    finally:
        assert d.stop() == 0
    states = dict(re.findall(r'<strong>(\w+)</strong>: <span class="state">([A-Za-z ]+)</span>\. as the closet found '
                             r'it at [\d-]+ [\d:]+: ', page))
    assert states == {"camera": "PROBLEM", "button": "OK", "light": "OK", "audio": "OK", "voice": "OK"}, page
    assert f"camera folder {tmp_path / 'unplugged'}" in page
    errors = re.findall(r'<li><span class="state">(\w+)</span> at [\d-]+ [\d:]+: (.*?)</li>', page)
    assert ("error", "camera: camera folder") in [(level, m[:21]) for level, m in errors], page
    after = text_of(client.get("/health"))  # the closet stopped: what it found is kept, not called OK any more
    assert "the closet is not running; when it last ran it found" in after


def test_a_status_file_the_closet_did_not_write_is_shown_as_none(logged_in, state):
    """Found by a review: times a clock cannot show (1e18) in state_dir/status.json made the page a 500; and a
    closet that is not running, whose last run logged nothing, was said to have had "No warnings or errors"."""
    from wardrobe.status import status_path

    status_path(state).write_text('{"started": 1, "parts": {"camera": {"ok": true, "found": "x", "at": 1e18}}, '
                                  '"errors": []}')
    page = text_of(logged_in.get("/health"))
    assert "has not written down its errors here yet" in page and "closet has not said" in page
    status_path(state).write_text('{"started": 1000, "parts": {"camera": {"ok": true, "found": "folder camera '
                                  'open", "at": 1000}}, "errors": []}')
    page = text_of(logged_in.get("/health"))
    assert "The closet is not running. Its last run (started at" in page and "No warnings or errors" not in page
    camera = re.search(r'<strong>camera</strong>: <span class="state">([A-Za-z ]+)</span>\. (.*?)</li>', page).groups()
    assert camera == ("not checked from the page", "the closet is not running; when it last ran it found (at "
                      f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(1000))}): folder camera open")


def test_a_tampered_model_is_a_problem_on_the_health_page(logged_in, installed, state):
    (state / "models" / "web-v2" / "taxonomy.csv").write_text("tampered\n")
    page = text_of(logged_in.get("/health"))
    (state_, found) = re.search(r'<strong>model</strong>: <span class="state">([A-Za-z ]+)</span>\. (.*?)</li>', page).groups()
    assert state_ == "PROBLEM" and "web-v2 is not used" in found


def test_the_pages_load_no_camera_voice_or_model(state, tmp_path):
    code = ("import re, sys\nfrom wardrobe import settings\nfrom wardrobe.web.app import create_app\n"
            f"app = create_app(settings.load(None, {{'': {{'state_dir': {str(state)!r}}}}}))\n"
            "c = app.test_client()\n"
            "t = re.search(rb'name=\"csrf_token\" value=\"([^\"]+)\"', c.get('/login').data).group(1).decode()\n"
            f"assert c.post('/login', data={{'password': {PASSWORD!r}, 'csrf_token': t}}).status_code == 302\n"
            "for p in ('/', '/clothes', '/model', '/health', '/settings'):\n"
            "    assert c.get(p).status_code == 200, p\n"
            + PRINT_HEAVY_MODULES)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout + r.stderr


# -- settings ----------------------------------------------------------------------------------------------


def save(client, **form):
    return client.post("/settings", data={"csrf_token": page_token(client, "/settings"), **form})


def test_the_settings_page_shows_the_current_settings_in_labelled_groups(logged_in):
    page = logged_in.get("/settings").data.decode()
    assert "<legend>Colour words</legend>" in page and "<legend>Language</legend>" in page
    assert re.findall(r'name="colour_names" value="(\w+)"', page) == list(settings_mod.COLOUR_WORDS)
    assert re.findall(r'name="language" value="(\w+)"', page) == list(settings_mod.available_languages())
    assert 'name="colour_names" value="plain" checked' in page and 'name="language" value="en" checked' in page
    assert '<label for="volume">' in page and 'value="100"' in page and 'name="aiming" checked' in page
    assert '<span lang="ko">한국어</span>' in page


def test_the_settings_page_says_when_the_saved_settings_are_not_in_use(logged_in, state):
    """A hostile try found a damaged settings file shown as the defaults, with nothing said on the page."""
    assert "not in use" not in text_of(logged_in.get("/settings"))
    for text, why in (('[speech]\nvolume = "loud"\n', "speech.volume must be"), ("[speech\n", "not valid TOML")):
        (state / "settings.toml").write_text(text)
        page = text_of(logged_in.get("/settings"))
        assert "The settings saved here before are not in use" in page and why in page, page
        assert str(state) not in page  # the file is named, not the closet's folders
    assert save(logged_in, colour_names="basic", volume="40", language="en").status_code == 302
    assert "not in use" not in text_of(logged_in.get("/settings"))


def test_saved_settings_go_to_the_overlay_which_is_read_after_the_config_and_before_the_flags(logged_in, state,
                                                                                                tmp_path):
    r = save(logged_in, colour_names="descriptive", volume="40", language="ko")  # aiming unticked
    assert r.status_code == 302
    assert "Saved. Note: the closet is not running" in text_of(logged_in.get("/settings"))
    config = tmp_path / "config.toml"  # settings_for's: state_dir only; add a colour word and a language
    config.write_text(f'state_dir = "{state}"\n[vision]\ncolour_names = "basic"\n[speech]\nlanguage = "en"\n')
    s = settings_mod.load(config)
    assert (s.vision.colour_names, s.speech.volume, s.vision.aiming, s.speech.language) == ("descriptive", 0.4, False,
                                                                                            "ko")
    assert settings_mod.load(config, {"speech": {"language": "en"}}).speech.language == "en"  # a flag wins
    page = logged_in.get("/settings").data.decode()
    assert 'value="descriptive" checked' in page and 'value="ko" checked' in page and 'value="40"' in page
    assert [p.name for p in state.iterdir() if p.name.startswith(".settings")] == []  # no temporary file left


@pytest.mark.parametrize("form, line", [
    ({"volume": "150"}, "Not saved: the volume must be from 0 to 100."),
    ({"volume": "loud"}, "Not saved: the volume must be a number from 0 to 100."),
    ({"volume": ""}, "Not saved: the volume must be a number from 0 to 100."),
    ({"volume": "inf"}, "Not saved: the volume must be a number from 0 to 100."),
    ({"volume": "1e400"}, "Not saved: the volume must be a number from 0 to 100."),
    ({"language": "fr"}, "Not saved: speech.language must be one of en, ko."),
    ({"colour_names": "rainbow"}, "Not saved: vision.colour_names must be one of basic, plain, descriptive."),
])
def test_a_bad_setting_is_one_line_and_nothing_is_written(logged_in, state, form, line):
    good = {"colour_names": "plain", "volume": "70", "language": "en", "aiming": "on"}
    assert save(logged_in, **good).status_code == 302
    before = (state / "settings.toml").read_bytes()
    r = save(logged_in, **{**good, **form})
    assert r.status_code == 400 and errors_of(r) == [line]
    assert (state / "settings.toml").read_bytes() == before


def test_the_overlay_is_written_by_rename_and_a_failed_write_leaves_the_old_one(logged_in, state, monkeypatch):
    assert save(logged_in, colour_names="basic", volume="50", language="en").status_code == 302
    overlay = state / "settings.toml"
    before, inode = overlay.read_bytes(), overlay.stat().st_ino
    assert save(logged_in, colour_names="plain", volume="60", language="ko").status_code == 302
    assert overlay.stat().st_ino != inode  # a new file renamed over the old one, never rewritten in place
    before = overlay.read_bytes()

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    r = save(logged_in, colour_names="descriptive", volume="10", language="en")
    assert r.status_code == 400 and len(errors_of(r)) == 1 and "No space left on device" in errors_of(r)[0]
    assert overlay.read_bytes() == before and [p.name for p in state.iterdir() if p.name.startswith(".settings")] == []


def test_the_overlay_may_set_only_the_pages_settings(state, tmp_path):
    # Such a file is not used at all, and said so in the journal; the closet still starts on its config file.
    (state / "settings.toml").write_text("[model]\nallow_unsigned = true\n")
    with pytest.raises(ConfigError, match=r"settings.toml may hold only \[vision\], \[speech\], not model"):
        settings_mod.read_overlay(state)
    assert settings_mod.load(settings_for_path(state, tmp_path)).model.allow_unsigned is False
    (state / "settings.toml").write_text('[speech]\nlanguage = "ko"\nmodel = "/tmp/evil.onnx"\n')
    with pytest.raises(ConfigError, match="may not set speech.model"):
        settings_mod.read_overlay(state)
    loaded = settings_mod.load(settings_for_path(state, tmp_path))
    assert loaded.speech.model is None and loaded.speech.language == "en"
    (state / "settings.toml").write_text('[speech]\nlanguage = "en"\n "en"\n')  # two saves that raced, once
    assert settings_mod.load(settings_for_path(state, tmp_path)).speech.language == "en"
    with pytest.raises(ConfigError, match="cannot be set from the caretaker's page"):
        settings_mod.write_overlay(settings_mod.load(None, {"": {"state_dir": str(tmp_path / "other")}}),
                                   {"camera": {"source": "/"}})


def settings_for_path(state, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "{state}"\n')
    return config


def test_a_stale_pid_file_names_no_daemon_and_nothing_is_signalled(tmp_path):
    """A process id reused after a crash: the mark's start time differs, so nothing is sent to that process."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        running.pid_path(tmp_path).write_text(f"{child.pid} 1\n")
        assert running.running(tmp_path) is None
        assert running.request_reload(tmp_path).startswith("the closet is not running")
        assert child.poll() is None  # SIGHUP would have ended it
        running.pid_path(tmp_path).write_text(f"{child.pid} {running.start_time(child.pid)}\n")
        assert running.running(tmp_path) == child.pid and running.request_reload(tmp_path) is None
        assert child.wait(timeout=10) == -1
    finally:
        child.kill()
        child.wait()


def test_saving_korean_on_the_page_makes_the_running_daemon_speak_korean(tmp_path):
    """The real daemon (MockFactory button, folder camera): the page writes the overlay and signals the daemon
    through its pid file; the daemon reloads without a restart and its next description is Korean."""
    from tests.test_daemon import DaemonProcess
    from wardrobe.web.password import set_password

    d = DaemonProcess(tmp_path, "--output", "none")
    try:
        d.wait_for(r"ready in")
        assert running.running(d.state) == d.proc.pid
        set_password(d.state, PASSWORD)
        client = create_app(settings_for(d.state, tmp_path)).test_client()
        log_in(client)
        r = save(client, colour_names="plain", volume="80", language="ko", aiming="on")
        assert r.status_code == 302
        assert "The closet uses them from its next press." in text_of(client.get("/settings"))
        d.wait_for(r"reloaded: .*language ko")
        d.send("press")
        said = d.wait_for(r"described:")[0]
        sentence = json.loads(re.search(r'sentence=(".*?") garment=', said).group(1))
        assert re.search(r"[\uac00-\ud7a3]", sentence) and not re.search(r"[A-Za-z]", sentence), sentence
    finally:
        assert d.stop() == 0
    assert not running.pid_path(d.state).exists()  # the daemon took its mark away when it stopped


def test_enrolling_from_the_page_works_inside_the_web_units_sandbox(state):
    """The page's `wardrobe enrol` child inherits the web unit's sandbox (MemoryDenyWriteExecute, internet sockets
    only, a private /proc with ProcSubset=pid): ONNX Runtime and OpenCV must still enrol under it."""
    from tests.test_deploy import WEB_UNIT

    code = ("import io, re\nfrom wardrobe import settings\nfrom wardrobe.web.app import create_app\n"
            f"c = create_app(settings.load(None, {{'': {{'state_dir': {str(state)!r}}}}})).test_client()\n"
            "t = lambda p: re.search(rb'name=\"csrf_token\" value=\"([^\"]+)\"', c.get(p).data).group(1).decode()\n"
            f"assert c.post('/login', data={{'password': {PASSWORD!r}, 'csrf_token': t('/login')}}).status_code == 302\n"
            f"photo = open({str(PHOTOS / 'product-jeans-blue.jpg')!r}, 'rb').read()\n"
            "r = c.post('/clothes/enrol', data={'photo': (io.BytesIO(photo), 'j.jpg'), 'name': 'sandboxed jeans', "
            "'csrf_token': t('/clothes')}, content_type='multipart/form-data')\n"
            "print(r.status_code, re.findall(r'role=\"(?:alert|status)\"[^>]*>([^<]*)<', c.get('/clothes').data.decode()"
            " if r.status_code == 302 else r.data.decode()))\n")
    r = subprocess.run([sys.executable, "-m", "tests.sandboxed", str(WEB_UNIT), "--", sys.executable, "-c", code],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0 and r.stdout.startswith("302 "), r.stdout + r.stderr[-3000:]
    assert [g.name for g in Closet(state / "closet.db").garments()] == ["sandboxed jeans"]


def test_the_new_pages_carry_the_security_headers_and_no_inline_script_or_style(logged_in, closet, installed):
    for path in ("/clothes", "/clothes/1/thumbnail", "/clothes/2/voice", "/presses/1/enrol", "/model", "/health",
                 "/settings"):
        r = logged_in.get(path)
        assert r.status_code == 200, path
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp, path
        assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Cache-Control"] == "no-store", path
        if r.mimetype == "text/html":
            body = r.data.lower()
            assert b"<script" not in body and b" style=" not in body and b"<style" not in body, path
            ids = re.findall(rb'<(?:input|select) id="([^"]+)"', body)
            assert all(b'for="' + i + b'"' in body for i in ids), path  # every field with an id has its label


def test_saves_at_the_same_moment_leave_a_whole_settings_file(state, tmp_path):
    """Four threads saving different values at once once left invalid TOML, which stopped the daemon starting."""
    import threading

    settings = settings_mod.load(settings_for_path(state, tmp_path))

    def save(words: str) -> None:
        for _ in range(25):
            settings_mod.write_overlay(settings, {"vision": {"colour_names": words}})

    threads = [threading.Thread(target=save, args=(w,)) for w in ("basic", "plain", "descriptive", "plain")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert settings_mod.read_overlay(state)["vision"]["colour_names"] in ("basic", "plain", "descriptive")
    assert [p.name for p in state.iterdir() if p.name.endswith(".tmp")] == []
