"""Command line: arguments become settings here; nothing past this module sees argparse."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from wardrobe import __version__
from wardrobe.errors import AudioError, ImageError, WardrobeError
from wardrobe.lang import available as available_languages
from wardrobe.settings import (
    AUDIO_OUTPUTS,
    CAMERA_KINDS,
    COLOUR_WORDS,
    NAMING_MODES,
    RUNTIMES,
    SEGMENTATION_METHODS,
    VOICE_ENGINES,
)

log = logging.getLogger("wardrobe")



def counted(lo: int, hi: int):
    """An argparse type: a whole number from lo to hi (argparse turns the error into one line, exit 2)."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= n <= hi:
            raise argparse.ArgumentTypeError(f"{n} is not from {lo} to {hi}")
        return n
    return parse

def add_common(p: argparse.ArgumentParser) -> None:
    """Flags every runtime command shares."""
    p.add_argument("--config", type=Path, help="TOML config file (default: /etc/wardrobe/config.toml if present)")
    p.add_argument("--state-dir", type=Path, help="writable state directory (default /var/lib/wardrobe)")
    p.add_argument("--model", type=Path, help="model bundle directory")
    p.add_argument("--runtime", choices=RUNTIMES, help="classifier runtime (default: the bundle's)")
    p.add_argument("--segmentation", choices=SEGMENTATION_METHODS, help="background removal method")
    p.add_argument("--colour-k", type=int, help="KMeans clusters (0: chosen per photo)")
    p.add_argument("--colour-naming", choices=NAMING_MODES, help="CSS3 naming space")
    p.add_argument("--colour-names", choices=COLOUR_WORDS, help="colour words said: basic, plain, descriptive")
    p.add_argument("--voice", choices=VOICE_ENGINES, help="speech engine")
    p.add_argument("--voice-model", type=Path, help="Piper .onnx voice or Coqui model directory")
    p.add_argument("--language", choices=available_languages(), help="the language spoken (default: en)")
    p.add_argument("--debug", action="store_true", help="log per-stage timings and details")


def add_devices(p: argparse.ArgumentParser) -> None:
    """Flags of the commands that own devices (run, doctor), plus the common ones."""
    p.add_argument("--camera", choices=CAMERA_KINDS, help="camera backend")
    p.add_argument("--camera-source", help="USB device or photo folder")
    p.add_argument("--output", choices=AUDIO_OUTPUTS, help="audio output")
    p.add_argument("--button-pin", type=int, help="BCM pin of the button")
    add_common(p)


def add_remote(p: argparse.ArgumentParser) -> None:
    """Flags of the caretaker commands that reach a closet over SSH."""
    p.add_argument("--host", help="the closet, when it is a ~/.ssh/config alias without user@")
    p.add_argument("--ssh-option", action="append", default=[], metavar="KEY=VALUE",
                   help="extra ssh option, e.g. IdentityFile=~/.ssh/closet or Port=2222 (repeatable)")
    p.add_argument("--remote-wardrobe", default="sudo -u wardrobe /opt/wardrobe/venv/bin/wardrobe",
                   help="the wardrobe command on the closet")
    p.add_argument("--reload-command", default="sudo systemctl reload wardrobe", help="reloads the appliance")
    p.add_argument("--check-command", default="systemctl is-active --quiet wardrobe",
                   help="succeeds while the appliance runs")


def overrides(args: argparse.Namespace) -> dict:
    """Flags that were given, as settings overrides (a subcommand without a flag leaves it unset)."""
    def flag(name: str):
        return getattr(args, name, None)

    pairs = {
        "vision": {"segmentation": flag("segmentation"), "colour_k": flag("colour_k"),
                   "colour_naming": flag("colour_naming"), "colour_names": flag("colour_names")},
        "model": {"bundle": flag("model"), "runtime": flag("runtime")},
        "speech": {"engine": flag("voice"), "model": flag("voice_model"), "output": flag("output"),
                   "language": flag("language")},
        "": {"state_dir": flag("state_dir")},
        "camera": {"kind": flag("camera"), "source": flag("camera_source")},
        "button": {"pin": flag("button_pin")},
    }
    return {sec: {k: v for k, v in kv.items() if v is not None} for sec, kv in pairs.items()}


def add_state(p: argparse.ArgumentParser) -> None:
    """The only flags of the commands that read the closet's state and nothing else (web, corrections)."""
    p.add_argument("--config", type=Path, help="TOML config file (default: /etc/wardrobe/config.toml if present)")
    p.add_argument("--state-dir", type=Path, help="writable state directory (default /var/lib/wardrobe)")
    p.add_argument("--debug", action="store_true", help="log details")


def build_parser() -> argparse.ArgumentParser:
    """The wardrobe command and its subcommands."""
    p = argparse.ArgumentParser(prog="wardrobe", description="A talking closet assistant.")
    p.add_argument("--version", action="version", version=f"wardrobe {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("describe", help="describe garment photos, print and speak the sentence")
    d.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    d.add_argument("--json", action="store_true", help="print one JSON object per photo (not spoken, unless --wav "
                                                         "or --wav-dir)")
    d.add_argument("--wav", type=Path, help="write the speech to this WAV file instead of playing (one photo)")
    d.add_argument("--wav-dir", type=Path, help="write one WAV per photo into this folder instead of playing")
    d.add_argument("--quiet", action="store_true", help="do not play on the speaker (--wav/--wav-dir still write)")
    d.add_argument("--detail", action="store_true", help="the long-press sentence (confidence, alternatives)")
    d.add_argument("--debug-dir", type=Path, help="write mask overlays and colour swatches as PNGs here")
    add_common(d)

    c = sub.add_parser("calibrate", help="store the empty closet (plate method) or find the white reference card")
    c.add_argument("--background", type=Path, metavar="PHOTO", help="a photo of the empty closet, light on")
    c.add_argument("--white", type=Path, metavar="PHOTO", help="a photo showing the white card fixed in the closet")
    add_common(c)

    b = sub.add_parser("bench", help="measure per-stage speed (medians) against the original method")
    b.add_argument("photos", nargs="*", type=Path, help="photos (default: the 20 samples in assets/photos in a checkout, else the 8 "
                   "packaged health photos: compare figures from the same kind of install)")
    b.add_argument("--repeat", type=counted(1, 1000), default=5, help="timed runs per photo (1 to 1000)")
    b.add_argument("--out", type=Path, help="also write the results as JSON here")
    b.add_argument("--daemon", action="store_true", help="measure the running appliance: cold start, idle memory, "
                                                           "press to first audio")
    b.add_argument("--web", action="store_true", help="measure the caretaker's page: idle memory, before and after "
                                                        "serving pages")
    add_common(b)

    add_devices(sub.add_parser("run", help="the appliance: wait for the button, describe, speak (systemd runs this)"))
    add_devices(sub.add_parser("doctor", help="check camera, button, audio, model and voice; say what is wrong"))

    ms = sub.add_parser("models", help="list installed model versions (here, or on user@host)")
    ms.add_argument("target", nargs="?", metavar="USER@HOST")
    add_remote(ms)
    add_state(ms)
    pm = sub.add_parser("push-model", help="copy a bundle to a closet over SSH, verify, switch, reload, check")
    pm.add_argument("bundle", type=Path)
    pm.add_argument("target", metavar="USER@HOST", help="the closet (or a Host alias of ~/.ssh/config)")
    pm.add_argument("--keep", type=counted(1, 100), default=3, help="installed versions to keep on the closet")
    pm.add_argument("--limit-kbps", type=int, default=0, help="cap the copy's bandwidth (slow links)")
    add_remote(pm)
    add_state(pm)
    im = sub.add_parser("install-model", help="verify, install and switch to a model bundle (health-checked)")
    im.add_argument("bundle", type=Path)
    im.add_argument("--keep", type=counted(1, 100), default=3, help="installed versions to keep")
    add_state(im)
    rb = sub.add_parser("rollback", help="switch back to the previous (or the named) model version")
    rb.add_argument("args", nargs="*", metavar="[USER@HOST] [VERSION]")
    add_remote(rb)
    add_state(rb)

    mt = sub.add_parser("match", help="do these match? compare a garment with another (as a double press does)")
    mt.add_argument("photos", nargs=2, type=Path, metavar="PHOTO", help="the first garment, then the second")
    mt.add_argument("--json", action="store_true", help="print the verdict as JSON")
    add_common(mt)
    en = sub.add_parser("enrol", help="teach the closet one of the user's own garments from its photos")
    en.add_argument("photos", nargs="+", type=Path, metavar="PHOTO", help="photos of the garment (several angles help)")
    en.add_argument("--name", required=True, help='what to call it, e.g. "navy cable-knit"')
    en.add_argument("--on", dest="target", metavar="USER@HOST", help="enrol on this closet over SSH (photos copied)")
    en.add_argument("--json", action="store_true", help="print one result per photo as JSON (the caretaker's page "
                    "reads it)")
    en.add_argument("--add-view", action="store_true",
                    help="the name is already enrolled and these photos show that same garment, though the closet "
                         "does not recognise them as it")
    add_remote(en)
    add_common(en)
    el = sub.add_parser("enrolled", help="list the enrolled garments; rename, remove, export or import them")
    el.add_argument("action", nargs="?", default="list", choices=("list", "rename", "remove", "export", "import"))
    el.add_argument("args", nargs="*", metavar="ARG", help="rename ID|NAME NEW-NAME; remove ID|NAME; export FILE; "
                                                           "import FILE")
    add_state(el)

    kg = sub.add_parser("keygen", help="make the caretaker's signing key pair: NAME.key (secret) and NAME.pub")
    kg.add_argument("name", type=Path, metavar="NAME", help="path and name of the pair, e.g. ~/wardrobe-signing")
    kg.add_argument("--comment", default="", help="a note kept in the .pub file (e.g. who holds the key)")
    sg = sub.add_parser("sign", help="sign a model bundle with the caretaker's key (after checking its manifest)")
    sg.add_argument("bundle", type=Path)
    sg.add_argument("--key", type=Path, required=True, help="the private key made by `wardrobe keygen` (NAME.key)")

    wb = sub.add_parser("web", help="serve the caretaker's page; `wardrobe web password` sets its password")
    wb.add_argument("action", nargs="?", choices=("serve", "password", "certificate"), default="serve",
                    help="serve (the default), password (reads the new password from standard input) or "
                         "certificate (makes a self-signed HTTPS certificate in the state folder)")
    wb.add_argument("--address", help="HOST:PORT to serve on (default: the config's [web] address, 0.0.0.0:8080)")
    wb.add_argument("--name", action="append", default=[], metavar="HOST",
                    help="certificate: a host name or IP address the page is opened by (repeat; default: this "
                         "machine's name, NAME.local, localhost, 127.0.0.1, ::1)")
    wb.add_argument("--force", action="store_true", help="certificate: replace an existing certificate")
    add_state(wb)
    co = sub.add_parser("corrections", help="the caretaker's corrections: export them as a training data folder")
    co.add_argument("action", choices=("export",))
    co.add_argument("folder", type=Path, metavar="DIR", help="a new folder; train with --data clothing-photos=DIR")
    add_state(co)

    sub.add_parser("train", help="the companion training script (see `wardrobe train --help`)", add_help=False)
    return p


def setup_logging(debug: bool) -> None:
    """Log to stderr (the journal under systemd)."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def path_once(e: Exception, photo) -> str:
    """An error about a photo without its path in front: the line already starts with it."""
    return str(e).removeprefix(f"{photo}: ").removeprefix(f"{shown(photo)}: ")


def cmd_describe(args: argparse.Namespace, settings) -> int:
    """Describe each photo; a bad photo reports an error and the rest still run."""
    from wardrobe import wiring
    from wardrobe.debug import write_debug
    from wardrobe.files import check_speech_file
    from wardrobe.speech import Speaker

    if args.wav and len(args.photos) != 1:
        raise WardrobeError("--wav takes one photo; use --wav-dir for several")
    if args.wav and args.wav_dir:
        raise WardrobeError("--wav and --wav-dir: choose one")
    if args.wav:
        try:
            check_speech_file(args.wav, "--wav")
        except ValueError as e:
            raise WardrobeError(str(e)) from None
    for flag, folder in (("--debug-dir", args.debug_dir), ("--wav-dir", args.wav_dir)):
        if folder and folder.exists() and not folder.is_dir():  # said before the describing, not after it
            raise WardrobeError(f"{flag} {folder} is a file, not a folder")
    if args.wav_dir:
        try:
            args.wav_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise WardrobeError(f"cannot write speech into {args.wav_dir}: {e.strerror or e}") from None
    pipeline = wiring.build_pipeline(settings)
    # Files are written whenever asked for; the speaker is used unless --quiet or --json (JSON is for programs).
    to_files = bool(args.wav or args.wav_dir)
    speaker = None
    if to_files or not (args.quiet or args.json):
        # With --wav-dir each photo gets its own file sink, set below.
        try:
            player = None if args.wav_dir else wiring.open_player(settings, wav=args.wav)
        except AudioError as e:  # no sound card here: the other ways to hear or read it still work
            raise AudioError(f"{e} (or describe without a speaker: {WITHOUT_A_SPEAKER})") from None
        speaker = Speaker(wiring.load_voice(settings), player)
    wav_names: set[str] = set()
    failures = 0
    for photo in args.photos:
        try:
            d = pipeline.describe_file(photo)
        except WardrobeError as e:
            failures += 1
            print(json.dumps({"image": shown(photo), "error": str(e)}) if args.json
                  else f"{shown(photo)}: error: {path_once(e, photo)}", flush=True)
            continue
        text = d.detailed() if args.detail else d.sentence
        if args.debug_dir:
            try:
                write_debug(args.debug_dir, photo, pipeline, d)
            except WardrobeError as e:  # the description is still said and printed
                failures += 1
                log.error("no debug pictures for %s: %s", shown(photo), e)
        wav = args.wav
        if speaker is not None:
            try:
                if args.wav_dir:
                    wav = args.wav_dir / unique_wav_name(photo, wav_names)
                    speaker.player = wiring.open_player(settings, wav=wav)
                speaker.say(text if args.detail else d.clauses)
            except WardrobeError as e:
                failures += 1
                wav = None
                why = str(e)
                if isinstance(e, AudioError) and not to_files:  # no speaker after all: said once, then printed only
                    speaker = None
                    why += f" (no speaker here? {WITHOUT_A_SPEAKER}; the rest are printed only)"
                log.error("could not speak for %s: %s", shown(photo), why)
        if args.json:
            out = d.to_json()
            out["image"], out["sentence"] = shown(photo), text
            if to_files:
                out["wav"] = str(wav) if wav else None
            print(json.dumps(out, ensure_ascii=False), flush=True)
        else:
            print(f"{shown(photo)}: {text}" + (f" [{shown(wav)}]" if to_files and wav else ""), flush=True)
        log.debug("%s timings: %s", photo, d.timings_ms)
    return 1 if failures else 0


WITHOUT_A_SPEAKER = "--quiet prints the sentence, --wav FILE or --wav-dir DIR writes the speech"


def shown(path: Path | str) -> str:
    """A file name as printed: bytes that are not UTF-8 (kept by Python as surrogate escapes) shown as U+FFFD, so
    the output stays UTF-8 text and JSON."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def unique_wav_name(photo: Path, used: set[str]) -> str:
    """PHOTO.wav, or PHOTO-2.wav, -3, ... when photos from different folders share a name."""
    name, n = f"{photo.stem}.wav", 1
    while name in used:
        n += 1
        name = f"{photo.stem}-{n}.wav"
    used.add(name)
    return name


def cmd_calibrate(args: argparse.Namespace, settings) -> int:
    """Store the empty-closet photo (temp file + rename) and/or the white card's place."""
    if not (args.background or args.white):
        raise WardrobeError("calibrate needs --background PHOTO (the empty closet) or --white PHOTO (the white card)")
    if args.white:
        calibrate_white(args.white, settings)
    if args.background:
        calibrate_background(args.background, settings)
    return 0


def calibrate_white(photo: Path, settings) -> None:
    """Find the white card in the photo and store where it is; every capture is then corrected by it."""
    from wardrobe.images import read_image
    from wardrobe.whitebalance import find_white_card

    card = find_white_card(read_image(photo))
    target = settings.white_card_path()
    try:
        card.save(target)
    except OSError as e:
        raise WardrobeError(f"cannot write {target}: {e.strerror or e}; use --state-dir to choose a writable folder") from e
    x, y, w, h = card.box
    print(f"white card found at {100 * x:.0f}%,{100 * y:.0f}% of the frame ({100 * w:.0f}% x {100 * h:.0f}%); stored in "
          f"{target}. Keep it there: with vision.white_balance = \"auto\" or \"card\" every photo is corrected by it")


PLATE_MIN_SIDE = 64
"""The smallest empty-closet photo kept: masks are worked out at 128 pixels a side."""


def calibrate_background(photo: Path, settings) -> None:
    """Check and store the empty-closet photo (written whole, synced)."""
    import cv2

    from wardrobe import quality
    from wardrobe.files import write_atomic
    from wardrobe.images import read_image

    rgb = read_image(photo)
    if min(rgb.shape[:2]) < PLATE_MIN_SIDE:
        raise WardrobeError(f"the background photo is {rgb.shape[1]} x {rgb.shape[0]} pixels: take it with the "
                            f"closet's camera (at least {PLATE_MIN_SIDE} pixels a side)")
    if quality.median_luma(rgb) < quality.EMPTY_DARK_MEDIAN:
        raise WardrobeError("the background photo is too dark; turn on the closet light and try again")
    target = settings.plate_path()
    try:
        ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError("the photo could not be encoded as PNG")
        write_atomic(target, png.tobytes())
    except OSError as e:
        raise WardrobeError(f"cannot write {target}: {e.strerror or e}; free some space, or use --state-dir to "
                            f"choose a writable folder") from None
    print(f"background stored in {target}; set vision.segmentation = \"plate\" to use it")


def health_photos() -> list[Path]:
    """Photos every model must describe sensibly before it is switched to."""
    from wardrobe.images import packaged_photos

    return packaged_photos()


def remote_of(args: argparse.Namespace, target: str):
    """The closet to reach, from the flags."""
    from wardrobe.push import Remote

    return Remote(target, list(args.ssh_option), args.remote_wardrobe, args.reload_command, args.check_command)


def cmd_models(args: argparse.Namespace, settings) -> int:
    """models, install-model, rollback and push-model, on this closet or on one over SSH."""
    from wardrobe.models_store import ModelStore
    from wardrobe.push import push_model, remote_models, remote_rollback

    if args.command == "push-model":
        push_model(remote_of(args, args.target), args.bundle, args.keep, args.limit_kbps)
        return 0
    if args.command == "models" and (args.target or args.host):
        print(remote_models(remote_of(args, args.target or args.host)), end="")
        return 0
    if args.command == "rollback":
        rest = list(args.args)
        target = args.host or (rest.pop(0) if rest and "@" in rest[0] else None)
        if len(rest) > 1:
            raise WardrobeError("rollback takes [USER@HOST] [VERSION]")
        if target:
            print(remote_rollback(remote_of(args, target), rest[0] if rest else None), end="")
            return 0
        args.version = rest[0] if rest else None
    store = ModelStore(settings.state_dir / "models")
    if args.command == "install-model":
        from wardrobe.signing import Trust

        trust = Trust(settings.model.trusted_keys, settings.model.allow_unsigned)
        version = store.install(args.bundle, trust, health_photos(), keep=args.keep)
        print(f"model {version} installed and current; tell the running appliance: sudo systemctl reload wardrobe")
    elif args.command == "rollback":
        print(f"current model is now {store.rollback(args.version)}; sudo systemctl reload wardrobe")
    installed = store.versions()
    if not installed:
        print(f"no models installed in {store.root}: the shipped default is used ({shipped_model_said()})")
    from wardrobe.models_store import verified
    from wardrobe.signing import Trust

    trust = Trust(settings.model.trusted_keys, settings.model.allow_unsigned)
    for i in installed:
        acc = i.figure or "no metrics"
        try:
            signer = verified(i.path, trust)  # "signed by NAME (FINGERPRINT)", as the caretaker's page says it
        except WardrobeError as e:
            signer = f"not trusted: {e}"
        print(f"{'*' if i.current else ' '} {i.version}  created {i.created[:19]}  {acc}  {signer}")
    return 0


def shipped_model_said() -> str:
    """The shipped default bundle as `models` lists an installed one: its version and named test figure."""
    from wardrobe.bundle import Bundle
    from wardrobe.errors import ModelError
    from wardrobe.settings import shipped_bundle

    path = shipped_bundle()
    if path is None:
        return "none shipped with this installation"
    try:
        b = Bundle.load(path, verify=False)
    except ModelError as e:
        return f"{path} cannot be read: {e}"
    return f"version {b.version}, {b.test_figure() or 'no metrics'}"


def cmd_match(args: argparse.Namespace, settings) -> int:
    """Describe two photos and say whether they match (colour by CIEDE2000, look by the embedding)."""
    from wardrobe import wiring
    from wardrobe.matching import compare

    pipeline = wiring.build_pipeline(settings)
    first, second = (pipeline.describe_file(p) for p in args.photos)
    verdict = compare(second, first, lang=pipeline.lang)
    print(json.dumps({"first": first.sentence, "second": second.sentence, **verdict.to_json()}, ensure_ascii=False) if args.json
          else verdict.sentence)
    return 0


def enrol_photos(args: argparse.Namespace, settings):
    """Enrol each photo as args.name, yielding one result per photo as it is done (photo: its name as printed).
    Enrolled: {"photo", "enrolled": true, "id", "sentence", "looks_like"}; else {"photo", "enrolled": false, "why",
    "message", "taken"}, why being "unreadable" (the photo cannot be read), "not-a-garment" (message: what the
    closet said) or "name-taken" (taken: the other garment's "name" and "id"). The caretaker's page reads these as
    JSON (`enrol --json`), never the printed words."""
    from wardrobe import wiring
    from wardrobe.closet import ClosetError
    from wardrobe.images import read_image
    from wardrobe.phrase import BLOCKING

    pipeline = wiring.build_pipeline(settings, closet=False)
    closet = pipeline.closet = wiring.open_closet(settings, pipeline.classifier, create=True)
    if pipeline.classifier is None or not pipeline.classifier.bundle.embedding:
        raise ClosetError("the model in use has no embedding output, which enrolling needs: install a model made "
                          "by `wardrobe train patterns` (the shipped model has one)")
    same_name = closet.named(args.name)  # a name belongs to one garment: new photos must look like it
    if args.add_view and not same_name:  # a misspelt name would quietly become a garment of its own
        raise ClosetError(f"no garment is called {args.name!r} yet, so there is none to add a photo to: check the "
                          f"name (`wardrobe enrolled` lists them), or enrol it without --add-view")
    for photo in args.photos:
        refused = {"photo": shown(photo), "enrolled": False, "taken": None}
        try:
            rgb = read_image(photo)
        except WardrobeError as e:
            yield {**refused, "why": "unreadable", "message": path_once(e, photo)}
            continue
        d = pipeline.describe(rgb, str(photo))
        if any(p in d.problems for p in BLOCKING) or d.embedding is None or not d.colours:
            yield {**refused, "why": "not-a-garment", "message": d.sentence}
            continue
        looks_like = d.enrolled.garment if d.enrolled is not None else None
        if same_name and not args.add_view and (looks_like is None or looks_like.id not in {g.id for g in same_name}):
            yield {**refused, "why": "name-taken", "message": "this does not look like the garment of that name",
                   "taken": {"name": same_name[0].name, "id": same_name[0].id}}
            continue
        other = looks_like is not None and (looks_like.name or "").lower() != args.name.strip().lower()
        gid = closet.enrol_described(d, rgb, pipeline.model_version, name=args.name)
        yield {"photo": shown(photo), "enrolled": True, "id": gid, "sentence": d.sentence,
               "looks_like": looks_like.label if other else None}


def cmd_closet(args: argparse.Namespace, settings) -> int:
    """enrol and enrolled: the user's own garments, kept in state_dir/closet.db."""
    import time

    from wardrobe import wiring
    from wardrobe.closet import ClosetError

    if args.command == "enrol" and not args.name.strip():  # a voice label is recorded at the closet, not here
        raise WardrobeError("--name is empty: give the garment a name, for example --name \"red winter coat\"")
    if args.command == "enrol" and (args.target is not None or args.host):
        from wardrobe.push import remote_enrol

        if args.json:
            raise WardrobeError("--json is for enrolling here; with --on the closet's own words are printed")
        target = args.target if args.target is not None else args.host  # --on "" is refused, never local
        print(remote_enrol(remote_of(args, target), args.photos, args.name, args.add_view), end="")
        return 0
    if args.command == "enrol":
        results = []
        for r in enrol_photos(args, settings):  # each said as it is done: a later failure loses none of them
            results.append(r)
            if args.json:
                continue
            photo = r["photo"]
            if r["enrolled"]:
                if r["looks_like"] is not None:
                    print(f"{photo}: note: it looks like {r['looks_like']!r}, already enrolled", file=sys.stderr)
                print(f"{photo}: enrolled as {args.name!r} (id {r['id']}; {r['sentence']})")
            elif r["why"] == "unreadable":
                print(f"{photo}: error: {r['message']}", file=sys.stderr)
            elif r["why"] == "name-taken":
                print(f"{photo}: not enrolled: another garment is already called {r['taken']['name']!r} (id "
                      f"{r['taken']['id']}) and this does not look like it; choose another name, or pass --add-view "
                      f"if it is the same garment", file=sys.stderr)
            else:
                print(f"{photo}: not enrolled: {r['message']}", file=sys.stderr)
        if args.json:
            print(json.dumps(results, ensure_ascii=False))
        return 0 if all(r["enrolled"] for r in results) else 1
    closet = wiring.open_closet(settings, create=args.action == "import", strict=True)
    rest = list(args.args)
    need = {"list": 0, "rename": 2, "remove": 1, "export": 1, "import": 1}[args.action]
    if len(rest) != need:
        raise WardrobeError(f"enrolled {args.action} takes {need} argument(s): see `wardrobe enrolled --help`")
    if closet is None:
        if args.action == "list":
            print(f"no garments enrolled yet ({settings.state_dir / 'closet.db'} does not exist)")
            return 0
        raise ClosetError("no garments are enrolled yet")
    if args.action == "rename":
        views = closet.views(rest[0])
        g = closet.rename(rest[0], rest[1])
        photos = f" (all {len(views)} of its photos: ids {', '.join(str(v.id) for v in views)})" if len(views) > 1 else ""
        print(f"garment {g.id} is now called {g.name!r}{photos}")
    elif args.action == "remove":
        views = closet.remove(rest[0])
        print(f"forgot {views[0].label!r} ({', '.join(f'id {g.id}' for g in views)})")
    elif args.action == "export":
        print(f"{closet.export(Path(rest[0]))} garments exported to {rest[0]}")
    elif args.action == "import":
        added, already = closet.import_from(Path(rest[0]), wiring.embedding_widths(settings))
        print(f"{added} {'garment' if added == 1 else 'garments'} imported from {rest[0]}"
              + (f" ({already} already in this closet, not added again)" if already else ""))
    else:
        for g in closet.garments():
            main = g.colours[0].get("name", "?") if g.colours else "?"
            print(f"{g.id:4d}  {g.label}  ({main}; enrolled {time.strftime('%Y-%m-%d', time.localtime(g.created))}, "
                  f"model {g.model_version})")
        if not closet.garments():
            print("no garments enrolled")
    return 0


def cmd_corrections(args: argparse.Namespace, settings) -> int:
    """corrections export DIR: the corrected photos as a folder the training script reads."""
    from wardrobe.corrections import export
    from wardrobe.history import FILE_NAME, HistoryError, PressStore

    path = settings.state_dir / FILE_NAME
    if path.parent.is_dir() and not path.exists():  # no press yet: nothing to export (a wrong folder is an error)
        print(f"no press history yet ({path} does not exist), so {args.folder} was not made")
        return 0
    trouble = None
    try:
        store = PressStore(path, create=False)
    except HistoryError as e:  # its disk full or read-only: the photos can still be read and exported
        trouble = e.trouble
        if trouble is None or not (trouble.full or trouble.unwritable):
            raise
        try:
            store = PressStore(path, read_only=True)
        except HistoryError:
            raise e from None
        print(f"note: {e}")
    try:
        done = export(store, args.folder)
    finally:
        store.close()
    for garment, n in sorted(done.skipped.items()):
        print(f"left out {n} marked {garment!r}: training learns that from photos of its own, not from a folder")
    if done.unreadable:
        print(f"left out {done.unreadable} whose kept photo is missing or not a JPEG photo")
    if done.written:
        photos = "corrected photo" if done.written == 1 else "corrected photos"
        print(f"{done.written} {photos} exported to {args.folder}; train with: wardrobe train classifier "
              f"--data clothing-photos={args.folder} (with the other data)")
    else:
        print(f"no corrected photos to train from, so {args.folder} was not made")
    if not done.marked:
        fix = "free space on the closet's disk" if trouble is not None and trouble.full else "see the note above"
        print(f"the press history could only be read, so nothing was marked exported: the next export writes these "
              f"again ({fix} to mark them)")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    """keygen and sign: the caretaker's side of signed bundles (no closet settings involved)."""
    from wardrobe import signing

    try:
        if args.command == "keygen":
            private, public = signing.keygen(args.name.expanduser(), args.comment)
            print(f"private key {private} (keep it secret, back it up)\npublic key {public} (copy it into "
                  f"/etc/wardrobe/trusted-keys/ on each closet: install-pi.sh --trust-key {public})")
        else:
            key = args.key.expanduser()
            kid = signing.sign_bundle(args.bundle, key)
            print(f"{args.bundle} signed with key {signing.key_label(key.stem, kid)}")
    except WardrobeError as e:
        print(f"wardrobe: {e}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `wardrobe` console script. Ctrl-C ends any command with one line and exit 130 (the
    shell's code for an interrupt), never a traceback."""
    try:
        return run_command(argv)
    except KeyboardInterrupt:
        print("\nwardrobe: interrupted", file=sys.stderr)
        return 130


def run_command(argv: list[str] | None) -> int:
    """Parse the arguments and run the command they name."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        from wardrobe.train.__main__ import main as train_main

        return train_main(argv[1:])
    if argv[:1] == ["enroll"]:  # the American spelling, taken without listing it twice in the help
        argv[0] = "enrol"
    args = build_parser().parse_args(argv)
    if args.command in ("keygen", "sign"):
        return cmd_keys(args)
    setup_logging(args.debug)
    from wardrobe import settings as settings_mod

    try:
        settings = settings_mod.load(args.config, overrides(args))
        if args.command == "describe":
            return cmd_describe(args, settings)
        if args.command == "calibrate":
            return cmd_calibrate(args, settings)
        if args.command == "match":
            return cmd_match(args, settings)
        if args.command in ("enrol", "enrolled"):
            return cmd_closet(args, settings)
        if args.command in ("models", "install-model", "rollback", "push-model"):
            return cmd_models(args, settings)
        if args.command == "doctor":
            from wardrobe.doctor import run_doctor

            return run_doctor(settings)
        if args.command == "run":
            from wardrobe.daemon import run_daemon

            return run_daemon(args.config, overrides(args), settings)
        if args.command == "web":
            from wardrobe.web.serve import change_password, make_certificate, serve

            if args.action == "certificate":
                return make_certificate(settings, args.name, args.force, args.config)
            return (change_password(settings) if args.action == "password"
                    else serve(settings, args.address, args.config))
        if args.command == "corrections":
            return cmd_corrections(args, settings)
        if args.command == "bench":
            from wardrobe.bench import check_out, run_bench, run_daemon_bench, run_web_bench

            check_out(args.out)
            if args.web:
                return run_web_bench(args)
            return run_daemon_bench(args) if args.daemon else run_bench(args, settings)
    except WardrobeError as e:
        print(f"wardrobe: {e}", file=sys.stderr)
        return 1 if isinstance(e, ImageError) else 2  # a photo it cannot read or use: 1, as describe; else 2
    except OSError as e:  # a disk or folder problem the commands did not foresee: still one line
        where = f"{e.filename}: " if e.filename else ""
        print(f"wardrobe: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    return 2
