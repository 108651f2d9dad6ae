"""Property-based fuzzing (hypothesis) of the three parsers that read what a stranger may write: the config file,
a model bundle's sidecars and a closet file to import. Any input gives a clean result or one WardrobeError,
never another exception. Bounded: a fixed number of examples each, no deadline (CI machines differ)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SHIPPED
from wardrobe.errors import WardrobeError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)
toml_scalars = (st.integers(min_value=-2**63, max_value=2**63 - 1).map(str)
                | st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).replace("inf", "inf"))
                | st.text(max_size=12).map(json.dumps) | st.sampled_from(["true", "false", "[]", "[1, 2]", "{}",
                                                                          '"-5"', "1e999", "nan", "-inf"]))
SECTIONS = {"vision": ["segmentation", "colour_k", "family_hint_min", "colour_pixel_weight", "colour_head_sure", "colour_learned_weight",
                       "colour_hedge_min", "colour_view", "colour_names", "white_balance", "aiming", "background"],
            "model": ["bundle", "runtime", "threads", "trusted_keys", "allow_unsigned"],
            "speech": ["engine", "volume", "microphone", "label_seconds", "model", "output"],
            "camera": ["kind", "source", "width", "height", "light_pin", "light_brightness"],
            "button": ["pin", "hold_s", "bounce_s"],
            "daemon": ["history_keep", "history_max_mb", "watchdog_s", "retry_max_s"], "nonsense": ["x"]}


@st.composite
def config_files(draw) -> bytes:
    lines = []
    for section in draw(st.lists(st.sampled_from(sorted(SECTIONS)), max_size=3, unique=True)):
        lines.append(f"[{section}]")
        for key in draw(st.lists(st.sampled_from(SECTIONS[section]), max_size=3, unique=True)):
            lines.append(f"{key} = {draw(toml_scalars)}")
    text = "\n".join(lines).encode()
    return draw(st.one_of(st.just(text), st.binary(max_size=60), st.just(text + draw(st.binary(max_size=8)))))


@FUZZ
@given(config_files())
def test_the_config_loader_gives_settings_or_one_error(data):
    from wardrobe import settings as config

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "config.toml"
        f.write_bytes(data)
        try:
            s = config.load(f, {"": {"state_dir": d}})
        except WardrobeError as e:
            assert str(e) and "\n" not in str(e)
            return
        assert 0 <= s.model.threads <= 64 and 0.5 <= s.speech.label_seconds <= 30


BUNDLE_FIELDS = ["format_version", "version", "created", "arch", "classes", "preprocess", "runtimes",
                 "default_runtime", "temperature", "colour_families", "occasions", "patterns", "background_class",
                 "embedding", "self_check"]


@FUZZ
@given(st.dictionaries(st.sampled_from(BUNDLE_FIELDS), json_values, max_size=4), st.booleans(),
       st.one_of(st.none(), json_values))
def test_the_bundle_loader_gives_a_bundle_or_one_error(changes, drop, manifest_files):
    from wardrobe.bundle import Bundle, write_manifest
    from wardrobe.classify import Classifier

    with tempfile.TemporaryDirectory() as d:
        b = Path(d) / "bundle"
        b.mkdir()
        for name in ("bundle.json", "taxonomy.csv"):
            shutil.copy(SHIPPED / name, b / name)
        (b / "model.onnx").symlink_to(SHIPPED / "model.onnx")  # Bundle.load reads it only to hash it
        meta = json.loads((b / "bundle.json").read_text())
        meta.update(changes)
        if drop and changes:
            meta.pop(next(iter(changes)))
        meta["runtimes"] = meta.get("runtimes") if "runtimes" in changes else {"onnx": "model.onnx"}
        (b / "bundle.json").write_text(json.dumps(meta))
        write_manifest(b)
        if manifest_files is not None:
            (b / "manifest.json").write_text(json.dumps({"format_version": 1, "files": manifest_files}))
        try:
            bundle = Bundle.load(b)
        except WardrobeError:
            return
        assert isinstance(bundle.classes, list) and bundle.temperature > 0
        try:
            Classifier(bundle, None, "onnx").disagreement()  # the self-check's reading of the references
        except WardrobeError:
            pass
        except AttributeError:  # no backend here: it got past reading the references, which is what is tested
            pass


@st.composite
def closet_rows(draw):
    return (draw(st.one_of(st.none(), st.text(max_size=100))),
            draw(st.one_of(st.none(), st.text(max_size=70))),
            draw(st.one_of(st.binary(max_size=64), st.just(b"\xff\xd8\xff\xe0"), st.just(GOOD_JPEG))),
            draw(st.one_of(st.binary(max_size=64), st.just(np.ones(1280, np.float32).tobytes()),
                           st.just(np.full(1280, np.nan, np.float32).tobytes()))),
            draw(st.one_of(st.text(max_size=10), st.just("v")).filter(lambda v: True)),
            draw(st.one_of(json_values.map(json.dumps), st.text(max_size=30),
                           st.just('[{"lab": [50, 0, 0], "share": 1, "name": "gray"}]'))),
            draw(st.one_of(st.none(), st.binary(max_size=32))))


def _jpeg() -> bytes:
    from wardrobe.closet import thumbnail

    return thumbnail(np.full((32, 32, 3), 120, np.uint8))


GOOD_JPEG = _jpeg()


@FUZZ
@given(st.lists(closet_rows(), min_size=1, max_size=3))
def test_the_closet_import_adds_all_or_nothing_and_never_crashes(rows):
    from wardrobe.closet import Closet

    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "export.db"
        con = sqlite3.connect(src)
        con.execute("CREATE TABLE garments (id INTEGER PRIMARY KEY, name TEXT, voice_label TEXT, created REAL, "
                    "thumbnail BLOB, embedding BLOB, model_version TEXT, colours TEXT, voice_clip BLOB)")
        con.executemany("INSERT INTO garments (name, voice_label, created, thumbnail, embedding, model_version, "
                        "colours, voice_clip) VALUES (?, ?, 0, ?, ?, ?, ?, ?)", rows)
        con.commit()
        con.close()
        closet = Closet(Path(d) / "closet.db")
        try:
            added, _ = closet.import_from(src)
        except WardrobeError as e:
            assert "\n" not in str(e)
            assert closet.garments() == []  # nothing added
            return
        assert added == len(rows) and len(closet.garments()) == len(rows)
        for g in closet.garments():
            assert np.all(np.isfinite(g.embedding)) and (g.name is None or len(g.name) <= 80)
