"""Settings in, loaded parts out: the pipeline, the voice, the audio output and the camera.

The one place that turns configuration into working objects, for the command line, the daemon and
the bench alike. No argparse here, and nothing here owns a device for longer than its caller asks.
"""

from __future__ import annotations

import logging
from pathlib import Path

from wardrobe.settings import Settings, default_bundle

log = logging.getLogger(__name__)


def build_pipeline(settings: Settings):
    """Load the classifier (tolerating a missing one), the colour namer and the plate."""
    from wardrobe.classify import load_classifier
    from wardrobe.colours import ColourNamer
    from wardrobe.images import read_image
    from wardrobe.pipeline import Pipeline

    classifier, problem = load_classifier(default_bundle(settings), settings.model.runtime, settings.model.threads)
    if classifier is None:
        log.warning("garments will not be named: %s", problem)
    plate = read_image(settings.plate_path()) if settings.vision.segmentation == "plate" else None
    return Pipeline(classifier, ColourNamer(settings.vision.colour_naming), settings.vision.segmentation, plate,
                    settings.vision.colour_k or None, problem, settings.vision.family_hint_min)


def load_voice(settings: Settings):
    """The configured voice (espeak-ng instead when it cannot load and speech.fallback is on)."""
    from wardrobe.speech import load_voice as load

    s = settings.speech
    return load(s.engine, s.model, s.fallback)


def open_player(settings: Settings, wav: Path | None = None, check: bool = False):
    """The configured audio output, or a WAV file sink at wav. check: probe the device now (AudioError)."""
    from wardrobe.audio import NullPlayer, SoundDevicePlayer, WavSink

    s = settings.speech
    if wav is not None:
        return WavSink(path=wav)
    if s.output == "wav":
        return WavSink(folder=settings.state_dir / "speech")
    if s.output == "none":
        return NullPlayer()
    player = SoundDevicePlayer(s.device, s.volume)
    if check:
        player.check()
    return player


def open_camera(settings: Settings):
    """The configured camera (CameraError when it cannot be opened)."""
    from wardrobe.camera import open_camera as open_

    c = settings.camera
    return open_(c.kind, c.source, (c.width, c.height))
