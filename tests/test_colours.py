"""Colour clustering and naming on synthetic patches and real photos."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import photo, rgb_of
from wardrobe.baseline import original_colours
from wardrobe.colours import (
    FAMILIES,
    Cluster,
    Colour,
    ColourNamer,
    dominant_colours,
    garment_weights,
    load_colour_model,
    rule_family,
    spoken_colours,
)
from wardrobe.css3 import twin_not_said
from wardrobe.images import rgb_to_lab
from wardrobe.segment import auto_mask, threshold_mask
from wardrobe.settings import VisionSettings


@pytest.fixture(scope="module")
def namer():
    return ColourNamer()


def patch(*colours_and_shares, size=200):
    """An image of horizontal bands of the given RGB colours in the given shares."""
    rows = []
    for rgb, share in colours_and_shares:
        rows.append(np.tile(np.array(rgb, np.uint8), (round(size * share), size, 1)))
    return np.vstack(rows)


def test_clusters_are_ordered_by_share_and_sum_to_one():
    img = patch(((20, 30, 90), 0.7), ((240, 240, 240), 0.3))
    cl = dominant_colours(img, np.ones(img.shape[:2], np.float32))
    assert len(cl) == 2
    assert cl[0].share > cl[1].share
    assert abs(sum(c.share for c in cl) - 1) < 1e-6
    assert np.allclose(cl[0].rgb, (20, 30, 90), atol=3)


def test_near_identical_clusters_merge_and_tiny_ones_drop():
    img = patch(((200, 30, 30), 0.5), ((205, 33, 31), 0.47), ((10, 200, 10), 0.03))
    cl = dominant_colours(img, np.ones(img.shape[:2], np.float32))
    assert len(cl) == 1 and cl[0].share == pytest.approx(1.0)


def test_automatic_k_finds_three_colours():
    img = patch(((200, 30, 30), 0.4), ((20, 30, 160), 0.35), ((240, 240, 240), 0.25))
    cl = dominant_colours(img, np.ones(img.shape[:2], np.float32), k=None)
    assert len(cl) == 3


def test_alpha_weighting_ignores_background():
    img = patch(((250, 250, 250), 0.6), ((30, 120, 40), 0.4))
    alpha = np.zeros(img.shape[:2], np.uint8)
    alpha[120:] = 255
    cl = dominant_colours(img, alpha.astype(np.float32) / 255)
    assert len(cl) == 1 and rule_family(cl[0].lab) == "green"


def test_css3_kd_tree_in_lab_and_rgb(namer):
    rgb_namer = ColourNamer(mode="rgb")
    for name, rgb in (("navy", (0, 0, 128)), ("crimson", (220, 20, 60)), ("gold", (255, 215, 0))):
        lab = rgb_to_lab(np.array(rgb, np.uint8))
        assert namer.css3(lab, np.array(rgb)) == name
        assert rgb_namer.css3(lab, np.array(rgb)) == name


@pytest.mark.parametrize("rgb,families", [
    ((20, 20, 22), {"black"}), ((245, 245, 245), {"white"}), ((165, 165, 165), {"gray"}),
    ((200, 20, 30), {"red"}), ((30, 60, 170), {"blue"}), ((30, 130, 50), {"green"}),
    ((240, 200, 30), {"yellow"}), ((100, 60, 30), {"brown"}), ((110, 40, 140), {"purple"}),
    ((240, 130, 170), {"pink"}), ((240, 130, 20), {"orange"}),
])
def test_fitted_family_model_on_clear_colours(namer, rgb, families):
    assert namer.model is not None, "wardrobe/data/colour_model.json must ship with the package"
    lab = rgb_to_lab(np.array(rgb, np.uint8))
    assert namer.family(lab) in families


def test_dark_grey_photograph_of_black_cloth_is_black(namer):
    """The fitted boundary knows black cloth photographs as dark grey (CSS3 would say darkslategray)."""
    rgb = np.array((47, 52, 55), np.uint8)
    lab = rgb_to_lab(rgb)
    assert namer.css3(lab, rgb) in {"darkslategray", "darkslategrey", "black"}
    assert namer.family(lab) == "black"


def test_spoken_name_is_plain_words_within_family(namer):
    c = namer.name(Cluster(tuple(float(x) for x in rgb_to_lab(np.array((30, 35, 70), np.uint8))), (30, 35, 70), 1.0))
    assert c.family == "blue"
    assert c.name in {"navy blue", "blue"}
    assert c.family in FAMILIES
    palette = {p["name"]: p["family"] for p in load_colour_model()["palette"]}
    assert palette.get(c.name, c.family) == c.family


def test_second_colour_only_when_it_is_really_there():
    navy = Colour("navy blue", "midnightblue", "blue", (30, 35, 70), 0.7, (15.0, 5.0, -25.0))
    shade = Colour("blue", "darkslateblue", "blue", (40, 50, 90), 0.3, (22.0, 5.0, -25.0))
    white = Colour("white", "whitesmoke", "white", (240, 240, 240), 0.25, (95.0, 0.0, 0.0))
    speck = Colour("red", "red", "red", (200, 20, 30), 0.1, (45.0, 65.0, 45.0))
    assert spoken_colours([navy, shade]) == [navy]
    assert spoken_colours([navy, white]) == [navy, white]
    assert spoken_colours([navy, speck]) == [navy]


def test_hands_holding_a_garment_are_not_its_colour():
    """Skin-coloured pixels are left out while enough garment remains."""
    img = patch(((25, 35, 110), 0.6), ((224, 172, 140), 0.4))  # navy cloth and a hand
    w = garment_weights(img, np.full(img.shape[:2], 255, np.uint8))
    cl = dominant_colours(img, w)
    assert len(cl) == 1 and rule_family(cl[0].lab) == "blue"


def test_a_beige_garment_keeps_its_colour():
    """If almost everything is skin-coloured, it is the garment, not hands."""
    img = patch(((224, 180, 150), 0.95), ((25, 35, 110), 0.05))
    w = garment_weights(img, np.full(img.shape[:2], 255, np.uint8))
    assert w.sum() > 0.9 * w.size


@pytest.mark.parametrize("name,families", [
    ("product-tshirts-navy-blue.jpg", {"blue"}), ("product-jeans-blue.jpg", {"blue"}),
    ("product-casual-shoes-black.jpg", {"black"}), ("home-pants.jpg", {"black", "blue"}),
    ("home-outwear.jpg", {"red", "orange"}),
])
def test_main_colour_of_real_photos(namer, name, families):
    rgb = rgb_of(name)
    region = "upper" if "tshirts" in name else ("lower" if "jeans" in name else "whole")
    cl = dominant_colours(rgb, garment_weights(rgb, auto_mask(rgb), region=region))
    assert namer.name(cl[0]).family in families


def test_original_method_names_css3_in_rgb():
    rgb = rgb_of("product-casual-shoes-black.jpg")
    names = original_colours(rgb, (threshold_mask(rgb) > 0).astype(np.uint8))
    assert names and all(isinstance(n, str) and 0 < s <= 1 for n, s in names)
    assert names[0][0] in {"black", "darkslategray", "darkslategrey", "dimgray", "dimgrey", "gainsboro", "white",
                           "whitesmoke", "lightgray", "lightgrey", "silver", "darkgray", "darkgrey", "gray", "grey"}


@pytest.mark.parametrize("words, expected", [("basic", "A green kurta"), ("plain", "A teal kurta"),
                                             ("descriptive", "A teal kurta")])
def test_colour_words_follow_the_naming_mode(words, expected):
    from tests.test_cli import wardrobe

    r = wardrobe("describe", "--json", "--quiet", "--colour-names", words, str(photo("product-kurtas-green.jpg")))
    d = json.loads(r.stdout)
    assert d["sentence"].startswith(expected), d["sentence"]
    if words == "basic":
        assert all(c["name"] == c["family"] for c in d["colours"])


def test_css3_names_in_words():
    from wardrobe.colours import css3_words

    assert css3_words("darkslategray") == "dark slate gray" and css3_words("teal") == "teal"
    assert css3_words("lightgoldenrodyellow") == "light goldenrod yellow"


def cluster_colour(namer, rgb, share=1.0):
    lab = tuple(float(v) for v in rgb_to_lab(np.array([[rgb]], np.uint8))[0, 0])
    return namer.name(Cluster(lab, tuple(rgb), share))


@pytest.mark.parametrize("rgb", [(245, 245, 242), (236, 238, 240), (128, 128, 128), (180, 180, 176), (90, 92, 95)])
@pytest.mark.parametrize("head", ["yellow", "green", "blue", "pink", "red", "orange", "purple"])
def test_a_near_white_or_grey_cluster_never_becomes_a_hue(namer, rgb, head):
    """The colour head (int8 on a processor that saturates said "yellow" for a white shirt) may not rename a
    near-white or near-grey cluster to a saturated hue, however sure it is."""
    main = cluster_colour(namer, rgb)
    assert main.family in ("white", "gray", "black")
    for sure in (False, True):
        out = namer.with_family_hint([main], head, sure=sure)
        assert out[0].family == main.family and out[0].name == main.name


def test_the_head_renames_only_to_a_neighbouring_family(namer):
    grey = cluster_colour(namer, (70, 70, 72))  # a dark grey photograph: black cloth or grey
    assert namer.with_family_hint([grey], "black")[0].family == "black"
    navy = cluster_colour(namer, (30, 34, 60))
    assert namer.with_family_hint([navy], "black")[0].family == "black"
    black = cluster_colour(namer, (20, 20, 22))
    for sure in (False, True):  # black shoes are never "green", however sure the head is
        assert namer.with_family_hint([black], "green", sure=sure)[0].family == "black"
    beige = cluster_colour(namer, (200, 180, 150))
    assert namer.with_family_hint([beige], "brown")[0].family == "brown"
    # A near-black cluster whose pixels vote a hue (a black dress's shadows, "purple") may be called black;
    # a purple that is plainly purple may not.
    shadow = cluster_colour(namer, (52, 46, 54))
    assert shadow.family == "purple" and namer.with_family_hint([shadow], "black")[0].family == "black"
    purple = cluster_colour(namer, (110, 50, 130))
    assert purple.family == "purple" and namer.with_family_hint([purple], "black")[0].family == "purple"


def test_a_sure_head_may_rename_beyond_the_neighbours(namer):
    """A white trainer photographed in greenish light: its pixels say green, the colour head says white. White and
    green are not neighbours, so an unsure head leaves the pixels' name; a head at least vision.colour_head_sure
    names it white. A neutral cluster still never becomes a hue, and a plain hue may become another only when sure."""
    tinted = cluster_colour(namer, (170, 196, 160))
    assert tinted.family == "green"
    assert namer.with_family_hint([tinted], "white")[0].family == "green"
    white = namer.with_family_hint([tinted], "white", sure=True)[0]
    assert white.family == "white" and white.share == tinted.share
    purple = cluster_colour(namer, (110, 50, 130))
    assert namer.with_family_hint([purple], "black", sure=True)[0].family == "black"
    grey = cluster_colour(namer, (150, 150, 150))
    assert namer.with_family_hint([grey], "green", sure=True)[0].family == grey.family != "green"


def test_a_bright_neutral_no_darker_than_its_surroundings_is_white(namer):
    """A camera exposes for the whole frame, so a white T-shirt on a bed photographs grey (L about 70). Called
    grey (or by a tint) by its pixels, it is white when it is a bright neutral no darker than the photo around it;
    a grey one on a white sheet, a dark grey, a hue, or a garment that fills the photo keep their names."""
    grey = cluster_colour(namer, (172, 172, 170))
    assert grey.family == "gray"
    assert namer.with_exposure([grey], 70.0, 45.0)[0].family == "white"
    assert namer.with_exposure([grey], 70.0, 90.0)[0] == grey  # a light grey shirt on a white sheet
    assert namer.with_exposure([grey], 70.0, None)[0] == grey
    dark = cluster_colour(namer, (110, 110, 110))
    assert dark.family in ("gray", "black") and namer.with_exposure([dark], 46.0, 20.0)[0] == dark
    sky = cluster_colour(namer, (170, 200, 235))
    assert namer.with_exposure([sky], 80.0, 40.0)[0] == sky  # a pale blue shirt is blue
    tinted = namer.renamed(grey, "blue")  # a neutral the pixels or the head called by a tint
    assert namer.with_exposure([tinted], 70.0, 45.0)[0].family == "white"


def test_the_pipeline_compares_the_garment_with_what_is_around_it():
    """Real OpenCV on a drawn photo: a grey-looking T-shirt on a dark floor is said white; the same shirt on a
    white sheet stays grey (no colour head: the pixels alone)."""
    import cv2

    from wardrobe.pipeline import Pipeline, lightness_inside_and_around

    pipe = Pipeline(VisionSettings(colour_k=2))
    for floor, said in (((70, 55, 45), "white"), ((245, 245, 245), "gray")):
        photo = np.full((240, 320, 3), floor, np.uint8)
        alpha = np.zeros((240, 320), np.uint8)
        cv2.rectangle(alpha, (100, 50), (220, 200), 255, -1)
        photo[alpha > 0] = (172, 172, 170)
        inside, around = lightness_inside_and_around(photo, alpha)
        assert inside == pytest.approx(69.5, abs=1.5) and (around > inside) == (said == "gray")
        assert pipe.colours(photo, alpha)[0].family == said


def test_the_pixels_and_the_head_decide_the_family_together(namer):
    """A pale blue shirt: most of its pixels are blue, the colour head leans to white. With the pixels weighed
    (colour_pixel_weight 3) blue wins; the head alone (0) says white; a head much surer of white still wins."""
    sky = cluster_colour(namer, (170, 200, 235), 0.7)
    shade = cluster_colour(namer, (240, 242, 245), 0.3)
    assert (sky.family, shade.family) == ("blue", "white")
    unsure = [("white", 0.55), ("blue", 0.4), ("gray", 0.05)]
    assert namer.decided_family([sky, shade], unsure, 3.0) == ("blue", 0.4)
    assert namer.decided_family([sky, shade], unsure, 0.0) == ("white", 0.55)
    assert namer.decided_family([sky, shade], [("white", 0.97), ("blue", 0.02), ("gray", 0.01)], 3.0)[0] == "white"


def test_the_colour_settings_reach_the_pipeline(tmp_path):
    from wardrobe import settings as settings_module
    from wardrobe import wiring

    s = settings_module.load(None, {"": {"state_dir": str(tmp_path)}, "model": {"bundle": str(tmp_path / "none")},
                                    "vision": {"colour_pixel_weight": 1.5, "family_hint_min": 0.2,
                                               "colour_head_sure": 0.7, "colour_learned_weight": 0.5}})
    pipe = wiring.build_pipeline(s, closet=False)
    v = pipe.vision
    assert (v.colour_pixel_weight, v.family_hint_min, v.colour_head_sure, v.colour_learned_weight) == (1.5, 0.2, 0.7, 0.5)
    with pytest.raises(Exception, match="vision.colour_pixel_weight must be between 0 and 100"):
        settings_module.load(None, {"": {"state_dir": str(tmp_path)}, "vision": {"colour_pixel_weight": -1}})
    with pytest.raises(Exception, match="vision.colour_learned_weight must be between 0 and 100"):
        settings_module.load(None, {"": {"state_dir": str(tmp_path)}, "vision": {"colour_learned_weight": -1}})


def test_the_head_chooses_only_a_real_part_of_the_garment(namer):
    white = cluster_colour(namer, (240, 240, 240), 0.92)
    speck = cluster_colour(namer, (220, 200, 40), 0.08)
    assert namer.with_family_hint([white, speck], "yellow")[0].family == "white"
    stripe = cluster_colour(namer, (220, 200, 40), 0.3)
    assert namer.with_family_hint([white, stripe], "yellow")[0].family == "yellow"


def test_close_families_are_both_said(namer):
    from wardrobe.phrase import Alternative, sentence

    navy = cluster_colour(namer, (28, 32, 58))
    assert navy.family in ("blue", "black")
    other = "black" if navy.family == "blue" else "blue"
    hedged = namer.with_hedge([navy], [(navy.family, 0.55), (other, 0.4), ("green", 0.05)], least=0.3)
    assert hedged[0].or_family == other and hedged[0].family == navy.family
    said = sentence([Alternative("trousers", 0.9)], hedged, [])
    assert said == f"{hedged[0].name.capitalize()} or {hedged[0].or_name} trousers.", said
    assert hedged[0].to_json()["or"]["family"] == other
    # a weak second family, or one that is no neighbour, is not said
    assert namer.with_hedge([navy], [(navy.family, 0.8), (other, 0.2)], least=0.3)[0].or_family is None
    white = cluster_colour(namer, (240, 240, 240))
    assert namer.with_hedge([white], [("white", 0.5), ("yellow", 0.45)], least=0.3)[0].or_family is None
    assert namer.with_hedge([navy], [(navy.family, 0.5), (other, 0.5)], least=1.01)[0].or_family is None


@pytest.mark.parametrize("rgb", [(0, 128, 128), (47, 79, 79), (60, 20, 30), (200, 180, 150), (30, 34, 60)])
def test_every_kind_of_colour_word_follows_the_same_family(rgb):
    """basic, plain and descriptive name the same family: the descriptive CSS3 word is chosen within it."""
    named = {w: cluster_colour(ColourNamer(words=w), rgb) for w in ("basic", "plain", "descriptive")}
    family = named["basic"].family
    assert named["basic"].name == family and named["plain"].family == named["descriptive"].family == family
    css3 = ColourNamer(words="descriptive")
    spoken = named["descriptive"].name.replace(" ", "").replace("grey", "gray")
    assert css3.css3_names.index(spoken) in css3.css3_for[family], spoken


def test_a_hedged_colour_is_not_said_again_as_the_second(namer):
    """Seen on the arm64 check: "A brown or black and black checked shirt." The second colour of the hedge's
    other family is left out."""
    from wardrobe.phrase import Alternative, sentence

    brown = cluster_colour(namer, (70, 50, 35), 0.6)
    black = cluster_colour(namer, (15, 15, 15), 0.4)
    hedged = namer.with_hedge([brown, black], [(brown.family, 0.6), ("black", 0.35)], least=0.25)
    assert hedged[0].or_family == "black" and black.family == "black"
    said = sentence([Alternative("shirt", 0.9)], hedged, [], pattern="checked")
    assert said.count("black") == 1, said


def decision_for(family: str, strength: float = 12.0):
    """A learned decision that gives `family` nearly all its probability, whatever the photo."""
    from wardrobe.colour_decision import N_FEATURES, ColourDecision

    intercept = np.where(np.array(FAMILIES) == family, strength, 0.0)
    return ColourDecision(FAMILIES, np.zeros(N_FEATURES), np.ones(N_FEATURES), np.zeros((len(FAMILIES), N_FEATURES)), intercept)


def test_a_learned_decision_weighs_in_beside_the_head_and_the_pixels(namer):
    """The bundle's learned decision adds its log-probability at learned_weight: a near-white shirt the head calls
    white at 0.6 is blue when the decision is sure of blue and weighs 1; at weight 0 the rule alone decides."""
    sky = cluster_colour(namer, (170, 200, 235), 0.4)
    shade = cluster_colour(namer, (240, 242, 245), 0.6)
    head = [("white", 0.6), ("blue", 0.35), ("gray", 0.05)]
    from wardrobe.colour_decision import N_FEATURES

    learned = decision_for("blue").probabilities(np.zeros(N_FEATURES))
    assert learned[0][0] == "blue" and learned[0][1] > 0.99
    assert namer.decided_family([shade, sky], head, 0.0) == ("white", 0.6)
    assert namer.decided_family([shade, sky], head, 0.0, learned, 0.0) == ("white", 0.6)
    assert namer.decided_family([shade, sky], head, 0.0, learned, 1.0) == ("blue", 0.35)


def test_the_learned_decision_cannot_outvote_the_head_and_the_pixels_agreeing(namer):
    """A black garment (every pixel black, the head black at 0.8): a learned decision sure of blue does not make it
    "navy blue". Its log-probability is floored (colours.LEARNED_FLOOR), so it moves a family by a bounded amount."""
    from wardrobe.colour_decision import N_FEATURES

    black = cluster_colour(namer, (12, 12, 12), 1.0)
    assert black.family == "black"
    learned = decision_for("blue", 30.0).probabilities(np.zeros(N_FEATURES))
    head = [("black", 0.8), ("blue", 0.2)]
    family, p = namer.decided_family([black], head, 3.0, learned, 1.0)
    assert family == "black"
    assert namer.with_family_hint([black], family, sure=p >= 0.5)[0].family == "black"
    # an unsure head and pixels that do not name black: the decision may still choose its neighbour
    assert namer.decided_family([black], [("black", 0.5), ("blue", 0.5)], 0.0, learned, 1.0)[0] == "blue"


def test_a_photo_whose_colours_are_not_read_leaves_no_inputs_behind():
    """The training script reads each photo's learned-decision inputs from the pipeline: a too-dark frame after a
    real photo must not hand on the photo's (it would be fitted twice, under another label)."""
    from tests.conftest import SHIPPED
    from wardrobe.classify import Classifier
    from wardrobe.colour_decision import N_FEATURES
    from wardrobe.pipeline import Pipeline

    pipe = Pipeline(Classifier.load(SHIPPED, "onnx"))
    pipe.keep_colour_features = True
    d = pipe.describe(rgb_of("home-pants.jpg"))
    assert d.colours and pipe.last_colour_features.shape == (N_FEATURES,)
    dark = pipe.describe(np.full((240, 320, 3), 3, np.uint8))
    assert "too-dark" in dark.problems and pipe.last_colour_features is None


def test_the_learned_inputs_are_the_same_for_any_photo_shape():
    """features(): one fixed-length, finite row for a garment on a floor, one that fills the photo (nothing around
    it) and a photo without a colour head; the head's families on the cut-out change it."""
    from wardrobe.colour_decision import N_FEATURES
    from wardrobe.colour_inputs import features

    namer = ColourNamer()
    rgb = np.full((120, 160, 3), (90, 60, 40), np.uint8)
    rgb[20:100, 40:120] = (30, 40, 120)
    alpha = np.zeros((120, 160), np.uint8)
    alpha[20:100, 40:120] = 255
    colours = [namer.name(c) for c in dominant_colours(rgb, alpha / 255.0, k=2)]
    head = [("blue", 0.8), ("black", 0.2)]
    rows = [features(rgb, alpha, alpha / 255.0, colours, head),
            features(rgb, np.full_like(alpha, 255), np.ones(alpha.shape), colours, head),
            features(rgb, alpha, alpha / 255.0, colours, []),
            features(rgb, alpha, alpha / 255.0, colours, head, [("black", 0.9), ("blue", 0.1)])]
    assert all(r.shape == (N_FEATURES,) and np.isfinite(r).all() for r in rows)
    assert not np.array_equal(rows[0], rows[1]) and not np.array_equal(rows[0], rows[3])


@pytest.fixture()
def decided_bundle(tmp_path):
    """A copy of the shipped bundle whose learned decision always says yellow (bundle.json and manifest rewritten)."""
    import shutil

    from tests.conftest import SHIPPED
    from wardrobe.bundle import write_manifest

    dst = tmp_path / "bundle"
    shutil.copytree(SHIPPED, dst)
    meta = json.loads((dst / "bundle.json").read_text())
    meta["colour_decision"] = decision_for("yellow", 30.0).to_json()
    (dst / "bundle.json").write_text(json.dumps(meta))
    write_manifest(dst)
    return dst


def test_the_learned_decision_never_makes_a_grey_garment_a_hue(decided_bundle, tmp_path):
    """Through the real pipeline and the real classifier: a decision that always says yellow changes nothing on a
    grey garment (the rename guard bounds it), but chooses a real yellow part of a garment that has one; with
    vision.colour_learned_weight 0 the bundle's decision is not used."""
    from wardrobe import settings as settings_module
    from wardrobe import wiring

    def pipe(weight):
        s = settings_module.load(None, {"": {"state_dir": str(tmp_path)}, "model": {"bundle": str(decided_bundle)},
                                        "vision": {"colour_learned_weight": weight}})
        return wiring.build_pipeline(s, closet=False)

    learned, rule = pipe(1.0), pipe(0.0)
    assert learned.classifier.bundle.colour_decision is not None
    head = [("gray", 0.7), ("white", 0.2), ("yellow", 0.1)]
    grey = np.full((200, 200, 3), 175, np.uint8)
    alpha = np.full((200, 200), 255, np.uint8)
    assert learned.colours(grey, alpha, None, head)[0].family == rule.colours(grey, alpha, None, head)[0].family == "gray"
    striped = patch(((175, 175, 175), 0.6), ((230, 200, 30), 0.4))
    assert learned.colours(striped, alpha, None, head)[0].family == "yellow"
    assert rule.colours(striped, alpha, None, head)[0].family == "gray"


def test_a_bad_learned_decision_refuses_the_bundle(decided_bundle):
    """A colour_decision block of the wrong shape, with a non-finite weight or for other inputs: the bundle is
    refused with one line naming the block, as any damaged bundle is."""
    from wardrobe.bundle import Bundle, write_manifest
    from wardrobe.errors import ModelError

    good = json.loads((decided_bundle / "bundle.json").read_text())
    from wardrobe.colour_decision import N_FEATURES

    assert Bundle.load(decided_bundle).colour_decision.probabilities(np.zeros(N_FEATURES))[0][0] == "yellow"
    for change, reason in ((lambda d: d.update(coef=d["coef"][:3]), "wrong shape"),
                           (lambda d: d["intercept"].__setitem__(0, float("nan")), "not finite"),
                           (lambda d: d["coef"][0].__setitem__(0, 10**400), "numbers only"),
                           (lambda d: d["coef"][0].__setitem__(0, 1e308), "larger than"),
                           (lambda d: d.update(scale=[1e-300] * len(d["scale"])), "a scale under"),
                           (lambda d: d.update(intercept=[True] * len(d["intercept"])), "numbers only"),
                           (lambda d: d.update(mean=[str(v) for v in d["mean"]]), "numbers only"),
                           (lambda d: d.update(coef={"a": 1}), "numbers only"),
                           (lambda d: d.update(coef=[[1.0], [1.0, 2.0]]), "inhomogeneous"),
                           (lambda d: d.update(features=True), "features version True"),
                           (lambda d: d.update(fitted_on={"x": 1}), "fitted_on must be text"),
                           (lambda d: d.update(families={"black": 1}), "not the colour head's"),
                           (lambda d: d.update(features=99), "features version 99"),
                           (lambda d: d.pop("mean"), "mean"),
                           (lambda d: d.update(families=d["families"][::-1]), "not the colour head's")):
        meta = json.loads(json.dumps(good))
        change(meta["colour_decision"])
        (decided_bundle / "bundle.json").write_text(json.dumps(meta))
        write_manifest(decided_bundle)
        with pytest.raises(ModelError, match=f"bad colour_decision block.*{reason}"):
            Bundle.load(decided_bundle)


def test_the_kd_tree_finds_the_exact_nearest_colours():
    """The k-d tree that names colours (OpenCV's, so the daemon never imports SciPy) gives the exact neighbours a
    brute-force search gives, for one neighbour and for the family vote's k, on the shipped family points."""
    from wardrobe.kdtree import KDTree

    namer = ColourNamer()
    points = namer.points * namer.scale
    tree = KDTree(points)
    rng = np.random.default_rng(0)
    queries = np.stack([rng.uniform(0, 100, 300), rng.uniform(-80, 80, 300), rng.uniform(-80, 80, 300)], 1)
    for q in (queries * namer.scale).astype(np.float32):
        exact = np.sort(np.linalg.norm(points - q, axis=1))
        for k in (1, namer.k):
            d, i = tree.query(q, k)
            assert len(i) == k and np.all(np.diff(d) >= 0)
            np.testing.assert_allclose(d, exact[:k], rtol=1e-4, atol=1e-3)
            np.testing.assert_allclose(np.linalg.norm(points[i] - q, axis=1), d, rtol=1e-4, atol=1e-3)
    for far in (np.array([1e10, 0, 0]), np.array([1e30, -1e30, 0])):  # beyond float32: still the right neighbours
        exact = np.sort(np.linalg.norm(points.astype(np.float64) - far, axis=1))
        np.testing.assert_allclose(tree.query(far, namer.k)[0], exact[: namer.k], rtol=1e-12)
    for bad in ([np.nan, 0, 0], [np.inf, 0, 0], [1.0, 2.0]):
        with pytest.raises(ValueError, match="finite"):
            tree.query(np.array(bad), namer.k)
    for k in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="whole number"):
            tree.query(queries[0], k)
    with pytest.raises(ValueError, match="non-empty"):
        KDTree(np.zeros((0, 3)))


def test_one_name_for_each_css3_colour():
    """CSS3 names some colours twice (dimgray and dimgrey, cyan and aqua, magenta and fuchsia): the same colour is
    always given the same name, gray as the family word spells it, and the common word, so one descriptive sentence
    never says "light slate grey and dark gray"."""
    for words in ("descriptive", "plain"):
        namer = ColourNamer(words=words)
        rgb = namer.css3_rgb
        for j, name in enumerate(namer.css3_names):
            said = namer.css3(namer.css3_lab[j], rgb[j])
            assert (rgb[namer.css3_names.index(said)] == rgb[j]).all(), (name, said)
            assert not twin_not_said(said), (name, said)
            for family in FAMILIES:
                within = namer.css3_within(namer.css3_lab[j], family, said)
                assert not twin_not_said(within), (name, family, within)
    lab = lambda name: namer.css3_lab[namer.css3_names.index(name)]  # noqa: E731
    assert [namer.css3(lab(n), None) for n in ("dimgrey", "aqua", "fuchsia")] == ["dimgray", "cyan", "magenta"]


def test_a_colour_the_learned_decision_doubts_is_called_unsure(namer):
    """The colour step replayed on named clusters: a main colour whose family the learned decision gives less than
    vision.colour_unsure_below is marked unsure (and says so in its JSON), one it trusts is not, a hedged "X or Y"
    is honest already, and without a learned decision or at 0 nothing is ever called unsure."""
    from wardrobe.pipeline import Pipeline

    navy = namer.name(Cluster((20.0, 5.0, -25.0), (30, 35, 70), 0.8))
    head = [("blue", 0.6), ("black", 0.3)]

    def said(learned, below=0.3, hedge=1.01):
        pipe = Pipeline(vision=VisionSettings(colour_unsure_below=below, colour_hedge_min=hedge), namer=namer)
        return pipe.decided_colours([navy], head, learned, (None, None))[0]

    doubtful = [("black", 0.5), ("blue", 0.25), ("gray", 0.25)]
    assert said(doubtful).family == "blue" and said(doubtful).unsure and said(doubtful).to_json()["unsure"] is True
    assert not said([("blue", 0.35), ("black", 0.65)]).unsure
    assert not said(doubtful, below=0).unsure and not said(None).unsure
    assert said(doubtful, hedge=0.2).or_family == "black" and not said(doubtful, hedge=0.2).unsure
    assert "unsure" not in said(None).to_json()


def test_the_shipped_closet_says_when_it_doubts_a_colour():
    """The real describe path and shipped bundle: a grey striped T-shirt on a flowered sheet, whose colour it gets
    wrong ("black with brown"), is said with "I'm not sure of the colour."; a red dress it is sure of is not."""
    from tests.test_cli import wardrobe

    r = wardrobe("describe", "--json", "--quiet", str(photo("home-t-shirt.jpg")), str(photo("product-dresses-red.jpg")))
    doubted, sure = (json.loads(line) for line in r.stdout.splitlines())
    assert "colour-unsure" in doubted["problems"] and doubted["colours"][0]["unsure"] is True
    assert doubted["sentence"].endswith(". I'm not sure of the colour.")
    assert "colour-unsure" not in sure["problems"] and "unsure" not in sure["colours"][0]
    assert "not sure" not in sure["sentence"]


def test_no_colour_doubt_for_the_users_own_garment(tmp_path):
    """The user's own garment is named ("Your grey tee."), not its colour: no colour doubt is said or reported."""
    from tests.test_cli import wardrobe

    state, tee = str(tmp_path / "state"), str(photo("home-t-shirt.jpg"))
    assert wardrobe("enrol", tee, "--name", "grey tee", "--state-dir", state).returncode == 0
    d = json.loads(wardrobe("describe", "--json", "--quiet", "--state-dir", state, tee).stdout)
    assert d["sentence"].startswith("Your grey tee") and "not sure of the colour" not in d["sentence"]
    assert "colour-unsure" not in d["problems"]


def reviewed_input(namer, *rgb_and_shares):
    """Named clusters as the colour step gives them, largest first."""
    out = []
    for rgb, share in rgb_and_shares:
        lab = tuple(float(v) for v in rgb_to_lab(np.asarray([rgb], np.uint8))[0])
        out.append(namer.name(Cluster(lab, rgb, share)))
    return out


def test_the_caretakers_colours_go_main_first_and_are_never_painted_on_another_cluster(namer):
    """ColourNamer.as_reviewed: the first family given is the main colour (a real cluster of it promoted, else the
    main cluster called by it, in the family's own word); another family given is said only of a cluster of its
    own; clusters of families not given are not said."""
    navy, grey, white, red = (20, 30, 90), (165, 165, 165), (245, 245, 245), (200, 20, 30)
    colours = reviewed_input(namer, (navy, 0.6), (grey, 0.25), (white, 0.15))
    assert [c.family for c in colours] == ["blue", "gray", "white"]
    assert [c.family for c in namer.as_reviewed(colours, ["blue", "white"])] == ["blue", "white"]
    assert [c.name for c in namer.as_reviewed(colours, ["blue", "white"])] == [colours[0].name, colours[2].name]
    assert [c.family for c in namer.as_reviewed(colours, ["gray"])] == ["gray"]  # a real part of it, promoted
    assert [c.family for c in namer.as_reviewed(colours, ["blue", "red"])] == ["blue"]  # no red cluster: not said
    pale = reviewed_input(namer, ((238, 228, 232), 0.9), (red, 0.1))
    assert pale[0].family == "white"
    said = namer.as_reviewed(pale, ["pink"])  # the caretaker saw a pale pink the camera took for white
    assert [(c.family, c.name) for c in said] == [("pink", "pink")] and said[0].lab == pale[0].lab  # not "magenta"
    hedged = [Colour("navy blue", "navy", "blue", navy, 1.0, colours[0].lab, "black", "black", unsure=True)]
    (plain,) = namer.as_reviewed(hedged, ["blue"])
    assert plain.or_family is None and not plain.unsure and plain.said == "navy blue"
    assert namer.as_reviewed([], ["blue"]) == [] and namer.as_reviewed(colours, []) == colours


def test_a_reviewed_two_colour_garment_keeps_both_colours_plainly(namer):
    """A hostile review: a navy and white shirt reviewed as "white, navy" and seen again with its navy part larger
    was said "A white or navy blue shirt." (one doubtful colour, the second lost): the closet's own main colour is
    one the caretaker gave, so nothing is in doubt. A family the caretaker did not give still is."""
    from wardrobe.colours import own_beside

    navy, white = (20, 30, 90), (245, 245, 245)
    colours = reviewed_input(namer, (navy, 0.6), (white, 0.35))
    seen = [tuple(float(v) for v in rgb_to_lab(np.asarray([rgb], np.uint8))[0]) for rgb in ((35, 45, 115),
                                                                                           (235, 235, 230))]
    said = namer.as_reviewed(colours, ["white", "blue"], seen, 20.0)
    assert [(c.family, c.or_family) for c in said] == [("white", None), ("blue", None)]
    assert spoken_colours(said)[1].family == "blue"
    assert own_beside(["white", "blue"], "blue", None, colours[0].lab, seen) is None
    assert own_beside(["white"], "blue", None, colours[0].lab, seen) == "blue"


def test_descriptive_words_never_name_another_family_to_the_ear(namer):
    """The descriptive CSS3 word follows the family said, as heard: a green kurta was "dark slate gray", navy
    jeans "slate gray" and a white shirt "alice blue" (the labelled photos' vote put those CSS3 colours in green,
    blue and white). For every family and every CSS3 colour's own CIELAB, the words said hold the family's word or
    no family's word at all."""
    from wardrobe.colours import css3_words

    descriptive = ColourNamer(words="descriptive")
    for family in FAMILIES:
        for name, lab in zip(descriptive.css3_names, descriptive.css3_lab, strict=True):
            said = descriptive.said(lab, family, name)
            words = [w for w in ("gray" if w == "grey" else w for w in said.split()) if w in FAMILIES]
            assert not words or words[-1] == family, (family, css3_words(name), said)
    from wardrobe.colours import says_family

    assert not says_family("orangered", "orange", "orange") and says_family("orangered", "red", "orange")
    assert not says_family("greenyellow", "green", "green") and says_family("yellowgreen", "green", "yellow")
    kurta = descriptive.said(descriptive.css3_lab[descriptive.css3_names.index("darkslategray")], "green", "darkslategray")
    assert kurta != "dark slate gray" and descriptive.css3_names.index(kurta.replace(" ", "")) in descriptive.css3_for["green"]
