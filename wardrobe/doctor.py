"""`wardrobe doctor`: check each part of the appliance and say in plain words what is wrong."""

from __future__ import annotations

import time
from pathlib import Path

from wardrobe.errors import WardrobeError

SAMPLE = Path(__file__).resolve().parent / "data" / "health" / "product-jeans-blue.jpg"
"""A photo the model must name: shipped inside the package, so it is there after `pip install .`."""


def check_camera(settings) -> str:
    """Open the camera, take a photo, judge its light."""
    from wardrobe import quality
    from wardrobe.camera import open_camera

    c = settings.camera
    cam = open_camera(c.kind, c.source, (c.width, c.height))
    try:
        rgb = cam.capture()
    finally:
        cam.close()
    luma = quality.median_luma(rgb)
    note = " (too dark: turn on the closet light)" if luma < quality.EMPTY_DARK_MEDIAN else ""
    return f"{c.kind} camera gives {rgb.shape[1]}x{rgb.shape[0]} photos, median brightness {luma:.0f}/255{note}"


def gpiozero_part(name: str):
    """A gpiozero class, or a plain sentence saying what to install."""
    try:
        import gpiozero
    except ImportError as e:
        raise WardrobeError("gpiozero is not installed: in the wardrobe source folder, pip install '.[pi]' (on the Pi, install-pi.sh does "
                            "it, with python3-lgpio)") from e
    return getattr(gpiozero, name)


def check_button(settings) -> str:
    """Claim the button's GPIO pin and read it."""
    import warnings

    Button = gpiozero_part("Button")
    b = settings.button
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            button = Button(b.pin, pull_up=b.pull_up)
    except Exception as e:
        raise WardrobeError(f"cannot reach GPIO{b.pin}: not a Raspberry Pi, lgpio missing, or the user is not in "
                            f"the gpio group ({e})") from e
    try:
        state = "pressed (stuck or wired the wrong way?)" if button.is_pressed else "not pressed"
        return f"button on GPIO{b.pin} reads {state}"
    finally:
        button.close()


def check_light(settings) -> str:
    """Switch the capture LED on and off once."""
    c = settings.camera
    if not c.light_pin:
        return "no capture light configured (camera.light_pin = 0): photos use the room's light"
    from wardrobe.light import CaptureLight

    gpiozero_part("PWMLED")
    try:
        light = CaptureLight(c.light_pin, c.light_brightness, 0.0)
    except Exception as e:
        raise WardrobeError(f"cannot reach the capture light on GPIO{c.light_pin} ({e})") from e
    try:
        light.led.value = c.light_brightness
        time.sleep(0.3)
        light.led.off()
    finally:
        light.close()
    return f"capture light on GPIO{c.light_pin} switched on and off (brightness {c.light_brightness:.0%})"


def check_audio(settings) -> str:
    """Find the output device."""
    from wardrobe.audio import SoundDevicePlayer

    s = settings.speech
    if s.output != "sounddevice":
        return f"audio goes to {s.output!r} (no speaker used)"
    return f"speaker: {SoundDevicePlayer(s.device, s.volume).check()}"


def model_to_load(settings) -> Path:
    """The bundle the closet loads, its signature and checksums checked (models_store.bundle_to_load); a plain
    WardrobeError saying why there is none."""
    from wardrobe.models_store import bundle_to_load

    path, refused = bundle_to_load(settings)
    if refused:
        raise WardrobeError(refused)
    if path is None:
        raise WardrobeError("no model bundle is installed: garments cannot be named (colours still are)")
    return path


def check_model(settings) -> str:
    """Verify the bundle and describe a sample photo with it."""
    from wardrobe.classify import Classifier
    from wardrobe.images import read_image

    path = model_to_load(settings)
    clf = Classifier.load(path, settings.model.runtime)
    t = time.perf_counter()
    pred = clf.predict(read_image(SAMPLE))
    ms = (time.perf_counter() - t) * 1000
    figure = clf.bundle.test_figure(clf.runtime)
    acc = f", {figure}" if figure else ""
    if not clf.agrees_here:
        raise WardrobeError(f"model {clf.bundle.version} at {path}: on this processor it {clf.self_check}")
    precision = f" {clf.bundle.meta['onnx_precision']}" if clf.runtime == "onnx" and "onnx_precision" in clf.bundle.meta else ""
    return (f"model {clf.bundle.version} ({clf.runtime}{precision}{acc}) at {path}; sample photo: {pred.garment} "
            f"{100 * pred.confidence:.0f}% in {ms:.0f} ms; self-check: {clf.self_check}")


def check_voice(settings) -> str:
    """Load the voice of the configured language without falling back, and say its ready message."""
    from wardrobe.errors import SpeechError
    from wardrobe.lang import load
    from wardrobe.speech import load_voice

    s = settings.speech
    lang = load(s.language)
    try:
        voice = load_voice(s.engine, s.model, fallback=False, lang=lang)
    except SpeechError as e:
        raise WardrobeError(f"no voice speaks {lang.name} ({s.language}): {e}") from e
    ready = lang.text("daemon", "ready")
    audio = voice.synthesize(ready)
    if len(audio) == 0:
        raise WardrobeError(f"voice {voice.name} said nothing for {ready!r}")
    return f"voice {voice.name} speaks {lang.name} ({len(audio) / voice.sample_rate:.1f} s for {ready!r})"


def check_updates(settings) -> str:
    """Whose signed models this closet accepts."""
    from wardrobe.signing import Trust, key_label

    m = settings.model
    keys = Trust(m.trusted_keys).keys()
    if m.allow_unsigned:
        return f"UNSIGNED models are accepted (model.allow_unsigned = true); {len(keys)} trusted key(s)"
    if not keys:
        raise WardrobeError(f"no trusted signing keys in {m.trusted_keys}: every new model will be refused "
                            "(add the caretaker's key: install-pi.sh --trust-key NAME.pub)")
    return f"new models must be signed by: {', '.join(sorted(key_label(f.stem, kid) for kid, (f, _) in keys.items()))}"


def check_storage(settings) -> str:
    """The state folder takes files and has room: the press history, the user's garments, their voice labels and
    new models are kept there (a full or read-only card loses them all, and the closet still answers)."""
    import os
    import shutil

    from wardrobe.files import DISK_FULL_BELOW, write_atomic

    state = Path(settings.state_dir)
    where = state
    while not where.exists() and where != where.parent:  # made at first use: its nearest folder must take it
        where = where.parent
    lost = "nothing new is kept (history, corrections, enrolled garments, voice labels, models)"
    probe = where / f".doctor-{os.getpid()}"
    try:
        usage = shutil.disk_usage(where)
        write_atomic(probe, b"", sync=False)
        probe.unlink()
    except OSError as e:
        raise WardrobeError(f"the state folder {state} cannot be written ({e.strerror or e}): {lost}") from None
    if usage.free < DISK_FULL_BELOW:
        raise WardrobeError(f"the disk that holds {state} is full ({usage.free // 1024} KiB free): {lost}; "
                            f"free some space")
    return f"{state} can be written, {usage.free / 2**30:.1f} GiB free"


CHECKS = [("camera", check_camera), ("button", check_button), ("light", check_light), ("audio", check_audio), ("model", check_model),
          ("voice", check_voice),
          ("updates", check_updates), ("storage", check_storage)]


def run_doctor(settings) -> int:
    """Print OK or PROBLEM per part; exit 1 if anything is wrong."""
    problems = 0
    for name, check in CHECKS:
        try:
            print(f"OK       {name}: {check(settings)}", flush=True)
        except Exception as e:  # every failure becomes a plain sentence
            problems += 1
            reason = str(e) or type(e).__name__
            print(f"PROBLEM  {name}: {reason}", flush=True)
    print("all good" if not problems else f"{problems} problem(s) found", flush=True)
    return 1 if problems else 0
