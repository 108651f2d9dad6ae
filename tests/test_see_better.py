"""Seeing better: white balance, the capture light and aiming help, on the real sample photos."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from tests.conftest import PHOTOS, SHIPPED, rgb_of
from tests.test_cli import wardrobe
from wardrobe.images import rgb_to_lab, shrink
from wardrobe.whitebalance import WhiteBalance, WhiteCard, apply_gains, cast_strength, find_white_card, gains_for

WARM = np.array([1.0, 0.746, 0.436])
"""A 2700 K bulb's cast in linear light (as docs/see-better.md simulates it)."""


def warm(rgb: np.ndarray) -> np.ndarray:
    return apply_gains(rgb, WARM)


def with_card(rgb: np.ndarray) -> np.ndarray:
    out = rgb.copy()
    side = int(0.12 * min(rgb.shape[:2]))
    out[8:8 + side, 8:8 + side] = 237  # a white card (reflectance 0.85) in the corner of the closet's view
    return out


def delta_e(a: np.ndarray, b: np.ndarray) -> float:
    """Mean CIE76 colour difference (CIELAB) between two photos."""
    return float(np.linalg.norm(rgb_to_lab(a).astype(np.float64) - rgb_to_lab(b), axis=-1).mean())


@pytest.mark.parametrize("name", ["home-outwear.jpg", "home-dress.jpg", "home-shirt.jpg"])
def test_a_warm_cast_is_corrected_back_by_the_white_card(name):
    original = with_card(shrink(rgb_of(name), 640))
    cast = warm(original)
    card = find_white_card(cast)  # found under the warm light, as `calibrate --white` would
    corrected, how = WhiteBalance("card", card).correct(cast)
    assert how == "card"
    assert delta_e(cast, original) > 10  # the cast is strong
    assert delta_e(corrected, original) < 1.5  # and gone


def test_the_white_card_reads_the_light_of_each_photo():
    """Calibrated once, the card corrects whatever light the next capture has."""
    original = with_card(shrink(rgb_of("home-outwear.jpg"), 640))
    card = find_white_card(original)
    cool = apply_gains(original, np.array([0.72, 0.86, 1.0]))
    corrected, _ = WhiteBalance("card", card).correct(cool)
    assert delta_e(corrected, original) < 1.5 < 5 < delta_e(cool, original)


def card_box(rgb: np.ndarray) -> tuple[slice, slice]:
    side = int(0.12 * min(rgb.shape[:2]))
    return slice(8, 8 + side), slice(8, 8 + side)


def cover(rgb: np.ndarray, how: str) -> np.ndarray:
    """The card's corner after the card is covered by a pink dress, in a shadow, or fallen (the wall behind it)."""
    out = rgb.copy()
    box = card_box(rgb)
    if how == "pink dress":
        out[box] = rgb_of("product-tops-pink.jpg")[20:20 + out[box].shape[0], 10:10 + out[box].shape[1]]
        out[box] = (0.5 * out[box] + 0.5 * np.array([235, 150, 185])).astype(np.uint8)  # the dress's pink cloth
    elif how == "shadow":
        out[box] = (out[box] * 0.35).astype(np.uint8)
    elif how == "half shadow":
        rows, cols = box
        out[rows, cols.start:(cols.start + cols.stop) // 2] = (out[rows, cols.start:(cols.start + cols.stop) // 2]
                                                              * 0.5).astype(np.uint8)
    else:  # fallen: what was behind it, the photo's own texture from elsewhere
        h, w = out[box].shape[:2]
        out[box] = rgb[-h - 8:-8, -w - 8:-8]
    return out


@pytest.mark.parametrize("how", ["pink dress", "shadow", "half shadow", "fallen"])
def test_a_covered_or_fallen_card_is_not_used(how):
    """A calibrated card that no longer shows white under the light is not trusted: it once turned a pink dress
    green. The photo is left as it is and the reason is reported."""
    original = warm(with_card(shrink(rgb_of("home-dress.jpg"), 640)))
    card = find_white_card(original)
    assert WhiteBalance("card", card).correct(original)[1] == "card"
    covered = cover(original, how)
    for mode in ("card", "auto"):
        out, why = WhiteBalance(mode, card).correct(covered)
        assert why == "card unusable" and out is covered, (mode, card.problem(covered))


def test_the_card_is_never_part_of_the_garment(tmp_path):
    """A white card seen white stands out from a dark closet as a garment does: the mask found it (97 % of its
    corner on a navy top), and its white was weighed with the garment's colours. The mask describe uses, and the
    helper's mask picture shows, leave it out; a card that cannot be used (covered by the garment) is left alone."""
    import cv2

    rgb = with_card(shrink(rgb_of("home-longsleeve.jpg"), 640))
    photo = tmp_path / "closet.png"
    cv2.imwrite(str(photo), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    r = wardrobe("calibrate", "--white", str(photo), "--state-dir", str(tmp_path / "state"))
    assert r.returncode == 0, r.stderr
    r = wardrobe("describe", "--json", "--quiet", "--state-dir", str(tmp_path / "state"), "--debug-dir",
                 str(tmp_path / "debug"), str(photo))
    assert r.returncode == 0 and json.loads(r.stdout)["white_balance"] == "card", r.stderr
    mask = cv2.cvtColor(cv2.imread(str(tmp_path / "debug" / "closet-mask.png")), cv2.COLOR_BGR2RGB).astype(int)
    rows, cols = card_box(rgb)
    magenta = (mask[..., 0] - mask[..., 1] > 100) & (mask[..., 2] - mask[..., 1] > 100)
    assert magenta[rows, cols].mean() > 0.99 and 0.05 < magenta.mean() < 0.95
    card = WhiteCard.load(tmp_path / "state" / "white-card.json")
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    assert (card.hide(alpha)[rows, cols] == 0).all() and card.hide(alpha).mean() > 0.95 * 255


def test_no_white_card_is_one_line(tmp_path):
    r = wardrobe("calibrate", "--white", str(PHOTOS / "home-pants.jpg"), "--state-dir", str(tmp_path))
    # a photo that cannot be used exits 1, as one that cannot be read (2 is for bad configuration)
    assert r.returncode == 1 and "no white card found" in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_calibrate_white_then_describe_uses_the_card(tmp_path):
    import cv2

    photo = tmp_path / "closet.png"
    cv2.imwrite(str(photo), cv2.cvtColor(warm(with_card(shrink(rgb_of("home-outwear.jpg"), 640))), cv2.COLOR_RGB2BGR))
    r = wardrobe("calibrate", "--white", str(photo), "--state-dir", str(tmp_path))
    assert r.returncode == 0 and "white card found" in r.stdout, r.stderr
    assert WhiteCard.load(tmp_path / "white-card.json") is not None
    r = wardrobe("describe", "--json", "--quiet", "--state-dir", str(tmp_path), str(photo))
    d = json.loads(r.stdout)
    assert d["white_balance"] == "card" and d["colours"][0]["family"] == "red", d


def test_auto_leaves_a_photo_without_a_strong_cast_alone():
    rgb = shrink(rgb_of("product-shirts-white.jpg"), 640)
    out, how = WhiteBalance("auto").correct(rgb)
    assert how == "no card" and out is rgb
    out, how = WhiteBalance("estimate").correct(rgb)
    assert how == "none needed" and out is rgb


def test_gains_and_cast_strength():
    assert cast_strength(gains_for(np.array([0.5, 0.5, 0.5]))) == pytest.approx(0)
    assert cast_strength(gains_for(WARM)) > 0.5


def test_the_capture_light_is_on_only_while_the_photo_is_taken(tmp_path):
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from wardrobe.camera import FolderCamera
    from wardrobe.light import CaptureLight

    factory = MockFactory(pin_class=MockPWMPin)
    shutil.copy(PHOTOS / "home-pants.jpg", tmp_path / "a.jpg")
    camera = FolderCamera(tmp_path)
    light = CaptureLight(27, brightness=0.8, settle_s=0.0, pin_factory=factory)
    pin = factory.pin(27)
    seen = []
    real = camera.capture
    camera.capture = lambda: (seen.append(pin.state), real())[1]
    assert pin.state == 0
    rgb = light.capture(camera)
    assert rgb.shape[2] == 3 and seen == [pytest.approx(0.8)] and pin.state == 0
    (tmp_path / "a.jpg").write_bytes(b"broken")  # a failing capture still switches the light off
    from wardrobe.errors import ImageError

    with pytest.raises(ImageError):
        light.capture(camera)
    assert pin.state == 0


def test_the_daemon_uses_the_configured_capture_light(tmp_path):
    """In-process daemon with gpiozero's MockFactory: the LED pin is lit during the press's capture only."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from wardrobe.daemon import Daemon

    os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
    (tmp_path / "camera").mkdir()
    shutil.copy(PHOTOS / "home-pants.jpg", tmp_path / "camera" / "a.jpg")
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n[camera]\nkind = "folder"\nsource = "{tmp_path / "camera"}"\n'
                      'light_pin = 22\nlight_settle_s = 0.0\n[speech]\noutput = "none"\n')
    factory = MockFactory(pin_class=MockPWMPin)
    daemon = Daemon(config, {}, pin_factory=factory)
    daemon.start()
    pin = factory.pin(22)
    seen = []
    real = daemon.camera.capture
    daemon.camera.capture = lambda: (seen.append(pin.state), real())[1]
    daemon.describe()
    daemon.shutdown()
    assert seen == [1] and pin.state == 0
    assert daemon.last.garment == "trousers"


@pytest.fixture(scope="module")
def pipeline():
    from tests.conftest import SHIPPED
    from wardrobe.classify import Classifier
    from wardrobe.pipeline import Pipeline

    return Pipeline(Classifier.load(SHIPPED))  # aiming help on, as a closet has it


def on_plain_wall(name: str, scale: float, where: float, canvas=(480, 640)) -> np.ndarray:
    """A real garment (segmented out of a sample home photo) held in front of a plain wall: shrunk by scale,
    at a horizontal place 0 (left edge) .. 1 (right edge)."""
    import cv2

    from wardrobe.segment import segment

    rgb = shrink(rgb_of(name), 640)
    mask = segment(rgb, "auto", None) > 127
    ys, xs = np.nonzero(mask)
    garment, mask = rgb[ys.min():ys.max() + 1, xs.min():xs.max() + 1], mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    garment = cv2.resize(garment, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(mask.astype(np.uint8), (garment.shape[1], garment.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    h, w = canvas
    out = np.empty((h, w, 3), np.uint8)
    out[:] = (200, 200, 195)
    y, x = (h - garment.shape[0]) // 2, int(where * (w - garment.shape[1]))
    out[y:y + garment.shape[0], x:x + garment.shape[1]][mask] = garment[mask]
    return out


def test_aiming_hold_it_closer(pipeline):
    d = pipeline.describe(on_plain_wall("home-shorts.jpg", 0.5, 0.5))
    assert "aim-closer" in d.problems and d.sentence.startswith("Hold it closer.")
    assert d.garment == "shorts"  # the description follows the advice


def test_aiming_move_it_to_the_users_side(pipeline):
    wide = (300, 900)
    on_right = pipeline.describe(on_plain_wall("home-shorts.jpg", 0.8, 1.0, wide))
    assert "aim-right" in on_right.problems and "Move it a little to your right." in on_right.sentence
    on_left = pipeline.describe(on_plain_wall("home-shorts.jpg", 0.8, 0.0, wide))
    assert "aim-left" in on_left.problems and "Move it a little to your left." in on_left.sentence
    centred = pipeline.describe(on_plain_wall("home-shorts.jpg", 0.8, 0.5, wide))
    assert not {"aim-left", "aim-right"} & set(centred.problems)


def test_a_small_mask_on_a_busy_background_is_not_called_small(pipeline):
    """The failure seen on real home photos: a garment filling the frame, only part of it found."""
    rgb = shrink(rgb_of("home-shirt.jpg"), 640)
    from wardrobe import quality

    mask = np.zeros(rgb.shape[:2], np.uint8)
    mask[100:140, 100:140] = 255  # a small piece of the shirt
    assert quality.aiming(mask, rgb) == []


def test_aiming_hold_it_further_away(pipeline):
    rgb = shrink(rgb_of("home-pants.jpg"), 640)
    h, w = rgb.shape[:2]
    d = pipeline.describe(rgb[int(0.15 * h):int(0.85 * h), int(0.15 * w):int(0.85 * w)])  # the trousers fill it
    assert "aim-further" in d.problems and d.sentence.startswith("Hold it a little further away.")
    assert d.garment == "trousers"  # the description still follows


def test_aiming_hold_it_still(pipeline):
    import cv2

    d = pipeline.describe(cv2.GaussianBlur(shrink(rgb_of("home-pants.jpg"), 640), (0, 0), 3))
    assert "blurry" in d.problems and "hold the garment still" in d.sentence and d.garment == "trousers"


def test_a_well_held_garment_gets_no_aiming_words(pipeline):
    d = pipeline.describe(shrink(rgb_of("home-outwear.jpg"), 640))
    assert not [p for p in d.problems if p.startswith("aim-")], d.problems


@pytest.mark.parametrize("name, pattern, words", [
    ("home-striped-t-shirt.jpg", "striped", "striped T-shirt"),
    ("home-shirt.jpg", "checked", "checked shirt"),
])
def test_a_sure_pattern_is_said(pipeline, name, pattern, words):
    d = pipeline.describe(shrink(rgb_of(name), 640))
    assert d.pattern == pattern and words in d.sentence, d.sentence
    assert d.to_json()["pattern"] == pattern


def test_plain_trousers_are_plain_or_nothing(pipeline):
    """The model shipped before said "Plain black trousers."; the one now gives "solid" 0.85, under its threshold
    (0.88, chosen on validation), and says no pattern. It must never give them one they do not have."""
    d = pipeline.describe(shrink(rgb_of("home-plain-trousers.jpg"), 640))
    assert d.pattern in (None, "solid") and d.garment == "trousers", d.sentence
    said = d.sentence.removesuffix(" I'm not sure of the colour.")  # charcoal: its colour is rightly doubted
    assert said in ("Black trousers.", "Plain black trousers."), d.sentence


@pytest.mark.xfail(strict=True, reason="known miss of the shipped bundle 20261130-104516 (docs/precision.md): its "
                   "pattern head gives the cut-out trousers striped 0.88 against its threshold 0.82; the bundle "
                   "before gave 0.832 against 0.836, a hair under. strict: this fails once they are plain again")
def test_a_patterned_background_is_not_the_garments_pattern(pipeline):
    """Plain black trousers on a patterned carpet: judged on the whole photo, the first pattern head said
    "striped" (0.74); the garment cut out onto white is not striped."""
    d = pipeline.describe(shrink(rgb_of("home-pants.jpg"), 640))
    assert d.pattern != "striped" and "striped" not in d.sentence


def test_the_empty_closet_and_the_card_together_under_a_coloured_light():
    """A closet calibrated with both an empty-closet plate and a white card: each photo is corrected by the card
    before it is segmented against the plate, so the plate must be seen corrected too (it was not: under a warm
    bulb the whole wall became "garment" and a navy T-shirt was called nude)."""
    from wardrobe.classify import Classifier
    from wardrobe.pipeline import Pipeline
    from wardrobe.segment import segment
    from wardrobe.settings import VisionSettings
    from wardrobe.train.seebetter import hang, under
    from wardrobe.train.seebetter import with_card as card_in_view

    wall, card = card_in_view(np.full((480, 640, 3), (150, 140, 120), np.uint8))
    shirt = rgb_of("product-tshirts-navy-blue.jpg")
    photo = hang(shirt, segment(shirt, "threshold"), wall)
    clf = Classifier.load(SHIPPED)
    said = {}
    for light in (None, 2700):
        rng = np.random.default_rng(0)
        pipe = Pipeline(clf, VisionSettings(segmentation="plate"), plate=under(wall, light, rng),
                        white=WhiteBalance("card", card))
        d = pipe.describe(under(photo, light, rng))
        assert d.white_balance == "card" and d.colours[0].family == "blue", d.sentence
        said[light] = d.sentence
    assert said[2700] == said[None]


def test_every_measure_decides_colours_as_a_closet_does(tmp_path):
    """A Pipeline built with no settings is the closet's: the training script's measures (the sock pairs, the
    enrolled garments, the lights, the patterns) build it so, and they scored a colour step no closet runs (the head
    alone, no learned decision, no hedges) while the constructor kept defaults of its own. On the sample photos it
    now says what `describe` says; `see-better --part closet` reads --config's [vision] as a closet would."""
    from wardrobe import settings as settings_module
    from wardrobe import wiring
    from wardrobe.classify import Classifier
    from wardrobe.pipeline import Pipeline
    from wardrobe.settings import VisionSettings
    from wardrobe.train.seebetter import closet_vision

    assert Pipeline().vision == VisionSettings() == closet_vision(None)
    defaults = settings_module.load(None, {"": {"state_dir": str(tmp_path)}, "model": {"bundle": str(SHIPPED)}})
    closet = wiring.build_pipeline(defaults, closet=False)
    bare = Pipeline(Classifier.load(SHIPPED))
    for photo in sorted(PHOTOS.glob("*.jpg")):
        rgb = rgb_of(photo.name)
        assert bare.describe(rgb).sentence == closet.describe(rgb).sentence, photo.name
    config = tmp_path / "config.toml"
    config.write_text("[vision]\ncolour_learned_weight = 0\n")
    assert closet_vision(config).colour_learned_weight == 0
