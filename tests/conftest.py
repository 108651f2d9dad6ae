"""Shared fixtures: the real sample photos, the real Piper voice, and a speech recogniser."""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "assets" / "photos"
SHIPPED = ROOT / "models" / "default"
KEYS = Path(tempfile.mkdtemp(prefix="wardrobe-test-keys-"))
"""This test session's signing keys: caretaker.key signs the test bundles; trusted/ is the closets' trust folder."""
SIGNING_KEY = KEYS / "caretaker.key"
TRUSTED = KEYS / "trusted"


def pytest_configure(config) -> None:
    """A fresh caretaker key pair, trusted by every closet the tests start (WARDROBE_TRUSTED_KEYS)."""
    from wardrobe.signing import keygen

    if not SIGNING_KEY.exists():
        keygen(KEYS / "caretaker", "test caretaker")
        TRUSTED.mkdir()
        shutil.copy(KEYS / "caretaker.pub", TRUSTED / "caretaker.pub")
    os.environ["WARDROBE_TRUSTED_KEYS"] = str(TRUSTED)


def pytest_unconfigure(config) -> None:
    shutil.rmtree(KEYS, ignore_errors=True)


def trust():
    """What the test closets trust: the session's caretaker key, nothing unsigned."""
    from wardrobe.signing import Trust

    return Trust(TRUSTED)


def photo(name: str) -> Path:
    """A sample photo from assets/photos (real photos from the shared data, test split)."""
    p = PHOTOS / name
    assert p.is_file(), p
    return p


def rgb_of(name: str) -> np.ndarray:
    """A sample photo decoded to RGB."""
    from wardrobe.images import read_image

    return read_image(photo(name))


def sources() -> list[dict]:
    """assets/photos/SOURCES.csv: which dataset and label each sample came from."""
    with open(PHOTOS / "SOURCES.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def piper_voice():
    """The real bundled Piper voice, loaded once."""
    from wardrobe.speech import PiperVoice

    return PiperVoice()


class Recogniser:
    """pocketsphinx with a JSGF grammar shaped like wardrobe's sentences."""

    def __init__(self, colours: list[str], garments: list[str]) -> None:
        from pocketsphinx import Decoder, get_model_path

        model = Path(get_model_path()) / "en-us"
        words = {w.split("(")[0] for w in (line.split(" ", 1)[0] for line in
                 (model / "cmudict-en-us.dict").read_text().splitlines())}

        def speakable(phrase: str) -> bool:
            return all(w in words for w in phrase.lower().split())

        colours = sorted({c.lower() for c in colours if speakable(c)})
        garments = sorted({g.lower() for g in garments if speakable(g)})
        grammar = f"""#JSGF V1.0;
grammar wardrobe;
public <s> = [<hedge>] [<article>] [<colour>] <garment> [with <colour>] [maybe <article> <garment>];
<hedge> = probably;
<article> = a | an;
<colour> = {" | ".join(colours)};
<garment> = {" | ".join(garments)};
"""
        self.path = Path(os.environ.get("TMPDIR", "/tmp")) / f"wardrobe-test-{os.getpid()}.gram"
        self.path.write_text(grammar)
        self.decoder = Decoder(hmm=str(model / "en-us"), dict=str(model / "cmudict-en-us.dict"),
                               jsgf=str(self.path), loglevel="FATAL")

    def transcribe(self, audio: np.ndarray, rate: int) -> str:
        """Words heard in mono int16 audio."""
        from scipy.signal import resample_poly

        pcm = resample_poly(audio.astype(np.float32), 16000, rate).clip(-32768, 32767).astype(np.int16)
        self.decoder.start_utt()
        self.decoder.process_raw(pcm.tobytes(), full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return hyp.hypstr if hyp else ""


@pytest.fixture(scope="session")
def recogniser():
    """A recogniser over the whole spoken vocabulary (every palette colour, every garment class)."""
    from wardrobe.colours import FAMILIES, load_colour_model
    from wardrobe.taxonomy import Taxonomy

    model = load_colour_model() or {"palette": []}
    colours = [p["name"] for p in model["palette"]] + list(FAMILIES)
    return Recogniser(colours, Taxonomy.load().classes)


class SmallDisk:
    """A real, small filesystem (tmpfs) that a test can fill to the last byte, then free again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ballast = path / "ballast"

    def fill(self) -> None:
        """Write until the disk refuses (ENOSPC), as a disk filled by something else would."""
        import errno

        with open(self.ballast, "ab", buffering=0) as f:
            for size in (1 << 16, 4096, 512, 1):
                block = b"\0" * size
                try:
                    while True:
                        f.write(block)
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
        assert shutil.disk_usage(self.path).free < 4096

    def free(self) -> None:
        self.ballast.unlink()


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MiB tmpfs mounted for the test (needs root, as in CI; skipped elsewhere, failed in CI)."""
    import subprocess

    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    root = [] if os.geteuid() == 0 else ["sudo", "-n"]
    r = subprocess.run([*root, "mount", "-t", "tmpfs", "-o", f"size=8m,mode=0755,uid={os.getuid()},gid={os.getgid()}",
                        "wardrobe-test", str(mnt)], capture_output=True, text=True)
    if r.returncode:
        if "CI" in os.environ:
            pytest.fail(f"cannot mount a tmpfs to fill: {r.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here (root needed): {r.stderr.strip()}")
    yield SmallDisk(mnt)
    subprocess.run([*root, "umount", "-l", str(mnt)], check=False)
