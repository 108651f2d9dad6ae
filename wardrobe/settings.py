"""Settings: frozen dataclasses loaded from TOML and flags in one place, validated before anything starts."""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args

from wardrobe.errors import ConfigError
from wardrobe.files import write_atomic
from wardrobe.lang import available as available_languages

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("/etc/wardrobe/config.toml")

# The choices of every setting that names a backend or method: the one list each; the modules that
# implement them and the command line import these.
Segmentation = Literal["auto", "plate", "threshold"]
NamingMode = Literal["lab", "rgb"]
Runtime = Literal["onnx", "torch"]
VoiceEngine = Literal["piper", "espeak", "coqui"]
AudioOutput = Literal["sounddevice", "wav", "none"]
CameraKind = Literal["picamera", "usb", "folder"]
WhiteBalanceMode = Literal["auto", "card", "estimate", "off"]
ColourWords = Literal["basic", "plain", "descriptive"]
ColourView = Literal["auto", "photo", "cutout"]
SEGMENTATION_METHODS: tuple[str, ...] = get_args(Segmentation)
NAMING_MODES: tuple[str, ...] = get_args(NamingMode)
RUNTIMES: tuple[str, ...] = get_args(Runtime)
VOICE_ENGINES: tuple[str, ...] = get_args(VoiceEngine)
AUDIO_OUTPUTS: tuple[str, ...] = get_args(AudioOutput)
CAMERA_KINDS: tuple[str, ...] = get_args(CameraKind)
WHITE_BALANCE_MODES: tuple[str, ...] = get_args(WhiteBalanceMode)
COLOUR_WORDS: tuple[str, ...] = get_args(ColourWords)
COLOUR_VIEWS: tuple[str, ...] = get_args(ColourView)


@dataclass(frozen=True)
class VisionSettings:
    """How a photo is segmented and its colours found."""

    segmentation: Segmentation = "auto"
    """Background removal: "auto" (any background), "plate" (calibrated empty closet) or "threshold" (white only)."""
    background: Path | None = None
    """The empty-closet photo for the plate method (written by `wardrobe calibrate --background`)."""
    colour_k: int = 3
    """KMeans clusters; 0 chooses per photo."""
    colour_naming: NamingMode = "lab"
    """CSS3 nearest-name space: "lab" (perceptual) or "rgb" (the original)."""
    colour_names: ColourWords = "plain"
    """Colour words said: "basic" (the 12 families), "plain" (navy blue, heather gray, peach) or "descriptive"
    (the CSS3 names: dark slate gray, teal, burly wood)."""
    family_hint_min: float = 0.0
    """Probability (0..1) the colour head must give the family it and the pixels decide on (colour_pixel_weight)
    for that family to be the main colour's; below it the pixels' own name stands. 0: always."""
    colour_pixel_weight: float = 3.0
    """How much the pixels weigh beside the colour head when the main colour's family is decided: the family
    with the most log p(head) + colour_pixel_weight × (the garment's share of that family's clusters). 0: the
    head alone. 3: chosen on validation photos (docs/precision.md)."""
    colour_head_sure: float = 0.5
    """Probability (0..1) at or above which the colour head may rename the garment's main cluster to the family it
    and the pixels decided on when the two are not neighbours (a greenish-grey shoe the head calls white); a hue
    is never said for a neutral (white, grey or black) cluster. Above 1: neighbours only. 0.5: chosen on
    validation photos (docs/precision.md)."""
    colour_learned_weight: float = 1.0
    """How much the bundle's learned colour decision (fitted on home photos labelled by eye and on the shop's
    photos, `wardrobe train colour-decision`) weighs beside the colour head and the pixels: its log-probability is
    added at this weight. 0: the hand-made rule alone. 1: chosen on validation photos (docs/precision.md)."""
    colour_view: ColourView = "auto"
    """Where the colour head looks: "photo" (the whole photo), "cutout" (the garment alone on white) or "auto"
    (the cut-out in a calibrated closet, segmentation = "plate", where the garment is a part of the frame; the
    photo otherwise). Chosen on validation photos (docs/precision.md)."""
    colour_hedge_min: float = 0.55
    """Probability (0..1) the colour head must give a neighbouring family for both to be said ("navy blue or
    black"); above 1, never. 0.55: with the learned colour decision, the most right colours on validation photos
    with at most about 10 % of them hedged (the limit is 15 %, and test went over validation before;
    docs/precision.md)."""
    colour_unsure_below: float = 0.3
    """When the bundle's learned colour decision gives the main colour's family less than this (0..1) and no second
    family is said with it, the user hears "I'm not sure of the colour." right after the colour is named (only with
    a bundle that has a learned colour decision and colour_learned_weight above 0). 0: never. 0.3: on validation
    homes labelled by eye, 13 % of colours flagged, of which half are right, against 92 % of the others
    (docs/precision.md)."""
    white_balance: WhiteBalanceMode = "auto"
    """"auto" (the white card when one is calibrated, else no correction), "card" (the calibrated card only),
    "estimate" (the photo's own estimate of its light, applied when the cast is strong: for a closet under a
    coloured bulb) or "off"."""
    aiming: bool = True
    """Say aiming help ("Hold it closer", "Move it a little to your left") before the description."""


@dataclass(frozen=True)
class ModelSettings:
    """Which classifier bundle and runtime."""

    bundle: Path | None = None
    """Bundle directory; unset: the installed current model or the shipped default."""
    runtime: Runtime | None = None
    """"onnx" or "torch"; unset: the bundle's default."""
    threads: int = 0
    """CPU threads for inference; 0: the runtime's choice."""
    trusted_keys: Path = Path("/etc/wardrobe/trusted-keys")
    """Folder of the caretakers' public keys (*.pub): a new model must be signed by one of them."""
    allow_unsigned: bool = False
    """Accept unsigned model bundles too (only for a closet whose caretaker does not sign)."""


@dataclass(frozen=True)
class SpeechSettings:
    """Voice and audio output."""

    engine: VoiceEngine = "piper"
    """"piper" (neural, default), "espeak" (light) or "coqui" (Tacotron2-family, optional extra)."""
    model: Path | None = None
    """Voice model: a Piper .onnx file or a Coqui model directory; unset: the bundled Joe voice."""
    fallback: bool = True
    """Use espeak-ng if the configured voice cannot be loaded."""
    output: AudioOutput = "sounddevice"
    """"sounddevice" (speaker), "wav" (files) or "none"."""
    device: str | None = None
    """sounddevice output device name or index; unset: the system default."""
    volume: float = 1.0
    """Playback volume, 0..1."""
    microphone: str = "sounddevice"
    """Where voice labels are recorded from: "sounddevice" (a USB microphone), "none", or a WAV file's path
    (replayed as if spoken: for tests and closets without a microphone)."""
    label_seconds: float = 3.0
    """How long a voice label is recorded."""
    language: str = "en"
    """The language the closet speaks: a file in wardrobe/data/lang/ ("en", "ko"). Korean is said by espeak-ng
    unless `model` names a Piper voice for it."""


@dataclass(frozen=True)
class CameraSettings:
    """Where photos come from."""

    kind: CameraKind = "picamera"
    """"picamera" (Raspberry Pi camera), "usb" (OpenCV device) or "folder" (replays photos)."""
    source: str | None = None
    """USB device index or path, or the folder of photos for "folder"."""
    width: int = 1640
    """Capture width in pixels (the Pi camera's binned still mode by default)."""
    height: int = 1232
    """Capture height in pixels."""
    light_pin: int = 0
    """BCM pin of the capture LED (0: no light); it is on only while the photo is taken."""
    light_brightness: float = 1.0
    """The LED's brightness while on, 0..1 (PWM)."""
    light_settle_s: float = 0.15
    """Seconds between the light coming on and the photo (for the camera's exposure to settle)."""


@dataclass(frozen=True)
class ButtonSettings:
    """The big GPIO button."""

    pin: int = 17
    """BCM pin number."""
    pull_up: bool = True
    """True: the button connects the pin to ground."""
    bounce_s: float = 0.05
    """Debounce time in seconds."""
    hold_s: float = 1.0
    """Seconds held before a press becomes a hold (repeat in detail)."""


@dataclass(frozen=True)
class DaemonSettings:
    """The appliance loop."""

    history_keep: int = 20
    """Recent photos and results kept in state_dir/history.db for the caretaker (0: none)."""
    history_max_mb: float = 50.0
    """Size cap of the kept photos and results in megabytes."""
    watchdog_s: float = 30.0
    """systemd's watchdog interval in seconds, as the unit's WatchdogSec= sets it (30), which is what systemd enforces:
    the loop tells systemd it is alive every second, or every half of this when that is shorter."""
    retry_max_s: float = 60.0
    """Longest wait, in seconds, between tries to reopen a missing camera or audio device."""


@dataclass(frozen=True)
class WebSettings:
    """The caretaker's page."""

    address: str = "0.0.0.0:8080"
    """HOST:PORT the page is served on ("[::]:8080" for IPv6; "127.0.0.1:8080" for this machine only)."""
    certificate: Path | None = None
    """PEM certificate (chain) file: with `key`, the page is served over HTTPS only (`wardrobe web certificate`
    makes a self-signed pair)."""
    key: Path | None = None
    """PEM private key file of `certificate`."""
    idle_s: int = 20
    """Seconds a connection may send and take nothing (no request being answered) before it is closed, so that idle
    connections cannot hold the page's 100 slots. A slow upload keeps it open while bytes flow; one that stalls
    longer than this is cut, and the phone says the connection was reset."""


def parse_address(text: str, what: str = "web.address") -> tuple[str, int]:
    """HOST:PORT (or [IPV6]:PORT) as (host, port); ConfigError naming the fix otherwise."""
    host, sep, port = str(text).rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    ok = sep and host and port.isdigit() and 1 <= int(port) <= 65535 and not any(c.isspace() for c in host)
    if not ok or "/" in host or (":" in host and not str(text).startswith("[")):
        raise ConfigError(f"{what} must be HOST:PORT with a port from 1 to 65535, e.g. \"0.0.0.0:8080\" or "
                          f"\"[::]:8080\" (got {text!r})")
    return host, int(port)


@dataclass(frozen=True)
class Settings:
    """Everything configurable, nested by concern."""

    vision: VisionSettings = field(default_factory=VisionSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    speech: SpeechSettings = field(default_factory=SpeechSettings)
    camera: CameraSettings = field(default_factory=CameraSettings)
    button: ButtonSettings = field(default_factory=ButtonSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    web: WebSettings = field(default_factory=WebSettings)
    state_dir: Path = Path("/var/lib/wardrobe")
    """Writable state: calibration photo, installed models, history."""

    def validate(self) -> Settings:
        """Raise ConfigError naming the fix for the first bad value; return self."""
        v, m, s = self.vision, self.model, self.speech
        checks = [
            (v.segmentation in SEGMENTATION_METHODS,
             f"vision.segmentation must be one of {', '.join(SEGMENTATION_METHODS)}"),
            (v.colour_naming in NAMING_MODES, f"vision.colour_naming must be one of {', '.join(NAMING_MODES)}"),
            (v.colour_names in COLOUR_WORDS, f"vision.colour_names must be one of {', '.join(COLOUR_WORDS)}"),
            (v.white_balance in WHITE_BALANCE_MODES,
             f"vision.white_balance must be one of {', '.join(WHITE_BALANCE_MODES)}"),
            (0 <= v.colour_k <= 8, "vision.colour_k must be 0 (automatic) to 8"),
            (0 <= v.family_hint_min <= 1, "vision.family_hint_min must be between 0 and 1"),
            (0 <= v.colour_pixel_weight <= 100, "vision.colour_pixel_weight must be between 0 and 100"),
            (0 <= v.colour_head_sure <= 1.01, "vision.colour_head_sure must be between 0 and 1 (1.01: neighbours only)"),
            (0 <= v.colour_learned_weight <= 100, "vision.colour_learned_weight must be between 0 and 100"),
            (v.colour_view in COLOUR_VIEWS, f"vision.colour_view must be one of {', '.join(COLOUR_VIEWS)}"),
            (0 <= v.colour_hedge_min <= 1.01, "vision.colour_hedge_min must be between 0 and 1 (1.01: never)"),
            (0 <= v.colour_unsure_below <= 1, "vision.colour_unsure_below must be between 0 and 1 (0: never)"),
            (m.runtime is None or m.runtime in RUNTIMES, f"model.runtime must be one of {', '.join(RUNTIMES)}"),
            (0 <= m.threads <= 64, "model.threads must be 0 (the runtime's choice) to 64"),
            (s.engine in VOICE_ENGINES, f"speech.engine must be one of {', '.join(VOICE_ENGINES)}"),
            (s.output in AUDIO_OUTPUTS, f"speech.output must be one of {', '.join(AUDIO_OUTPUTS)}"),
            (0 <= s.volume <= 1, "speech.volume must be between 0 and 1"),
            (self.camera.kind in CAMERA_KINDS, f"camera.kind must be one of {', '.join(CAMERA_KINDS)}"),
            (self.camera.kind != "folder" or bool(self.camera.source), "camera.kind = \"folder\" needs camera.source"),
            (0 < self.camera.width <= 8192 and 0 < self.camera.height <= 8192,
             "camera.width and camera.height must be 1 to 8192 pixels"),
            (0 <= self.button.pin <= 27, "button.pin must be a BCM pin number 0..27"),
            (0 <= self.camera.light_pin <= 27 and self.camera.light_pin != self.button.pin or self.camera.light_pin == 0,
             "camera.light_pin must be a BCM pin 1..27 other than the button's (0: no light)"),
            (0 < self.camera.light_brightness <= 1, "camera.light_brightness must be above 0 and at most 1"),
            (0 <= self.camera.light_settle_s <= 2, "camera.light_settle_s must be 0 to 2 seconds"),
            (self.button.hold_s > 0 and self.button.bounce_s >= 0, "button.hold_s must be positive"),
            (self.daemon.history_keep >= 0 and self.daemon.history_max_mb >= 0, "daemon.history_* must be 0 or more"),
            (1 <= self.daemon.watchdog_s <= 3600 and 0.1 <= self.daemon.retry_max_s <= 3600,
             "daemon.watchdog_s must be 1 to 3600 seconds and daemon.retry_max_s 0.1 to 3600"),
            (0.5 <= s.label_seconds <= 30, "speech.label_seconds must be 0.5 to 30 seconds"),
            (s.language in available_languages(), f"speech.language must be one of {', '.join(available_languages())}"),
            (self.button.hold_s <= 10 and self.button.bounce_s <= 1, "button.hold_s must be at most 10 s and "
                                                                      "button.bounce_s at most 1 s"),
            (self.daemon.history_keep <= 10000 and self.daemon.history_max_mb <= 100000,
             "daemon.history_keep must be at most 10000 and daemon.history_max_mb at most 100000"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        parse_address(self.web.address)
        if not 1 <= self.web.idle_s <= 3600:
            raise ConfigError("web.idle_s must be 1 to 3600 seconds")
        # Only the pairing is checked here: the files are the page's alone, and a missing one must not stop the
        # daemon that reads this same file (`wardrobe web` checks them when it starts).
        if (self.web.certificate is None) != (self.web.key is None):
            raise ConfigError("web.certificate and web.key go together: set both (HTTPS) or neither (plain HTTP); "
                              "`wardrobe web certificate` makes a pair")
        if v.white_balance == "card" and not self.white_card_path().is_file():
            raise ConfigError("vision.white_balance is \"card\" but no white card is calibrated: "
                              "run `wardrobe calibrate --white PHOTO` first")
        if self.state_dir.exists() and not self.state_dir.is_dir():
            raise ConfigError(f"the state folder {self.state_dir} is a file, not a folder: give state_dir (or "
                              f"--state-dir) a folder")
        if v.segmentation == "plate" and not self.plate_path().is_file():
            raise ConfigError("vision.segmentation is \"plate\" but there is no background photo: "
                              "run `wardrobe calibrate --background PHOTO` first")
        return self

    def white_card_path(self) -> Path:
        """Where the white card's place is stored (written by `wardrobe calibrate --white`)."""
        return self.state_dir / "white-card.json"

    def plate_path(self) -> Path:
        """Where the calibrated background photo is (configured, or in the state directory)."""
        return self.vision.background or self.state_dir / "background.png"


def _coerce(cls: type, section: str, data: dict[str, Any]):
    """Build a section dataclass from a TOML table, rejecting unknown keys and wrong types."""
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"unknown setting {section}.{key} (known: {', '.join(known)})")
        default = getattr(cls(), key)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{section}.{key} must be true or false")
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if (not isinstance(value, (int, float)) or isinstance(value, bool) or abs(value) > 1e15
                    or not math.isfinite(value)):
                raise ConfigError(f"{section}.{key} must be a (finite) number")
            if isinstance(default, int) and value != int(value):
                raise ConfigError(f"{section}.{key} must be a whole number")
            value = type(default)(value)
        elif key == "source" and value is not None:
            if not isinstance(value, (str, Path)):
                raise ConfigError(f"{section}.{key} must be a path or device in quotes")
            value = str(value)
        elif isinstance(default, str) and not isinstance(value, str):
            raise ConfigError(f"{section}.{key} must be text in quotes")
        elif isinstance(default, Path) or default is None and key in ("background", "bundle", "model", "certificate",
                                                                      "key"):
            if not isinstance(value, (str, Path)):
                raise ConfigError(f"{section}.{key} must be a path in quotes")
            value = Path(value).expanduser()
        kwargs[key] = value
    return cls(**kwargs)


def load(path: Path | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> Settings:
    """Read TOML (the given file, else /etc/wardrobe/config.toml if present), apply flag overrides, validate."""
    data: dict[str, Any] = {}
    if path is None and DEFAULT_CONFIG.exists():  # a folder there is said, not skipped
        path = DEFAULT_CONFIG
    if path is not None:
        if Path(path).is_dir():
            raise ConfigError(f"config file {path} is a folder, not a file")
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"config file {path} is not valid TOML (UTF-8 text): {e}") from e
    sections = {"vision": VisionSettings, "model": ModelSettings, "speech": SpeechSettings,
                "camera": CameraSettings, "button": ButtonSettings, "daemon": DaemonSettings, "web": WebSettings}
    unknown = set(data) - set(sections) - {"state_dir"}
    if unknown:
        raise ConfigError(f"unknown config section(s): {', '.join(sorted(unknown))}")
    for name in sections:
        if not isinstance(data.get(name, {}), dict):
            raise ConfigError(f"{name} must be a table: write [{name}] on a line of its own, then its settings")
    if "state_dir" in data and not isinstance(data["state_dir"], str):
        raise ConfigError("state_dir must be a path in quotes")
    if "state_dir" in data and not data["state_dir"].strip():
        raise ConfigError("state_dir is empty: give the state folder's path (e.g. /var/lib/wardrobe) or leave it out")
    state = (overrides or {}).get("", {}).get("state_dir") or data.get("state_dir") or os.environ.get("WARDROBE_STATE_DIR")
    if state is not None and "\0" in str(state):
        raise ConfigError("state_dir holds a NUL character: give the state folder's path as plain text")
    try:
        overlay = read_overlay(Path(state) if state else Settings().state_dir)
    except ConfigError as e:  # a damaged page file must not silence the closet: the config file alone is used
        log.error("%s; the caretaker's page's settings are not used", e)
        overlay = {}

    def built_with(overlay: dict) -> Settings:
        built = {name: _coerce(cls, name, {**data.get(name, {}), **overlay.get(name, {}),
                                           **(overrides or {}).get(name, {})})
                 for name, cls in sections.items()}
        keys = os.environ.get("WARDROBE_TRUSTED_KEYS")
        if keys and "trusted_keys" not in data.get("model", {}):  # like WARDROBE_STATE_DIR: the file wins
            built["model"] = replace(built["model"], trusted_keys=Path(keys))
        settings = Settings(**built)
        if state:
            settings = replace(settings, state_dir=Path(state))
        return settings.validate()

    settings = built_with({})  # the config file's own mistakes are its own
    if overlay:
        try:
            return built_with(overlay)
        except ConfigError as e:  # a value the page file must not hold: the closet speaks with the config alone
            log.error("%s: %s; the caretaker's page's settings are not used", overlay_path(settings.state_dir), e)
    return settings


OVERLAY_NAME = "settings.toml"
OVERLAY_KEYS = {"vision": ("colour_names", "aiming"), "speech": ("volume", "language")}
"""What the caretaker's page may set, in state_dir/settings.toml: the settings the user lives with. The overlay is
read after the config file (flags override both); nothing else may be set there, since the page's service can
write that folder and must not reach the model's trust, the devices or the paths."""


def overlay_path(state_dir: Path) -> Path:
    """The caretaker's page's settings file."""
    return Path(state_dir) / OVERLAY_NAME


def read_overlay(state_dir: Path) -> dict[str, dict[str, Any]]:
    """The overlay's sections ({} when there is none); ConfigError naming the file for anything else in it."""
    path = overlay_path(state_dir)
    try:
        data = tomllib.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except PermissionError:  # another user's closet (a caretaker's command run as themself): the config alone
        log.debug("%s is not readable by this user: not applied", path)
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path} (the caretaker's page's settings) is not valid TOML: {e}; save the settings "
                          f"page again or remove the file") from None
    for section, values in data.items():
        if section not in OVERLAY_KEYS or not isinstance(values, dict):
            raise ConfigError(f"{path} may hold only {', '.join(f'[{k}]' for k in OVERLAY_KEYS)}, not {section}; "
                              f"remove the file")
        odd = sorted(set(values) - set(OVERLAY_KEYS[section]))
        if odd:
            raise ConfigError(f"{path} may not set {section}.{odd[0]} (only "
                              f"{', '.join(f'{section}.{k}' for k in OVERLAY_KEYS[section])}); remove the file")
    return data


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(float(v))
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


_OVERLAY_LOCK = threading.Lock()


def with_changes(settings: Settings, changes: dict[str, dict[str, Any]]) -> Settings:
    """The settings with these values changed, checked as at start-up; ConfigError for a wrong one."""
    typed = {section: _coerce(type(getattr(settings, section)), section, values) for section, values in changes.items()}
    return replace(settings, **{section: replace(getattr(settings, section), **{k: getattr(typed[section], k)
                                                                                 for k in values})
                                for section, values in changes.items()}).validate()


def overlay_problem(settings: Settings) -> str | None:
    """Why the caretaker's page's settings file is not in use (None: it is, or there is none): what `load` logged
    when it left the file out, for the page to show."""
    try:
        with_changes(settings, read_overlay(settings.state_dir))
    except ConfigError as e:
        return str(e)
    return None


def write_overlay(settings: Settings, changes: dict[str, dict[str, Any]]) -> Settings:
    """Validate settings with these changes (the same checks as at start-up), then write them to the overlay
    atomically (temporary file, fsync, rename); the new settings. ConfigError, with nothing written, otherwise."""
    for section, values in changes.items():
        for key in values:
            if key not in OVERLAY_KEYS.get(section, ()):
                raise ConfigError(f"{section}.{key} cannot be set from the caretaker's page")
    new = with_changes(settings, changes)
    path = overlay_path(settings.state_dir)
    with _OVERLAY_LOCK:  # the page serves on several threads: one read-merge-write at a time
        try:
            merged = read_overlay(settings.state_dir)
        except ConfigError:
            merged = {}  # a damaged file is replaced by what the page saves now
        for section, values in changes.items():
            merged.setdefault(section, {}).update(values)
        text = "# Written by the caretaker's page (wardrobe web); read after /etc/wardrobe/config.toml.\n"
        for section, values in merged.items():
            text += f"\n[{section}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items())
        try:
            write_atomic(path, text.encode(), mode=0o600)
        except OSError as e:
            raise ConfigError(f"cannot write {path}: {e.strerror or e}") from None
    return new


def default_bundle(settings: Settings) -> Path | None:
    """The bundle to use: configured, else the installed current one, else the shipped default."""
    if settings.model.bundle:
        return settings.model.bundle
    current = settings.state_dir / "models" / "current"
    return current if (current / "bundle.json").is_file() else shipped_bundle()


def shipped_bundle() -> Path | None:
    """The model bundle that came with wardrobe: the checkout's models/default, or the installed copy: beside the
    installation that holds this package (BASE/lib/pythonX.Y/site-packages/wardrobe: BASE/share/..., which is
    also where `pip install --user` puts it), or under sys.prefix."""
    here = Path(__file__).resolve().parents
    bases = [here[4]] if len(here) > 4 else []  # a checkout near / has no such base
    candidates = [here[1] / "models" / "default",
                  *(base / "share" / "wardrobe" / "models" / "default" for base in [*bases, Path(sys.prefix)])]
    return next((c for c in candidates if (c / "bundle.json").is_file()), None)
