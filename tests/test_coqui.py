"""The optional Tacotron2 engine through Coqui TTS.

No trained Tacotron2 weights can be had offline, so this builds a small randomly initialised
Tacotron2 in a local model directory: it proves the engine loads a local model and produces
audio through wardrobe's Speaker, not that the (random) voice is intelligible.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from wardrobe.audio import WavSink, read_wav
from wardrobe.speech import CoquiVoice, Speaker, load_voice


@pytest.fixture(scope="module")
def tacotron_dir(tmp_path_factory):
    import torch
    from TTS.tts.configs.shared_configs import CharactersConfig
    from TTS.tts.configs.tacotron2_config import Tacotron2Config
    from TTS.tts.models.tacotron2 import Tacotron2

    torch.manual_seed(0)
    cfg = Tacotron2Config(
        r=2, max_decoder_steps=30, use_phonemes=False, text_cleaner="basic_cleaners",
        characters=CharactersConfig(characters="abcdefghijklmnopqrstuvwxyz", punctuations="!'(),-.:;? ", pad="_",
                                    eos="~", bos="^", blank=None,
                                    characters_class="TTS.tts.utils.text.characters.Graphemes"))
    cfg.audio.griffin_lim_iters = 10
    model = Tacotron2.init_from_config(cfg)
    d = tmp_path_factory.mktemp("tacotron2")
    torch.save({"model": model.state_dict(), "config": cfg.to_dict()}, d / "model.pth")
    (d / "config.json").write_text(json.dumps(cfg.to_dict()))
    return d


def test_coqui_engine_loads_a_local_tacotron2_and_speaks(tacotron_dir, tmp_path):
    voice = load_voice("coqui", tacotron_dir, fallback=False)
    assert isinstance(voice, CoquiVoice) and voice.sample_rate == 22050
    out = tmp_path / "coqui.wav"
    Speaker(voice, WavSink(path=out)).say("a navy blue shirt.")
    audio, rate = read_wav(out)
    assert rate == 22050 and len(audio) > 1000 and np.abs(audio).max() > 0


def test_coqui_dir_without_checkpoint_is_refused(tmp_path):
    from wardrobe.errors import SpeechError

    with pytest.raises(SpeechError, match=r"needs a \*.pth checkpoint and config.json"):
        load_voice("coqui", tmp_path, fallback=False)
