"""Audio out: a Player protocol with a sounddevice backend and a WAV-file sink."""

from __future__ import annotations

import io
import logging
import wave
from pathlib import Path
from typing import Protocol

import numpy as np

from wardrobe.errors import AudioError
from wardrobe.files import check_speech_file, write_atomic

log = logging.getLogger(__name__)



class Player(Protocol):
    """Plays mono int16 audio."""

    def play(self, audio: np.ndarray, sample_rate: int) -> None:
        """Play (or store) the audio; blocks until done."""


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """Mono int16 audio as the bytes of a WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.asarray(audio, np.int16).tobytes())
    return buf.getvalue()


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono int16 audio as a WAV file, via a temp file and rename so no half file is left."""
    try:
        check_speech_file(path, "the speech file")
        write_atomic(path, wav_bytes(audio, sample_rate), sync=False)
    except ValueError as e:
        raise AudioError(str(e)) from None
    except OSError as e:
        raise AudioError(f"cannot write {path}: {e.strerror or e}") from e


def read_wav(source: Path | bytes) -> tuple[np.ndarray, int]:
    """Read a mono 16-bit WAV file (a path, or the file's bytes)."""
    with wave.open(io.BytesIO(source) if isinstance(source, bytes) else str(source), "rb") as w:
        if w.getsampwidth() != 2:
            raise AudioError(f"{'the recording' if isinstance(source, bytes) else source}: only 16-bit WAV is supported")
        data = np.frombuffer(w.readframes(w.getnframes()), np.int16)
        if w.getnchannels() > 1:
            data = data.reshape(-1, w.getnchannels())[:, 0]
        return data.copy(), w.getframerate()


class WavSink:
    """Writes each utterance to a WAV file: a fixed path, or numbered files in a folder."""

    def __init__(self, path: Path | None = None, folder: Path | None = None) -> None:
        if (path is None) == (folder is None):
            raise ValueError("WavSink needs exactly one of path or folder")
        self.path, self.folder, self.count = path, folder, 0
        self.written: list[Path] = []

    def play(self, audio: np.ndarray, sample_rate: int) -> None:
        """Store the audio as the next WAV file."""
        if self.path is not None:
            target = self.path
        else:
            self.count += 1
            target = self.folder / f"utterance-{self.count:04d}.wav"  # type: ignore[operator]
        write_wav(target, audio, sample_rate)
        self.written.append(target)


class SoundDevicePlayer:
    """Plays through PortAudio (ALSA on the Pi) with sounddevice; volume 0..1."""

    streams = True
    """Clauses are played as soon as each is synthesised."""

    def __init__(self, device: str | int | None = None, volume: float = 1.0) -> None:
        try:
            import sounddevice
        except (ImportError, OSError) as e:
            raise AudioError(f"sounddevice/PortAudio is not available ({e}); install libportaudio2") from e
        self.sd, self.device, self.volume = sounddevice, device, volume

    def check(self) -> str:
        """Name the output device, or raise AudioError if there is none."""
        try:
            info = self.sd.query_devices(self.device, "output")
        except Exception as e:  # PortAudio raises its own error types
            raise AudioError(f"no audio output device ({e})") from e
        return str(info["name"])

    def play(self, audio: np.ndarray, sample_rate: int) -> None:
        """Play and wait until it has finished. PortAudio's blocking write, not a callback stream: a cffi
        callback needs writable and executable memory, which the service's MemoryDenyWriteExecute refuses."""
        scaled = (np.asarray(audio, np.float32) * (self.volume / 32768.0)).astype(np.float32).reshape(-1, 1)
        try:
            with self.sd.OutputStream(sample_rate, channels=1, dtype="float32", device=self.device) as stream:
                stream.write(scaled)  # leaving the block waits until the last sample has been played
        except Exception as e:
            raise AudioError(f"audio output failed: {e}") from e


class NullPlayer:
    """Plays nothing (describe --quiet); streams, so timings count the first clause as a speaker would."""

    streams = True

    def play(self, audio: np.ndarray, sample_rate: int) -> None:
        """Drop the audio."""


class Microphone(Protocol):
    """Records mono int16 audio."""

    def record(self, seconds: float, sample_rate: int) -> np.ndarray:
        """Record for this long; AudioError if there is no microphone."""


class SoundDeviceMicrophone:
    """A USB microphone through PortAudio (sounddevice)."""

    def __init__(self, device: str | int | None = None) -> None:
        try:
            import sounddevice
        except (ImportError, OSError) as e:
            raise AudioError(f"sounddevice/PortAudio is not available ({e}); install libportaudio2") from e
        self.sd, self.device = sounddevice, device

    def record(self, seconds: float, sample_rate: int) -> np.ndarray:
        try:  # a blocking read, no callback (see SoundDevicePlayer.play)
            with self.sd.InputStream(sample_rate, channels=1, dtype="int16", device=self.device) as stream:
                audio, _overflowed = stream.read(int(seconds * sample_rate))
        except Exception as e:  # PortAudio raises its own error types
            raise AudioError(f"no microphone ({e})") from e
        return np.asarray(audio).reshape(-1)


class WavMicrophone:
    """Replays a WAV file as if it were spoken into a microphone (tests; machines without one)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def record(self, seconds: float, sample_rate: int) -> np.ndarray:
        try:
            audio, rate = read_wav(self.path)
        except (OSError, EOFError, wave.Error) as e:
            raise AudioError(f"the microphone file {self.path} cannot be read: {e}") from e
        if rate != sample_rate:
            idx = np.arange(int(len(audio) * sample_rate / rate)) * rate / sample_rate
            audio = np.interp(idx, np.arange(len(audio)), audio.astype(np.float32)).astype(np.int16)
        return audio[: int(seconds * sample_rate)]
