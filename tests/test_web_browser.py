"""The caretaker's page in a real browser: Debian's chromium driven by Playwright, against the real server
(`wardrobe web`, waitress) on 127.0.0.1, its password set by `wardrobe web password`, real presses in the history.

Logging in, the keyboard alone, no JavaScript, 320 px phones, axe-core on every page the navigation reaches, and
the screenshots in docs/screenshots (written there when WARDROBE_SCREENSHOTS names the folder, else to a temporary
one, so an ordinary run leaves the work tree as it was)."""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, rgb_of
from tests.test_web import PASSWORD, described, serving  # noqa: F401  (described is a fixture used here)
from wardrobe.history import PressStore, encode_photo

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
AXE = ROOT / "tests" / "web-tools" / "node_modules" / "axe-core" / "axe.min.js"
SIZES = {"phone": (320, 640), "desktop": (1280, 800)}
SCREENSHOT_MAX_BYTES = 150 << 10
BAD_IMPACTS = ("serious", "critical")
AXE_RULES = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa",
                                                   "best-practice", "wcag2aaa"]},
             "resultTypes": ["violations"]}
"""axe-core's WCAG 2.2 A and AA rules and best practices (its default set, plus target sizes), and its AAA rules:
the enhanced contrast matters to a user or caretaker who sees poorly."""


@pytest.fixture(scope="module")
def korean():
    """The shipped model's real answer to a sample photo, said in Korean: (rgb, result JSON, model version)."""
    from wardrobe import settings as settings_mod
    from wardrobe import wiring

    settings = settings_mod.load(None, {"": {"state_dir": "/nonexistent-state"}, "speech": {"language": "ko"}})
    pipeline = wiring.build_pipeline(settings, closet=False)
    rgb = rgb_of("product-jeans-blue.jpg")
    return rgb, pipeline.describe(rgb, "product-jeans-blue.jpg").to_json(), pipeline.model_version


def fill_state(state: Path, described, korean=None) -> Path:  # noqa: F811
    """A closet's state folder: the shipped model's real answers to three sample photos in its history (and one
    said in Korean), and the caretaker's password set as the README says (`wardrobe web password`)."""
    answers, version = described
    store = PressStore(state / "history.db")
    for _name, rgb, result in answers:
        store.add(encode_photo(rgb), result, version, 20, 50 << 20)
    if korean is not None:
        rgb, result, version = korean
        store.add(encode_photo(rgb), result, version, 20, 50 << 20)
    store.close()
    r = subprocess.run([sys.executable, "-m", "wardrobe", "web", "password", "--state-dir", str(state)],
                       input=PASSWORD + "\n", capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    return state


@pytest.fixture
def server(tmp_path, described, korean):  # noqa: F811
    """`wardrobe web` serving a closet with four real presses (one said in Korean), its password set through the
    command line. One per test: the login limit (five tries a minute from one address) counts every test's logins
    from 127.0.0.1."""
    state = fill_state(tmp_path / "state", described, korean)
    with serving(state, tmp_path) as base:
        yield base, state


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium (Playwright never downloads one here: it cannot)."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), "apt-get install chromium (.ci/run does)"
    assert AXE.is_file(), "npm ci --prefix tests/web-tools (.ci/run does)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield b
        b.close()


def new_page(browser, size="desktop", javascript=True):
    """A fresh context (no cookies) and page at a named size. axe-core is added as an init script: Playwright
    hands it to the browser over its debugging protocol, which the page's CSP (no scripts at all) does not
    govern, so the CSP needs no bypass."""
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height}, java_script_enabled=javascript)
    context.set_default_timeout(20_000)
    if javascript:
        context.add_init_script(path=str(AXE))
    return context.new_page()


def log_in(page, base, password=PASSWORD):
    page.goto(f"{base}/")
    assert urllib.parse.urlsplit(page.url).path == "/login"
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("load")


def press_count(state) -> int:
    s = PressStore(state / "history.db", create=False)
    try:
        return len(s.presses())
    finally:
        s.close()


def latest_correction(state, press_id):
    s = PressStore(state / "history.db", create=False)
    try:
        return [c for c in s.corrections() if c.press_id == press_id][-1]
    finally:
        s.close()


# -- logging in --------------------------------------------------------------------------------------------


def test_logging_in_through_the_form_opens_the_recent_presses(server, browser):
    base, state = server
    page = new_page(browser)
    log_in(page, base, "not the password")
    assert page.get_by_role("alert").inner_text() == "That password is not right."
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Recent presses"
    cookie = {c["name"]: c for c in page.context.cookies()}["wardrobe_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert len(page.locator("ol.presses > li").all()) == press_count(state)
    page.context.close()


def test_a_korean_answer_is_marked_korean_and_drawn_in_hangul(server, browser, korean):
    """A closet speaking Korean keeps Korean sentences: marked lang="ko" (a screen reader switches voice) and
    drawn with a CJK font (fonts-noto-cjk), not as empty boxes."""
    base, _ = server
    page = new_page(browser)
    log_in(page, base)
    said = page.locator("h2[lang=ko]")
    assert said.count() == 1 and said.inner_text() == f"“{korean[1]['sentence']}”"
    assert re.search("[\uac00-\ud7a3]", said.inner_text())
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "h2[lang=ko]"})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    assert any("CJK" in f["familyName"] and f["glyphCount"] > 0 for f in fonts), fonts
    assert page.locator("h2:not([lang])").count() == press_count(server[1]) - 1
    page.context.close()


# -- the keyboard alone ------------------------------------------------------------------------------------


def focused(page) -> dict:
    """What has the keyboard's focus, and whether it can be seen (an outline, or a box inside the viewport)."""
    return page.evaluate("""() => {
        const e = document.activeElement, s = getComputedStyle(e), r = e.getBoundingClientRect();
        return {tag: e.tagName.toLowerCase(), text: (e.innerText || e.value || '').trim(), id: e.id,
                name: e.getAttribute('name'), type: e.getAttribute('type'),
                press: (e.closest('li.press') || {}).id || null,
                outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2,
                onscreen: r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= -1 && r.right <= innerWidth};
    }""")


def tab_to(page, want, limit=40) -> dict:
    """Press Tab until `want(focused)` holds; every stop on the way must show where the focus is."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        f = focused(page)
        if f["tag"] != "body":
            assert f["outline"], f"no visible focus outline on {f}"
        if want(f):
            return f
    pytest.fail(f"Tab never reached the control wanted (last: {f})")


def test_the_skip_link_comes_first_and_shows_when_focused(server, browser):
    base, _ = server
    page = new_page(browser, "phone")
    log_in(page, base)
    page.wait_for_url(f"{base}/")
    page.keyboard.press("Tab")
    f = focused(page)
    assert f["text"] == "Skip to the content" and f["onscreen"], f
    page.keyboard.press("Enter")
    assert urllib.parse.urlsplit(page.url).fragment == "main"
    page.context.close()


def test_the_keyboard_alone_marks_a_press_right_and_corrects_another(server, browser):
    base, state = server
    page = new_page(browser, "phone")
    page.goto(f"{base}/")
    if focused(page)["id"] != "password":  # autofocus, where the browser honours it; Tab gets there anyway
        tab_to(page, lambda f: f["id"] == "password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/")
    ids = [int(x.split("-")[1]) for x in page.locator("ol.presses > li").evaluate_all("ls => ls.map(l => l.id)")]
    first, second = ids[0], ids[1]

    tab_to(page, lambda f: f["press"] == f"press-{first}" and f["text"] == "Right")
    page.keyboard.press("Space")  # a button acts on Space as on Enter
    page.wait_for_url(f"{base}/#press-{first}")
    confirmed = latest_correction(state, first)
    assert confirmed.verdict == "right"
    checked = page.locator(f"#press-{first} dt:text-is('Checked') + dd")  # with the colours it confirms
    assert checked.inner_text() == "right" + (": " + " and ".join(confirmed.families) if confirmed.families else "")

    tab_to(page, lambda f: f["press"] == f"press-{second}" and f["text"] == "Wrong…")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/presses/{second}/wrong")
    tab_to(page, lambda f: f["id"] == "garment")
    page.keyboard.type("shirt")  # a closed select's type-ahead picks the first option spelled so
    assert page.locator("#garment").input_value() == "shirt"
    tab_to(page, lambda f: f["name"] == "main")  # a radio group: one stop, the arrows choose
    for _ in range(20):
        if page.evaluate("(document.querySelector('input[name=main]:checked') || {}).value") == "blue":
            break
        page.keyboard.press("ArrowDown")
    tab_to(page, lambda f: f["name"] == "family" and page.evaluate("document.activeElement.value") == "white")
    page.keyboard.press("Space")
    tab_to(page, lambda f: f["name"] == "pattern")  # a radio group is one stop; arrows move within it
    for _ in range(10):
        if page.evaluate("document.querySelector('input[name=pattern]:checked').value") == "striped":
            break
        page.keyboard.press("ArrowDown")
    tab_to(page, lambda f: f["text"] == "Save the correction")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/#press-{second}")
    c = latest_correction(state, second)
    assert (c.verdict, c.garment, c.families, c.pattern) == ("wrong", "shirt", ["blue", "white"], "striped")
    assert page.locator(f"#press-{second} dt:text-is('Checked') + dd").inner_text() == (
        "wrong: shirt, blue and white, striped")
    page.context.close()


# -- without JavaScript ------------------------------------------------------------------------------------


def test_everything_works_with_javascript_disabled(server, browser):
    base, state = server
    page = new_page(browser, "phone", javascript=False)
    log_in(page, base)
    assert page.get_by_role("heading", level=1).inner_text() == "Recent presses"
    last = int(page.locator("ol.presses > li").last.get_attribute("id").split("-")[1])
    page.locator(f"#press-{last}").get_by_role("button", name="Right").click()
    page.wait_for_url(f"{base}/#press-{last}")
    assert latest_correction(state, last).verdict == "right"
    page.locator(f"#press-{last}").get_by_role("link", name="Wrong…").click()
    page.get_by_label("The garment").select_option("coat or jacket")
    page.get_by_role("radio", name="black").check()
    page.get_by_role("checkbox", name="gray").check()
    page.get_by_label("checked", exact=True).check()
    page.get_by_role("button", name="Save the correction").click()
    page.wait_for_url(f"{base}/#press-{last}")
    c = latest_correction(state, last)
    assert (c.verdict, c.garment, c.families, c.pattern) == ("wrong", "coat or jacket", ["black", "gray"], "checked")
    page.get_by_role("button", name="Log out").click()
    assert urllib.parse.urlsplit(page.url).path == "/login"
    page.context.close()


# -- every page: 320 px, axe-core, screenshots --------------------------------------------------------------


def same_site_links(page, base, selector) -> list[str]:
    hrefs = page.locator(selector).evaluate_all("as => as.map(a => a.href)")
    out = []
    for href in hrefs:
        url = urllib.parse.urldefrag(href)[0]
        if url.startswith(base + "/") and url not in out:
            out.append(url)
    return out


def kind_of(path: str) -> str:
    """One name per kind of page (/presses/7/wrong and /presses/8/wrong are one kind)."""
    kind = "-".join(p for p in re.sub(r"\d+", "", path).split("/") if p)
    return kind or "presses"


def discover(page, base) -> dict[str, str]:
    """Every kind of page the navigation reaches: each nav link, then the pages those link to (one of each kind),
    so pages added to the navigation later are checked without changing this test."""
    page.goto(f"{base}/")
    found: dict[str, str] = {}
    queue = [(u, 0) for u in same_site_links(page, base, "nav a[href]")]
    assert queue, "the navigation has no links"
    while queue:
        url, depth = queue.pop(0)
        path = urllib.parse.urlsplit(url).path
        if kind_of(path) in found:
            continue
        response = page.goto(url)
        if not response.ok or not response.headers.get("content-type", "").startswith("text/html"):
            continue
        found[kind_of(path)] = url
        if depth < 1:
            queue += [(u, depth + 1) for u in same_site_links(page, base, "main a[href]")]
    return found


def axe_problems(page) -> list[str]:
    """axe-core's serious and critical violations on the page as shown, one line per rule."""
    violations = page.evaluate("async rules => (await axe.run(document, rules)).violations", AXE_RULES)
    return [f"{v['impact']} {v['id']}: {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
            for v in violations if v["impact"] in BAD_IMPACTS]


def overflow(page) -> int:
    return page.evaluate("document.scrollingElement.scrollWidth")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


def save_screenshot(page, path: Path) -> None:
    """The viewport as a 256-colour PNG: the photos on the page make a full-colour one two to three times larger,
    and the docs need to show the layout, not every shade."""
    from PIL import Image

    image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    image.quantize(colors=256, dither=Image.Dither.NONE).save(path, optimize=True)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = os.environ.get("WARDROBE_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("size", SIZES)
def test_every_page_passes_axe_fits_the_width_and_is_photographed(server, browser, screenshots, size):
    """Logged out (the login form, and its error), then every page the navigation reaches and a form showing
    its error: no serious or critical axe-core violation, no sideways scrolling, and a small screenshot each."""
    base, _ = server
    width, height = SIZES[size]
    page = new_page(browser, size)
    seen: dict[str, list[str]] = {}
    wide: dict[str, int] = {}
    big: dict[str, int] = {}

    def check(name):
        page.wait_for_load_state("load")
        seen[name] = axe_problems(page)
        if overflow(page) > width:
            wide[name] = overflow(page)
        shot = screenshots / f"{name}-{size}.png"
        save_screenshot(page, shot)
        assert png_size(shot) == (width, height), shot
        if shot.stat().st_size >= SCREENSHOT_MAX_BYTES:
            big[name] = shot.stat().st_size

    page.goto(f"{base}/login")
    check("login")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    check("login-error")
    log_in(page, base)
    pages = discover(page, base)
    assert {"presses", "presses-wrong"} <= set(pages), pages
    for name, url in pages.items():
        page.goto(url)
        check(name)
    page.goto(pages["presses-wrong"])
    page.locator("#garment").select_option("shirt")
    page.get_by_role("button", name="Save the correction").click()  # no colour chosen: the form says so
    alert = page.get_by_role("alert")
    assert alert.inner_text() == "Choose the main colour." and page.title().startswith("Error: ")
    box = alert.bounding_box()
    assert box["y"] + box["height"] <= height, "the form's error is below the first screen"
    check("presses-wrong-error")
    page.goto(f"{base}/no-such-page")
    check("error")
    page.context.close()
    assert {k: v for k, v in seen.items() if v} == {}
    assert wide == {}, f"wider than {width} px (document.scrollingElement.scrollWidth)"
    assert big == {}, f"screenshots of {SCREENSHOT_MAX_BYTES} bytes or more"


# -- the whole loop, with the real daemon ------------------------------------------------------------------


def test_a_press_is_corrected_enrolled_renamed_and_the_model_rolled_back_in_the_browser(tmp_path, browser):
    """The issue's walk through: the real daemon (MockFactory pins, folder camera) makes a press; in Chromium the
    caretaker logs in, sees it, marks it wrong and corrects it, enrols a garment from it, renames it, and rolls
    the model back, and the daemon reloads onto the older model."""
    from tests.test_daemon import DaemonProcess, one_photo_camera
    from tests.test_models_store import make_version
    from wardrobe.closet import Closet

    state = tmp_path / "state"
    for version in ("older-1", "newer-2"):
        r = subprocess.run([sys.executable, "-m", "wardrobe", "install-model", str(make_version(tmp_path, version)),
                            "--state-dir", str(state)], capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert r.returncode == 0, r.stderr
    d = DaemonProcess(tmp_path, "--output", "none", state=state,
                      camera=one_photo_camera(tmp_path, "product-jeans-blue.jpg"))
    try:
        d.wait_for(r"ready in .*model newer-2")
        d.send("press")
        d.wait_for(r"history: press 1 saved")
        r = subprocess.run([sys.executable, "-m", "wardrobe", "web", "password", "--state-dir", str(state)],
                           input=PASSWORD + "\n", capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert r.returncode == 0, r.stderr
        with serving(state, tmp_path) as base:
            page = new_page(browser)
            log_in(page, base)
            assert "Navy blue trousers." in page.locator("ol.presses").inner_text()
            page.get_by_role("link", name="Wrong…").first.click()
            page.get_by_label("The garment").select_option("skirt")
            page.get_by_role("radio", name="blue", exact=True).check()
            page.get_by_role("button", name="Save the correction").click()
            assert latest_correction(state, 1).garment == "skirt"

            page.get_by_role("link", name="Enrol…").first.click()
            page.get_by_label("What to call it").fill("blue jeans")
            page.get_by_role("button", name="Enrol").click()
            page.wait_for_load_state("load")
            assert "blue jeans" in page.get_by_role("heading", level=2).all_inner_texts()

            page.get_by_label("New name").first.fill("Sunday jeans")
            page.get_by_role("button", name="Rename").first.click()
            page.wait_for_load_state("load")
            closet = Closet(state / "closet.db")
            assert [g.name for g in closet.garments()] == ["Sunday jeans"]
            closet.close()

            page.get_by_role("link", name="Model").first.click()
            page.get_by_label("Go back to").select_option("older-1")
            page.get_by_label("Your password again").fill(PASSWORD)
            page.get_by_role("button", name="Roll back").click()
            page.wait_for_load_state("load")
            assert os.readlink(state / "models" / "current") == "older-1"
            d.wait_for(r"reloaded: model older-1")
            page.context.close()
    finally:
        assert d.stop() == 0
