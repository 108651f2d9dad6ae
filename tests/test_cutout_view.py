"""The garment cut out on white as a second view of the garment: the bundle says how much it counts
(cutout_weight, chosen on validation by `wardrobe train evaluate`), and the photo alone still says whether a
garment is there at all."""

from __future__ import annotations

import tempfile
from dataclasses import replace

import numpy as np
import pytest

from tests.conftest import SHIPPED, rgb_of
from wardrobe import settings as settings_module
from wardrobe import wiring
from wardrobe.classify import Classifier
from wardrobe.pipeline import garment_views
from wardrobe.whitebalance import WhiteBalance


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier.load(SHIPPED)


@pytest.fixture
def bundle(tmp_path):
    """A private copy of the shipped bundle to edit."""
    import shutil

    shutil.copytree(SHIPPED, tmp_path / "bundle")
    return tmp_path / "bundle"


@pytest.mark.parametrize("w", [0.0, 0.3, 1.0])
def test_the_cut_out_counts_as_much_as_the_bundle_says(clf, w):
    photo, cut = garment_views(rgb_of("home-outwear.jpg"), WhiteBalance("auto", None))
    assert cut.shape != photo.shape  # a garment stands out: there is a cut-out
    (p, *_), (q, *_) = clf.probabilities_of([photo, cut])
    mine = Classifier(replace(clf.bundle, cutout_weight=w), clf.backend, clf.runtime)
    mixed, alone = mine.predict_with_cutout(photo, cut)
    classes = clf.bundle.classes
    expect = (1 - w) * p + w * q
    for garment, prob in mixed.ranked:
        assert prob == pytest.approx(expect[classes.index(garment)], abs=1e-5)
    assert mixed.ranked[0][0] == max((g for g in classes if g != clf.bundle.background_class),
                                     key=lambda g: expect[classes.index(g)])
    assert mixed.background == pytest.approx(p[classes.index(clf.bundle.background_class)], abs=1e-6)
    assert [g for g, _ in alone.ranked] == [g for g, _ in clf.predict(cut).ranked]


def test_describe_reads_the_garment_from_both_views_when_the_bundle_says_so(clf):
    """The same describe path the user hears: with a cut-out weight the spoken garment's confidence is the
    mixed one; with none, the photo's own."""
    rgb = rgb_of("home-outwear.jpg")
    photo, cut = garment_views(rgb, WhiteBalance("auto", None))
    (p, *_), (q, *_) = clf.probabilities_of([photo, cut])
    with tempfile.TemporaryDirectory() as state:
        pipe = wiring.build_pipeline(settings_module.load(None, {"": {"state_dir": state}}), closet=False)
    classes = clf.bundle.classes
    for w in (0.0, 0.5):
        pipe.classifier = Classifier(replace(clf.bundle, cutout_weight=w), clf.backend, clf.runtime)
        d = pipe.describe(rgb)
        assert d.garment_confidence == pytest.approx(((1 - w) * p + w * q)[classes.index(d.garment)], abs=1e-5)


@pytest.mark.parametrize("weight", [-0.1, 1.5, "half", True])
def test_a_bundle_with_a_bad_cutout_weight_is_refused(bundle, weight):
    import json

    from wardrobe.bundle import Bundle, write_manifest
    from wardrobe.errors import ModelError

    meta = json.loads((bundle / "bundle.json").read_text())
    meta["cutout_weight"] = weight
    (bundle / "bundle.json").write_text(json.dumps(meta))
    write_manifest(bundle)
    with pytest.raises(ModelError, match="cutout_weight must be a number from 0 to 1"):
        Bundle.load(bundle)


def test_the_sweep_at_the_bundles_own_weight_is_what_describe_said():
    """evaluate's cut-out sweep recomputes the sentence's garments from the two views: at the weight the rows were
    made with, it gives back the rows' own figures."""
    from wardrobe.train.evaluate import SURE_SWEEP, user_figures, with_cutout_weight

    classes = ["T-shirt", "shirt", "top", "no garment"]
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        p, q = rng.dirichlet(np.ones(4) * 0.5), rng.dirichlet(np.ones(4) * 0.5)
        mixed = 0.7 * p + 0.3 * q
        mixed[3] = -1
        order = np.argsort(-mixed)[:3]
        alternatives = [(classes[j], float(mixed[j])) for j in order]
        rows.append({"truth": classes[i % 3], "said": alternatives[0][0] if i % 10 else None,
                     "alternatives": alternatives, "views": [p.tolist(), q.tolist()]})
    for sure in SURE_SWEEP:
        again = [with_cutout_weight(r, 0.3, classes, "no garment") for r in rows]
        assert user_figures(again, sure) == pytest.approx(user_figures(rows, sure))
    photo_only = [with_cutout_weight(r, 0.0, classes, "no garment") for r in rows]
    assert user_figures(photo_only) != user_figures(rows)
