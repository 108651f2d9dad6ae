"""Background removal on real photos and on composites with exact masks."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import rgb_of
from wardrobe.segment import auto_mask, plate_mask, segment, skin_mask, threshold_mask


def test_threshold_is_the_original_formula():
    """grey>250 -> background; inverted, blurred with sigma 2, stretched 2m-255."""
    import cv2

    rgb = np.full((100, 100, 3), 255, np.uint8)
    rgb[30:70, 30:70] = (20, 40, 200)
    a = threshold_mask(rgb)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    expected = np.clip(2 * cv2.GaussianBlur(np.where(gray > 250, 0, 255).astype(np.uint8), (0, 0), 2).astype(np.float32) - 255, 0, 255)
    assert np.array_equal(a, expected.astype(np.uint8))
    assert a[50, 50] == 255 and a[5, 5] == 0
    # The stretch pulls the edge inwards: just inside the square the alpha is below full.
    assert 0 < a[30, 50] < 255


def test_threshold_on_white_background_product_photo():
    rgb = rgb_of("product-casual-shoes-black.jpg")
    a = threshold_mask(rgb)
    cover = (a > 127).mean()
    assert 0.1 < cover < 0.7
    assert a[0, 0] == 0 and a[-1, -1] == 0


@pytest.mark.parametrize("name", ["home-t-shirt.jpg", "home-pants.jpg", "home-dress.jpg", "home-shoes.jpg",
                                  "home-outwear.jpg", "home-hat.jpg"])
def test_auto_mask_finds_garment_on_home_backgrounds(name):
    """On real home photos the garment is found and the edges are background."""
    rgb = rgb_of(name)
    a = auto_mask(rgb)
    cover = (a > 127).mean()
    assert 0.08 < cover < 0.9, cover
    h, w = a.shape
    assert a[h // 2 - h // 8 : h // 2 + h // 8, w // 2 - w // 8 : w // 2 + w // 8].mean() > 127  # centre is garment
    edge = np.concatenate([a[:3].ravel(), a[-3:].ravel(), a[:, :3].ravel(), a[:, -3:].ravel()])
    assert (edge > 127).mean() < 0.35


def test_threshold_fails_where_auto_succeeds_on_a_home_photo():
    """The original method is for white backgrounds; on a floor it sees everything as garment."""
    rgb = rgb_of("home-pants.jpg")
    assert (threshold_mask(rgb) > 127).mean() > 0.95
    assert (auto_mask(rgb) > 127).mean() < 0.7


def composite_case(seed: int):
    """A real garment from a product photo pasted on a real home background, with a light change."""
    from wardrobe.train.segmentation import background, composite

    rng = np.random.default_rng(seed)
    bg = background(rgb_of("home-pants.jpg"), (640, 480), rng)
    photo, truth = composite(rgb_of("product-tshirts-navy-blue.jpg"), bg, rng)
    lit = np.clip(photo.astype(np.float32) * 0.85, 0, 255).astype(np.uint8)
    return lit, truth, bg


def test_plate_method_recovers_garment_despite_light_change():
    from wardrobe.train.segmentation import iou

    photo, truth, plate = composite_case(1)
    assert iou(plate_mask(photo, plate), truth) > 0.8
    assert iou(segment(photo, "plate", plate), truth) > 0.8


def test_auto_method_on_composite():
    from wardrobe.train.segmentation import iou

    photo, truth, _ = composite_case(2)
    assert iou(auto_mask(photo), truth) > 0.7
    assert iou(threshold_mask(photo), truth) < 0.3


def test_plate_method_needs_a_plate():
    with pytest.raises(ValueError, match="calibrate"):
        segment(rgb_of("home-pants.jpg"), "plate", None)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="auto, plate, threshold"):
        segment(rgb_of("home-pants.jpg"), "magic")


def test_skin_is_detected_on_a_worn_garment_but_not_on_navy_cloth():
    """The model's arms and face are skin; the navy T-shirt is not."""
    rgb = rgb_of("product-tshirts-navy-blue.jpg")
    skin = skin_mask(rgb)
    assert skin.mean() > 0.02
    navy = np.all(np.abs(rgb.astype(int) - (40, 45, 70)) < 25, axis=2)
    assert navy.any() and skin[navy].mean() < 0.05
