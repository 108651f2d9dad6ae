"""The appliance: waits for the button, sees, and speaks. The only module that owns devices.

One press at a time: button callbacks and signals put events on a queue of one; the main loop
takes them, pings the systemd watchdog between, and survives every expected fault by speaking a
short message and retrying the device later.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from wardrobe import phrase, running
from wardrobe.button import DOUBLE, HOLD, PRESS, RECORD, TRIPLE, PressQueue
from wardrobe.errors import AudioError, CameraError, ConfigError, ImageError, SpeechError, WardrobeError
from wardrobe.files import check_folder_takes_files
from wardrobe.history import History
from wardrobe.status import StatusLog

log = logging.getLogger(__name__)

WARM_PHRASES = ("ready", "no_camera", "sorry")
"""Messages synthesised at start, so the first of them is said at once (words: the language file's [daemon])."""


def sd_notify(message: str) -> bool:
    """Tell systemd (Type=notify) something, e.g. READY=1 or WATCHDOG=1; False outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(address)
            s.sendall(message.encode())
        return True
    except OSError as e:
        log.warning("cannot notify systemd: %s", e)
        return False


def beep(rate: int) -> np.ndarray:
    """The tone before recording a voice label."""
    t = np.arange(int(0.25 * rate)) / rate
    return (9000 * np.sin(2 * np.pi * 880 * t) * np.minimum(1, np.minimum(t, 0.25 - t) / 0.02)).astype(np.int16)


def click_sound(rate: int) -> np.ndarray:
    """A short, soft tick confirming the press before the photo is taken."""
    t = np.arange(int(0.04 * rate)) / rate
    return (6000 * np.sin(2 * np.pi * 1800 * t) * np.exp(-t / 0.008)).astype(np.int16)


@dataclass
class Backoff:
    """When to try a missing device again: 1 s, 2 s, 4 s ... up to a cap."""

    cap_s: float
    wait_s: float = 1.0
    next_at: float = 0.0

    def due(self) -> bool:
        """True when it is time for another try."""
        return time.monotonic() >= self.next_at

    def failed(self) -> float:
        """Schedule the next try further out; the seconds until it."""
        waited = self.wait_s
        self.next_at = time.monotonic() + waited
        self.wait_s = min(self.cap_s, self.wait_s * 2)
        return waited

    def reset(self) -> None:
        """The device works again."""
        self.wait_s, self.next_at = 1.0, 0.0


class Daemon:
    """Owns camera, button, voice and audio; runs the press loop until stopped."""

    def __init__(self, config_path: Path | None, overrides: dict, pin_factory=None, settings=None) -> None:
        """config_path and overrides are read again on reload; settings, when given, are the first ones
        (already loaded and validated by the caller); pin_factory: gpiozero's, default from the environment."""
        self.config_path, self.overrides, self.pin_factory = config_path, overrides, pin_factory
        self.initial_settings = settings
        self.events = PressQueue()
        self.stopping = threading.Event()
        self.reload_requested = threading.Event()
        self.camera = None
        self.camera_backoff = Backoff(60.0)
        self.camera_was_lost = False
        self.reviews = None
        """The press history, read for the caretaker's reviews (wardrobe.reviews.reviewed_examples)."""
        self.reviews_seen: tuple | None = None
        self.button = None
        self.light = None
        self.last = None
        self.previous = None
        """The description before the last one (a double press compares the two)."""
        self.last_rgb = None
        """The last photo (a voice label enrols it)."""
        self.presses = 0

    # -- start-up -------------------------------------------------------------------------------

    def load_settings(self):
        """Read and validate the configuration."""
        from wardrobe import settings

        return settings.load(self.config_path, self.overrides)

    def start(self) -> None:
        """Load everything once, warm up, say Ready, tell systemd."""
        from wardrobe import wiring
        from wardrobe.speech import Speaker

        t0 = time.perf_counter()
        self.settings = self.initial_settings or self.load_settings()
        self.status = StatusLog(self.settings.state_dir)  # for the caretaker's page, which cannot read the journal
        logging.getLogger("wardrobe").addHandler(self.status)
        problem = state_dir_problem(self.settings.state_dir)
        if problem:
            log.warning("%s: the closet answers, but keeps no history, corrections or voice labels until it can "
                        "(a read-only SD card? run as the closet's user, e.g. sudo -u wardrobe wardrobe run)", problem)
        self.camera_backoff = Backoff(self.settings.daemon.retry_max_s)
        self.history = History(self.settings.state_dir, self.settings.daemon.history_keep,
                               self.settings.daemon.history_max_mb)
        self.speaker = Speaker(wiring.load_voice(self.settings), self.open_player())
        self.status.part("voice", True, f"voice {self.speaker.voice.name}")
        self.pipeline = wiring.build_pipeline(self.settings)
        self.found_model()
        self.open_camera()
        self.open_button()
        self.open_light()
        self.speaker.warm_up([self.words(k) for k in WARM_PHRASES])
        self.pipeline.describe(np.full((240, 320, 3), 128, np.uint8))  # first-call costs paid now
        self.install_signals()
        running.write_pid(self.settings.state_dir)  # after the handlers: the page's SIGHUP must not end us
        self.say(self.words("ready"))
        if self.camera is None:
            self.say(self.words("no_camera"))
        sd_notify("READY=1")
        log.info("ready in %.1f s (voice %s, model %s, camera %s)", time.perf_counter() - t0, self.speaker.voice.name,
                 self.pipeline.model_version or "none", self.settings.camera.kind if self.camera else "missing")

    def refresh_examples(self) -> None:
        """Keep the caretaker's reviews (right, or corrected) as labelled examples for the pipeline, rebuilt when
        the reviews change. A missing or unreadable history means no examples, never a failed press."""
        from wardrobe import wiring
        from wardrobe.history import FILE_NAME, HistoryError, PressStore
        from wardrobe.reviews import reviewed_examples, reviews_key

        classifier = self.pipeline.classifier
        if classifier is None:
            return
        try:
            if self.reviews is None:
                self.reviews = PressStore(self.settings.state_dir / FILE_NAME, create=False)
            key = (reviews_key(self.reviews), self.pipeline.model_version)
            if key == self.reviews_seen and self.pipeline.examples is not None:
                return
            def embed(jpeg: bytes):
                sd_notify("WATCHDOG=1")  # up to 500 embeddings at ~10 ms (more on a Pi): the watchdog waits
                return wiring.embed_thumbnail(classifier, jpeg)

            examples = reviewed_examples(self.reviews, embed, classifier.bundle.classes)
        except (HistoryError, sqlite3.Error) as e:
            if self.reviews is not None:
                log.debug("reviews not read (%s)", e)
            return
        self.pipeline.examples, self.reviews_seen = examples, key
        log.info("reviewed photos kept as examples: %d", len(examples))

    def words(self, key: str) -> str:
        """One of the daemon's messages in the configured language ("ready" -> "Ready.")."""
        return self.pipeline.lang.text("daemon", key)

    def open_player(self):
        """The configured audio output; a missing device is logged and tried again at each utterance."""
        from wardrobe import wiring

        try:
            player = wiring.open_player(self.settings, check=True)
        except AudioError as e:
            log.error("audio output unavailable: %s (will try again)", e)
            self.status.part("audio", False, f"audio output unavailable: {e}")
            return None
        self.status.part("audio", True, f"{self.settings.speech.output} audio output open")
        return player

    def open_camera(self) -> None:
        """Open the camera, or schedule another try."""
        from wardrobe import wiring

        try:
            self.camera = wiring.open_camera(self.settings)
            self.camera_backoff.reset()
            self.status.part("camera", True, f"{self.settings.camera.kind} camera open")
            if self.camera_was_lost:
                log.info("camera is back")
                self.camera_was_lost = False
                self.say(self.words("camera_back"))
        except CameraError as e:
            self.camera = None
            self.camera_was_lost = True
            log.error("camera: %s (next try in %.0f s)", e, self.camera_backoff.failed())
            self.status.part("camera", False, f"camera: {e}")

    def open_button(self) -> None:
        """The GPIO button; without one, SIGUSR1 still works as a press."""
        from wardrobe.button import GarmentButton

        b = self.settings.button
        try:
            self.button = GarmentButton(b.pin, self.events, b.pull_up, b.bounce_s, b.hold_s, self.pin_factory)
            self.status.part("button", True, f"button on GPIO{b.pin}")
        except Exception as e:  # gpiozero raises many kinds when there are no pins
            self.button = None
            log.error("button on GPIO%d unavailable: %s; SIGUSR1 still acts as a press", b.pin, e)
            self.status.part("button", False, f"button on GPIO{b.pin} unavailable: {e}")

    def open_light(self) -> None:
        """The capture LED, if one is configured; without it photos are taken under the room's light."""
        from wardrobe.light import CaptureLight, NoLight

        c = self.settings.camera
        self.light = NoLight()
        if not c.light_pin:
            self.status.part("light", True, "no capture light configured: photos use the room's light")
            return
        try:
            self.light = CaptureLight(c.light_pin, c.light_brightness, c.light_settle_s, self.pin_factory)
            self.status.part("light", True, f"capture light on GPIO{c.light_pin}")
        except Exception as e:  # gpiozero raises many kinds when there are no pins
            log.error("capture light on GPIO%d unavailable: %s; photos use the room's light", c.light_pin, e)
            self.status.part("light", False, f"capture light on GPIO{c.light_pin} unavailable: {e}")

    def install_signals(self) -> None:
        """SIGUSR1 = press, SIGHUP = reload config and model, SIGTERM/SIGINT = stop."""
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGUSR1, lambda *_: self.events.put(PRESS))
        signal.signal(signal.SIGHUP, lambda *_: self.reload_requested.set())
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> None:
        """Handle events until stopped, pinging the watchdog in between."""
        tick = min(1.0, self.settings.daemon.watchdog_s / 2)
        while not self.stopping.is_set():
            sd_notify("WATCHDOG=1")
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
            if self.camera is None and self.camera_backoff.due():
                self.open_camera()
            event = self.events.get(timeout=tick)
            if event is None:
                self.refresh_examples()  # between presses: a review on the page counts from the next press
            if event is None or self.stopping.is_set():
                continue
            self.handle(event)
            self.events.clear()  # presses made while busy are dropped, not queued
        self.shutdown()

    def handle(self, event: str) -> None:
        """One press or hold; any failure is logged and spoken as a short apology."""
        self.presses += 1
        try:
            if event == PRESS:
                self.describe()
            elif event == HOLD:
                self.say(self.last.detailed() if self.last else self.words("nothing_yet"))
            elif event == DOUBLE:
                self.compare()
            elif event == TRIPLE:
                self.say(self.pipeline.lang.list("daemon", "gestures"))
            elif event == RECORD:
                self.record_label()
        except WardrobeError as e:
            log.error("press failed: %s", e)
            self.say(self.words("sorry"))
        except Exception:
            log.exception("unexpected error during a press")
            self.say(self.words("sorry"))

    def record_label(self) -> None:
        """Long hold: record the user's own name for the last garment, enrol it (or re-label it), play it back."""
        from wardrobe import wiring
        from wardrobe.audio import wav_bytes
        from wardrobe.closet import ClosetError

        d, rgb = self.last, self.last_rgb
        if d is None or rgb is None or d.embedding is None or not d.colours:
            self.say(self.words("name_first"))
            return
        try:
            mic = wiring.open_microphone(self.settings)
        except AudioError as e:
            mic = None
            log.error("microphone unavailable: %s", e)
        if mic is None:
            self.say(self.words("no_microphone"))
            return
        self.say(self.words("after_beep"))
        rate = self.speaker.voice.sample_rate
        self.play_sound(beep(rate), rate, "beep")
        try:
            audio = mic.record(self.settings.speech.label_seconds, rate)
        except AudioError as e:
            log.error("recording failed: %s", e)
            self.say(self.words("no_microphone"))
            return
        if len(audio) == 0 or float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) < 150:
            self.say(self.words("nothing_heard"))
            return
        label, clip = time.strftime("%Y%m%d-%H%M%S"), wav_bytes(audio, rate)
        try:  # the recording is stored in the closet's database with the garment: one write, all or nothing
            closet = self.pipeline.closet or wiring.open_closet(self.settings, self.pipeline.classifier, create=True)
            self.pipeline.closet = closet
            if d.enrolled is not None:
                g = closet.set_voice_label(d.enrolled.garment.id, label, clip)
            else:
                g = closet.find(str(closet.enrol_described(d, rgb, self.pipeline.model_version or "",
                                                           voice_label=label, voice_clip=clip)))
        except ClosetError as e:
            log.error("voice label not saved: %s", e)
            self.say(self.words("storage_full" if e.full else "not_saved"))
            return
        log.info("voice label %s recorded for garment %d", label, g.id)
        self.say(self.words("saved"))
        self.play_label(g)

    @property
    def labels_dir(self) -> Path:
        """Where closets made before recordings were kept in the database have their voice labels."""
        return self.settings.state_dir / "voice-labels"

    def play_label(self, g) -> bool:
        """Play an enrolled garment's recorded voice label; False if it cannot be (then the caller says the
        words instead)."""
        from wardrobe.audio import read_wav

        label = g.voice_label
        try:
            clip = self.pipeline.closet.voice_clip(g.id) if self.pipeline.closet is not None else None
            audio, rate = read_wav(clip or self.labels_dir / f"{label}.wav")
        except Exception as e:  # a missing or damaged clip (ClosetError, OSError, EOFError, wave.Error, AudioError)
            log.error("voice label %s cannot be played: %s", label, e)
            return False
        if not self.play_sound(audio, rate, f"voice label {label}"):
            return False
        log.info("played voice label %s", label)
        return True

    def compare(self) -> None:
        """Double press: the garment just described against the one before it."""
        from wardrobe.matching import compare

        if self.last is None or self.previous is None:
            self.say(self.words("nothing_to_compare"))
            return
        verdict = compare(self.last, self.previous, lang=self.pipeline.lang)
        log.info("compared: %s", json.dumps(verdict.to_json(), ensure_ascii=False))
        self.say(verdict.sentence)

    def describe(self) -> None:
        """Click, capture, describe, speak, log, keep history."""
        t0 = time.perf_counter()
        self.play_click()
        click_ms = (time.perf_counter() - t0) * 1000
        if self.camera is None:
            self.open_camera()
            if self.camera is None:
                self.say(self.words("no_camera"))
                return
        try:
            rgb = self.light.capture(self.camera)
        except ImageError as e:  # one bad frame: the camera itself is still there
            log.error("bad picture: %s", e)
            self.say(self.words("bad_picture"))
            return
        except CameraError as e:
            log.error("camera lost: %s", e)
            self.status.part("camera", False, f"camera lost: {e}")
            self.camera.close()
            self.camera, self.camera_was_lost = None, True
            self.camera_backoff.reset()
            self.camera_backoff.failed()
            self.say(self.words("no_camera"))
            return
        capture_ms = (time.perf_counter() - t0) * 1000 - click_ms
        d = self.pipeline.describe(rgb, image=f"press-{self.presses}")
        self.previous, self.last, self.last_rgb = self.last, d, rgb
        g = d.enrolled.garment if d.enrolled else None
        spoken = d.clauses  # in words, for the caretaker's page (a played voice label is the user's own)
        if g is not None and g.voice_label and not g.name:
            aiming = phrase.aiming_clauses(d.problems, self.pipeline.lang)
            if aiming:
                self.say(aiming)
            self.say(self.words("yours"))
            spoken = [*aiming, self.words("yours")]
            if not self.play_label(g):
                self.say(d.clauses)
                spoken = [*spoken, *d.clauses]
        else:
            self.say(d.clauses)
        timings = {**d.timings_ms, "click": click_ms, "capture": capture_ms}
        if self.speaker.first_play_at >= t0:  # nothing was played (no speaker): no speech times to report
            timings["press_to_first_speech"] = (self.speaker.first_play_at - t0) * 1000
            timings["press_to_spoken"] = (time.perf_counter() - t0) * 1000
        d = replace(d, timings_ms=timings)
        self.last = d
        log.info("described: sentence=%s garment=%s confidence=%s colours=%s problems=%s timings_ms=%s",
                 json.dumps(d.sentence, ensure_ascii=False), d.garment, None if d.garment_confidence is None else round(d.garment_confidence, 3),
                 ",".join(c.name for c in d.colours), ",".join(d.problems) or "-",
                 json.dumps({k: round(v, 1) for k, v in d.timings_ms.items()}))
        said = None
        if self.speaker.first_play_at >= t0:  # spoken: the page can play it back (the clauses are in the cache)
            try:
                said = (self.speaker.recording(spoken), self.speaker.voice.sample_rate)
            except WardrobeError as e:
                log.debug("what was said is not kept: %s", e)
        self.history.save(rgb, d.to_json(), self.pipeline.model_version, said)  # written on its own thread

    def play_click(self) -> None:
        """Confirm the press at once."""
        rate = self.speaker.voice.sample_rate
        self.play_sound(click_sound(rate), rate, "click")

    def play_sound(self, audio: np.ndarray, rate: int, what: str) -> bool:
        """Play a sound that is not speech (click, beep, a recorded voice label); False when it could not be
        (no audio output, or it failed: then it is reopened next time)."""
        player = self.player_or_retry()
        if player is None:
            return False
        try:
            player.play(audio, rate)
        except AudioError as e:
            log.error("%s not played: %s", what, e)
            self.status.part("audio", False, f"{what} not played: {e}")
            self.speaker.player = None
            return False
        return True

    def player_or_retry(self):
        """The audio output, reopened if it went missing."""
        if self.speaker.player is None:
            self.speaker.player = self.open_player()
        return self.speaker.player

    def say(self, speech: str | list[str]) -> None:
        """Speak; a missing speaker or voice failure is logged and the daemon goes on."""
        log.debug("saying: %s", speech if isinstance(speech, str) else " ".join(speech))
        if self.player_or_retry() is None:
            log.error("not spoken (no audio output): %s", speech)
            return
        try:
            self.speaker.say(speech)
        except AudioError as e:
            log.error("audio output failed: %s (will try again)", e)
            self.status.part("audio", False, f"audio output failed: {e}")
            self.speaker.player = None
        except SpeechError as e:
            log.error("speech failed: %s", e)

    def reload(self) -> None:
        """SIGHUP: re-read config and model bundle; keep the voice; keep the old model if the new one fails."""
        from wardrobe import wiring

        try:
            new = self.load_settings()
        except ConfigError as e:
            log.error("reload refused, keeping the running configuration: %s", e)
            return
        old_pipeline, old_settings = self.pipeline, self.settings
        self.settings = new
        try:
            pipeline = wiring.build_pipeline(new)
        except WardrobeError as e:
            log.error("reload failed, keeping the running configuration: %s", e)
            self.settings = old_settings
            return
        if pipeline.model_version is None and old_pipeline.model_version is not None:
            log.error("the new model could not be loaded (%s); keeping model %s", pipeline.model_problem,
                      old_pipeline.model_version)
            pipeline.keep_model_of(old_pipeline)
        pipeline.examples, self.reviews_seen = old_pipeline.examples, None  # rebuilt at the next quiet moment
        self.pipeline = pipeline
        self.found_model()
        if new.camera != old_settings.camera:
            if self.camera is not None:
                self.camera.close()
            self.open_camera()
            if self.light is not None:
                self.light.close()
            self.open_light()
        if (new.speech.language, new.speech.engine, new.speech.model) != \
                (old_settings.speech.language, old_settings.speech.engine, old_settings.speech.model):
            self.change_voice(new)
        log.info("reloaded: model %s, voice %s, language %s", pipeline.model_version or "none",
                 self.speaker.voice.name, pipeline.lang.code)

    def change_voice(self, settings) -> None:
        """A new language or voice from a reload; the old voice stays if the new one cannot be loaded."""
        from wardrobe import wiring
        from wardrobe.speech import Speaker

        try:
            speaker = Speaker(wiring.load_voice(settings), self.speaker.player)
            speaker.warm_up([self.words(k) for k in WARM_PHRASES])
        except WardrobeError as e:
            log.error("the new voice could not be loaded (%s); keeping %s", e, self.speaker.voice.name)
            return
        self.speaker = speaker
        self.status.part("voice", True, f"voice {speaker.voice.name}")

    def found_model(self) -> None:
        """The model in use, or why there is none, for the caretaker's page."""
        p = self.pipeline
        self.status.part("model", p.model_version is not None,
                         f"model {p.model_version}" if p.model_version else f"no model: {p.model_problem}")

    def shutdown(self) -> None:
        """Release devices."""
        sd_notify("STOPPING=1")
        running.clear_pid(self.settings.state_dir)
        self.history.close()
        if self.reviews is not None:
            self.reviews.close()
        if self.camera is not None:
            self.camera.close()
        if self.button is not None:
            self.button.close()
        if self.light is not None:
            self.light.close()
        log.info("stopped after %d press%s", self.presses, "" if self.presses == 1 else "es")
        logging.getLogger("wardrobe").removeHandler(self.status)
        self.status.close()


def state_dir_problem(state_dir: Path) -> str | None:
    """Why the state folder cannot take a new file (it cannot be made, is read-only or another user's), or None.
    The closet still answers without it: a blind user is better served by a closet that describes and keeps nothing
    than by one that stays silent while systemd restarts it (an SD card that went read-only after an error)."""
    try:
        check_folder_takes_files(state_dir, f"the state folder {state_dir}")
    except ValueError as e:
        return str(e)
    return None


def run_daemon(config_path: Path | None, overrides: dict, settings=None) -> int:
    """`wardrobe run`: start, loop, stop; an unexpected error exits non-zero so systemd restarts us."""
    daemon = Daemon(config_path, overrides, settings=settings)
    try:
        daemon.start()
        daemon.run()
    except BaseException as e:  # on the caretaker's page too (the command line says it in the journal)
        status = getattr(daemon, "status", None)
        if status is not None and not isinstance(e, KeyboardInterrupt | SystemExit):
            status.stopped(str(e) or type(e).__name__)
        raise
    return 0
