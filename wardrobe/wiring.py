"""Settings in, loaded parts out: the pipeline, the voice, the audio output and the camera.

The one place that turns configuration into working objects, for the command line, the daemon and
the bench alike. No argparse here, and nothing here owns a device for longer than its caller asks.
"""

from __future__ import annotations

import logging
from pathlib import Path

from wardrobe.settings import Settings

log = logging.getLogger(__name__)


def build_pipeline(settings: Settings, closet: bool = True):
    """Load the classifier (tolerating a missing one), the colour namer, the plate and (closet) the enrolled
    garments."""
    from wardrobe.classify import load_classifier
    from wardrobe.lang import load as load_language
    from wardrobe.models_store import bundle_to_load
    from wardrobe.pipeline import Pipeline
    from wardrobe.whitebalance import WhiteBalance, WhiteCard

    path, refused = bundle_to_load(settings)
    if refused:
        log.error("%s", refused)
    classifier, problem = load_classifier(path, settings.model.runtime, settings.model.threads)
    if classifier is None:
        log.warning("garments will not be named: %s", problem)
    plate = read_plate(settings.plate_path()) if settings.vision.segmentation == "plate" else None
    v = settings.vision
    white = WhiteBalance(v.white_balance, WhiteCard.load(settings.white_card_path()))
    return Pipeline(classifier, v, plate=plate, white=white, closet=open_closet(settings, classifier) if closet else None,
                    lang=load_language(settings.speech.language), model_problem=problem)


def read_plate(path: Path):
    """The calibrated empty closet; a damaged one is a configuration problem (exit 2, as a missing one is), not a
    photo the user gave (ImageError, exit 1)."""
    from wardrobe.errors import ConfigError, ImageError
    from wardrobe.images import read_image

    try:
        return read_image(path)
    except ImageError as e:
        raise ConfigError(f"vision.segmentation is \"plate\" but the background photo cannot be used ({e}): "
                          f"run `wardrobe calibrate --background PHOTO` again") from None


def open_closet(settings: Settings, classifier=None, create: bool = False, strict: bool = False):
    """The user's enrolled garments (None when none were ever enrolled), their embeddings brought up to date
    with the classifier's model. A damaged database is moved aside and an empty one started; a closet that
    cannot be used for another reason (a full disk) is logged and skipped, untouched; describing goes on.
    With strict or create, both are raised instead."""
    from wardrobe.closet import Closet, ClosetError

    path = settings.state_dir / "closet.db"
    if path.exists() and not path.is_file():  # a folder or a device where the database belongs: left alone
        problem = ClosetError(f"{path} is not a regular file: move it away to enrol garments")
        if create or strict:
            raise problem
        log.error("enrolled garments unavailable: %s", problem)
        return None
    if not create and not path.is_file():
        return None
    try:
        closet = Closet(path)
        if classifier is not None and classifier.bundle.embedding:
            n = closet.reembed(classifier.bundle.version, lambda jpeg: embed_thumbnail(classifier, jpeg))
            if n:
                log.info("enrolled garments: %d embeddings made again for model %s", n, classifier.bundle.version)
        return closet
    except ClosetError as e:
        if create or (strict and e.damaged):
            raise
        if not e.damaged:
            return read_only_closet(path, e, strict)
        return move_aside(path, e)


def read_only_closet(path: Path, error: Exception, strict: bool = False):
    """The enrolled garments, read alone, when their database cannot be written (a full or read-only disk): the
    user still hears "Your red winter coat." and the caretaker can list them. None (or, with strict, the error)
    when even that fails."""
    from wardrobe.closet import Closet, ClosetError

    try:
        closet = Closet(path, read_only=True)
    except ClosetError:
        if strict:
            raise error from None
        log.error("enrolled garments unavailable: %s", error)
        return None
    if not strict:  # a caretaker's command that writes says why when it fails; one that reads needs no warning
        log.warning("enrolled garments are read only (%s): they are still recognised; nothing new is saved", error)
    return closet


def move_aside(path: Path, error: Exception):
    """A damaged closet database is renamed (kept for the caretaker) and a fresh one started, so the closet
    keeps working; None if even that fails."""
    import time

    from wardrobe.closet import Closet, ClosetError

    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        path.rename(aside)
        for extra in ("-wal", "-shm"):
            side = path.with_name(path.name + extra)
            if side.exists():
                side.rename(aside.with_name(aside.name + extra))
        log.error("the enrolled-garment database was damaged (%s): moved to %s; starting an empty one. "
                  "Restore it from an export with `wardrobe enrolled import FILE`", error, aside)
        return Closet(path)
    except (OSError, ClosetError) as e:
        log.error("enrolled garments unavailable: %s (%s)", error, e)
        return None


def embedding_widths(settings: Settings) -> dict[str, int]:
    """{the version of the model in use: the width of its embedding}, for checking imported garments (a garment of
    that model whose embedding is of another width could never be matched); empty without a model."""
    import numpy as np

    from wardrobe.classify import load_classifier
    from wardrobe.models_store import bundle_to_load

    classifier, _ = load_classifier(bundle_to_load(settings)[0], settings.model.runtime, settings.model.threads)
    if classifier is None or not classifier.bundle.embedding:
        return {}
    embedding = classifier.predict(np.full((64, 64, 3), 128, np.uint8)).embedding
    return {classifier.bundle.version: len(embedding)} if embedding is not None else {}


def embed_thumbnail(classifier, jpeg: bytes):
    """The classifier's embedding of a stored thumbnail."""
    from wardrobe.images import decode

    return classifier.predict(decode(jpeg, "an enrolled garment's thumbnail")).embedding


def load_voice(settings: Settings):
    """The configured voice (espeak-ng instead when it cannot load and speech.fallback is on)."""
    from wardrobe.lang import load as load_language
    from wardrobe.speech import load_voice as load

    s = settings.speech
    return load(s.engine, s.model, s.fallback, load_language(s.language))


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


def open_microphone(settings: Settings):
    """The configured microphone for voice labels (None: "none"); AudioError when it cannot be opened."""
    from wardrobe.audio import SoundDeviceMicrophone, WavMicrophone

    m = settings.speech.microphone
    if m == "none":
        return None
    if m == "sounddevice":
        return SoundDeviceMicrophone()
    return WavMicrophone(Path(m))


def open_camera(settings: Settings):
    """The configured camera (CameraError when it cannot be opened)."""
    from wardrobe.camera import open_camera as open_

    c = settings.camera
    return open_(c.kind, c.source, (c.width, c.height))
