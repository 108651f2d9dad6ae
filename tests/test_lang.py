"""The language files: English says exactly what it said before them, every language has every key, and Korean
is Korean: Hangul only, particles by the last syllable, spoken by espeak-ng, in the daemon and in describe."""

from __future__ import annotations

import gzip
import json
import re
import unicodedata

import pytest

from tests.conftest import ROOT
from tests.data import make_en_golden as golden
from wardrobe import lang, matching, phrase
from wardrobe.lang import particle
from wardrobe.phrase import Alternative

GOLDEN = json.loads(gzip.open(ROOT / "tests/data/en-golden.json.gz", "rt").read())
EN, KO = lang.load("en"), lang.load("ko")
HANGUL = re.compile(r"[\uac00-\ud7a3]")


def test_english_sentences_are_unchanged():
    """25,830 sentences from the phrase code before the language files (tests/data/make_en_golden.py)."""
    for row in GOLDEN["phrases"]:
        alts = golden.tiers(row["garment"], row["runner"])[row["tier"]]
        got = phrase.clauses_for(alts, golden.COLOURS[row["colours"]], row.get("problems", []), row.get("detail", False),
                                 row.get("occasion"), row["pattern"])
        assert got == row["clauses"], row


def test_english_messages_are_unchanged():
    for row in GOLDEN["yours"]:
        assert phrase.yours(row["name"], row["garment"]) == row["said"]
    pairs = golden.compare_pairs()
    assert {k: matching.compare(a, b).sentence for k, (a, b) in pairs.items()} == GOLDEN["compare"]
    assert {f"SAY_{k.upper()}": v for k, v in EN.data["daemon"].items() if k not in ("gestures", "yours")} \
        == GOLDEN["daemon"]
    assert EN.list("daemon", "gestures") == GOLDEN["gestures"]
    assert {k: v for k, v in EN.data["problems"].items() if k in GOLDEN["problems"]} == GOLDEN["problems"]
    assert set(EN.data["problems"]) - set(GOLDEN["problems"]) == {"colour-unsure"}  # added 2026-12-01, said after


def keys(table: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in table.items():
        out |= keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}"}
    return out


@pytest.mark.parametrize("code", [c for c in lang.available() if c != "en"])
def test_every_language_has_every_english_key_and_slot(code):
    """A new language is one file: it must say everything English says, with the slots the code fills."""
    other = lang.load(code)
    english = {k for k in keys(EN.data) if not k.startswith("grammar.")}
    assert english - keys(other.data) == set()
    for key in english:
        section, name = key.split(".", 1)
        mine, theirs = EN.data[section][name], other.data[section][name]
        if isinstance(mine, str):
            assert {m[0] for m in lang.SLOT.findall(theirs)} <= {m[0] for m in lang.SLOT.findall(mine)}, key
        elif isinstance(mine, list):
            assert len(theirs) == len(mine), key
    for template in (v for table in other.data.values() for v in table.values() if isinstance(v, str)):
        for _, how in lang.SLOT.findall(template):
            assert how in ("", "a") or re.fullmatch(r"[\uac00-\ud7a3]+/[\uac00-\ud7a3]*", how), template


def test_an_unknown_language_is_one_line():
    with pytest.raises(lang.ConfigError, match="unknown language 'xx'; choose from en, ko"):
        lang.load("xx")


def has_batchim(word: str) -> bool:
    """Independently of lang.py: a syllable with a final consonant decomposes into three jamo."""
    return len(unicodedata.normalize("NFD", word.rstrip()[-1])) == 3


def korean_words() -> list[str]:
    return sorted({*KO.data["garments"].values(), *KO.data["colours"].values(), *KO.data["occasions"].values()})


@pytest.mark.parametrize("word", korean_words())
def test_particles_follow_the_last_syllable_of_every_garment_and_colour_word(word):
    consonant = has_batchim(word)
    assert particle(word, "이에요/예요") == word + ("이에요" if consonant else "예요")
    assert particle(word, "이/가") == word + ("이" if consonant else "가")
    assert particle(word, "과/와") == word + ("과" if consonant else "와")
    assert particle(word, "이나/나") == word + ("이나" if consonant else "나")
    rieul = unicodedata.normalize("NFD", word[-1])[-1] == "\u11af"
    assert particle(word, "으로/로") == word + ("으로" if consonant and not rieul else "로")


@pytest.mark.parametrize("said, expected", [
    (("셔츠", "이에요/예요"), "셔츠예요"), (("코트나 재킷", "이에요/예요"), "코트나 재킷이에요"),
    (("양말", "이에요/예요"), "양말이에요"), (("흰색", "이/가"), "흰색이"), (("베이지", "이/가"), "베이지가"),
    (("남색", "과/와"), "남색과"), (("회색", "과/와"), "회색과"), (("베이지", "과/와"), "베이지와"),
    (("정장", "으로/로"), "정장으로"), (("서울", "으로/로"), "서울로"), (("잠옷", "으로/로"), "잠옷으로"),
    (("바지", "이나/나"), "바지나"), (("red coat", "이에요/예요"), "red coat예요"),
])
def test_particles_on_known_words(said, expected):
    assert particle(*said) == expected


def korean_sentences() -> list[str]:
    """Every garment x colour word x pattern x hedge (with a second colour and a colour hedge), the long press,
    the comparisons and every message: all the Korean file can say about a garment."""
    from tests.lang_table import TIERS, alternatives, colour, compare_said, rows

    out = []
    words = sorted(EN.data["colours"])
    for g in sorted(EN.data["garments"]):
        for i, w in enumerate(words):
            second = colour(words[(i + 5) % len(words)], 0.3)
            hedge = colour(w, hedge=words[(i + 1) % len(words)])
            for pattern in (None, *phrase.PATTERNS):
                for tier in TIERS:
                    for cols in ([colour(w)], [colour(w), second], [hedge, second]):
                        out.append(phrase.sentence(alternatives(g, tier), cols, [], pattern=pattern, lang=KO))
    for table in rows("ko").values():  # not the user's own names typed in Latin letters ("red winter coat")
        out += [ko for what, _, ko in table if not (what.startswith("yours") and re.search(r"[A-Za-z]", what[6:]))]
    out += [compare_said([colour("red", lab=(45.0, 65.0, 45.0))], [colour("navy blue")], None, KO)]
    return out


def test_every_korean_sentence_is_hangul_without_latin_letters():
    said = korean_sentences()
    assert len(said) > 30000
    for s in said:
        assert HANGUL.search(s) and not re.search(r"[A-Za-z]", s), s
        assert "  " not in s and not s.startswith(" "), s


def test_korean_word_order_and_examples():
    """The sentence shapes the issue asked for: colour, pattern, garment, ending; two colours; hedges; yours."""
    from tests.lang_table import colour

    navy, white = colour("navy blue"), colour("white", 0.3, (95.0, 0.0, 0.0))
    assert phrase.sentence([Alternative("shirt", 0.9)], [navy], [], pattern="striped", lang=KO) == "남색 줄무늬 셔츠입니다."
    assert phrase.sentence([Alternative("T-shirt", 0.9)], [navy, white], [], lang=KO) == "흰색이 섞인 남색 티셔츠입니다."
    hedged = phrase.sentence([Alternative("coat or jacket", 0.6), Alternative("blazer", 0.3)], [], [], lang=KO)
    assert hedged == "아마 외투일 거예요. 아니면 블레이저일 수도 있어요."  # "coat or jacket" is one word: 외투
    assert phrase.yours("빨간 겨울 코트", "coat or jacket", KO) == "등록하신 빨간 겨울 코트입니다."
    assert phrase.yours("할아버지", "coat or jacket", KO) == "등록하신 할아버지 외투입니다."
    assert phrase.yours("빨간 폴로", "polo shirt", KO) == "등록하신 빨간 폴로입니다."  # not "폴로 폴로 셔츠"
    assert phrase.yours("red polo", "polo shirt") == "Your red polo."
    unsure = phrase.sentence([Alternative("trousers", 0.3), Alternative("shorts", 0.2)], [navy, white], [], lang=KO)
    assert unsure == "어떤 옷인지 잘 모르겠어요. 바지나 반바지일 수도 있어요. 색은 흰색이 섞인 남색이에요."
    assert phrase.sentence([], [], ["too-dark"], lang=KO) == KO.text("problems", "too-dark")


def test_korean_descriptive_words_are_shades_of_the_family():
    assert KO.colour("dark slate gray", "gray") == "진한 회색"
    assert KO.colour("light steel blue", "blue") == "연한 파란색" and KO.colour("light sky blue", "blue") == "연한 하늘색"
    assert KO.colour("navy blue", "blue") == "남색" and KO.colour("teal", "green") == "청록색"
    assert EN.colour("dark slate gray", "gray") == "dark slate gray"


def test_every_descriptive_colour_word_reads_as_korean_colour():
    """An audit of the Korean: "light gray", whose family is white, was said 연한 흰색 ("light white"), and "grey"
    검정 where "gray" was 회색. Every CSS3 name the descriptive words can say, with the family it is said in: never a
    shade of white or black, and the spellings of one colour said alike."""
    from wardrobe.colours import ColourNamer, css3_words

    namer = ColourNamer(words="descriptive")
    said = {(css3_words(namer.css3_names[i]), f): KO.colour(css3_words(namer.css3_names[i]), f)
            for f, ids in namer.css3_for.items() for i in ids}  # the names and families said (colours.says_family)
    assert len(said) > 100
    for (word, family), korean in said.items():
        assert not re.match(r"(연한|진한) (흰색|검정)", korean), (word, family, korean)
    for a, b in (("gray", "grey"), ("light gray", "light grey"), ("dark gray", "dark grey"), ("dim gray", "dim grey")):
        assert KO.colour(a, "gray") == KO.colour(b, "gray"), (a, b)
    assert said["light gray", "gray"] == "연회색" and said["sky blue", "blue"] == "하늘색"


def syllables(text: str) -> int:
    return len(HANGUL.findall(text)) + sum(len(n) for n in re.findall(r"\d+", text))


@pytest.fixture(scope="module")
def korean_voice():
    from wardrobe.speech import EspeakVoice

    return EspeakVoice(KO.espeak_voice)


@pytest.mark.parametrize("kind", ["sure", "probably", "maybe", "unsure_two", "colours", "percent_sure", "also_some",
                                  "occasion", "yours", "problem", "compare", "ready", "gestures"])
def test_espeak_ng_says_each_kind_of_korean_clause_at_a_speaking_pace(kind, korean_voice):
    """Non-empty audio, not silence, 0.08-0.5 s per syllable (Korean is spoken at about 0.15-0.25 s)."""
    import numpy as np

    from tests.lang_table import TIERS, alternatives, colour, rows

    navy, white = colour("navy blue"), colour("white", 0.3, (95.0, 0.0, 0.0))
    clauses = {
        "sure": phrase.clauses_for(alternatives("shirt", "sure"), [navy, white], [], pattern="striped", lang=KO),
        "probably": phrase.clauses_for(alternatives("coat or jacket", "probably"), [navy], [], lang=KO),
        "maybe": phrase.clauses_for(alternatives("coat or jacket", "probably, maybe"), [navy], [], lang=KO)[1:],
        "unsure_two": phrase.clauses_for(alternatives("trousers", "unsure, maybe", "shorts"), [navy], [], lang=KO),
        "colours": phrase.clauses_for([], [navy, white], [], lang=KO)[:1],
        "percent_sure": phrase.clauses_for(alternatives("shirt", "sure"), [navy], [], detail=True, lang=KO)[1:],
        "also_some": phrase.clauses_for(alternatives("shirt", "sure"), [navy, white, colour("gray", 0.12)], [],
                                        detail=True, lang=KO)[-1:],
        "occasion": phrase.clauses_for(alternatives("shirt", "sure"), [navy], [], detail=True,
                                       occasion="usage:formal", lang=KO)[-1:],
        "yours": [phrase.yours("할아버지", "socks", KO)],
        "problem": [KO.text("problems", "no-garment")],
        "compare": [rows("ko")["Do these match? (a double press)"][0][2]],
        "ready": [KO.text("daemon", "ready")],
        "gestures": KO.list("daemon", "gestures"),
    }[kind]
    assert TIERS and clauses
    for text in clauses:
        audio = korean_voice.synthesize(text)
        seconds = len(audio) / korean_voice.sample_rate
        assert float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) > 300, text
        assert 0.08 * syllables(text) <= seconds <= 0.5 * syllables(text) + 0.5, (text, seconds)


def test_the_review_table_in_the_docs_is_current():
    from tests.lang_table import markdown

    assert (ROOT / "docs" / "ko-sentences.md").read_text() == markdown("ko"), \
        "regenerate: python -m tests.lang_table ko > docs/ko-sentences.md"


def test_describe_in_korean_keeps_the_json_in_english(tmp_path):
    """Only the sentence changes language: keys, garment and family codes stay English, "language" is added."""
    from tests.conftest import PHOTOS
    from tests.test_cli import wardrobe

    photo = str(PHOTOS / "product-tshirts-navy-blue.jpg")
    runs = {code: wardrobe("describe", "--json", "--language", code, "--state-dir", str(tmp_path), photo)
            for code in ("en", "ko")}
    en, ko = (json.loads(runs[c].stdout) for c in ("en", "ko"))
    assert runs["ko"].returncode == 0 and en["language"] == "en" and ko["language"] == "ko"
    assert set(en) == set(ko) and en["garment"] == ko["garment"] == "T-shirt"
    assert [c["family"] for c in en["colours"]] == [c["family"] for c in ko["colours"]]
    assert [c["name"] for c in en["colours"]] == [c["name"] for c in ko["colours"]]
    assert ko["sentence"] == "남색 프린트 티셔츠입니다." and en["sentence"] == "A navy blue printed T-shirt."


def test_the_daemon_speaks_korean(tmp_path):
    """The real daemon with speech.language = "ko": its ready message and a press in Korean, spoken by
    espeak-ng's Korean voice (each WAV it wrote is exactly espeak-ng -v ko saying the logged clause)."""
    import numpy as np

    from tests.test_daemon import DaemonProcess
    from wardrobe.audio import read_wav
    from wardrobe.speech import EspeakVoice

    config = tmp_path / "config.toml"
    config.write_text('[speech]\nlanguage = "ko"\n')
    d = DaemonProcess(tmp_path, "--config", str(config))
    try:
        d.wait_for(r"ready in .*voice espeak:ko")
        d.wait_for(r"saying: 준비됐어요\.")
        d.send("press")
        line = d.wait_for(r"described: ")[0]
        d.send("triple")
        d.wait_for(r"saying: 한 번 누르면 들고 있는 옷을 알려 드려요\.")
    finally:
        d.stop()
    said = json.loads(re.search(r'sentence=(".*?") garment', line).group(1))
    assert said == "남색 바지입니다.", line  # the jeans photo: "Navy blue trousers." in English
    voice = EspeakVoice("ko")
    heard = [read_wav(p)[0] for p in d.utterances()]
    gap = np.zeros(int(0.12 * voice.sample_rate), np.int16)  # a file sink joins clauses with a short pause
    for clauses in (["준비됐어요."], [said], KO.list("daemon", "gestures")):
        parts = [voice.synthesize(c) for c in clauses]
        expected = np.concatenate([x for part in parts for x in (part, gap)][:-1])
        assert any(a.shape == expected.shape and np.array_equal(a, expected) for a in heard), clauses


def test_a_reload_changes_the_language_and_its_voice(tmp_path):
    """The caretaker sets language = "ko" and reloads (SIGHUP): the next words are Korean, in espeak-ng's voice."""
    import signal

    from tests.test_daemon import DaemonProcess

    config = tmp_path / "config.toml"
    config.write_text('[speech]\nlanguage = "en"\n')
    d = DaemonProcess(tmp_path, "--config", str(config))
    try:
        d.wait_for(r"saying: Ready\.")
        config.write_text('[speech]\nlanguage = "ko"\n')
        d.signal(signal.SIGHUP)
        d.wait_for(r"reloaded: model \S+, voice espeak:ko, language ko")
        d.send("press")
        d.wait_for(r'described: sentence="남색 바지입니다\."')
    finally:
        assert d.stop() == 0


def test_two_blacks_apart_are_never_a_lighter_black():
    """`match` said "a lighter black than the first" (issue 24's friction list)."""
    from tests.lang_table import colour, compare_said

    first, now = [colour("black", lab=(8.0, 0.0, 0.0))], [colour("black", lab=(24.0, 0.0, 0.0))]
    assert compare_said(now, first, None, EN) == "Different: both are black, but this one is lighter."
    assert compare_said(now, first, None, KO) == "색이 달라요. 둘 다 검정이지만 이 옷이 더 밝은 색이에요."
    navy, darker = [colour("navy blue")], [colour("navy blue", lab=(20.0, 10.0, -30.0))]
    assert compare_said(darker, navy, None, EN) == "Different: this one is a darker navy blue than the first."


def test_a_colour_word_that_says_a_shade_gets_no_second_shade():
    """The descriptive words said "a darker dark slate gray than the first"; in Korean "더 진한 진한 회색"."""
    from wardrobe.colours import Colour
    from wardrobe.matching import compare

    def slate(lightness: float) -> Colour:
        return Colour("dark slate gray", "dark slate gray", "gray", (47, 79, 79), 0.7, (lightness, -12.0, -4.0))

    class Seen:
        def __init__(self, c):
            self.colours, self.pattern, self.embedding = [c], None, None

    assert compare(Seen(slate(22.0)), Seen(slate(40.0)), lang=EN).sentence == (
        "Different: both are dark slate gray, but this one is darker.")
    said = compare(Seen(slate(22.0)), Seen(slate(40.0)), lang=KO).sentence
    assert said == "색이 달라요. 둘 다 진한 회색이지만 이 옷이 더 어두운 색이에요." and "진한 진한" not in said


def test_a_colour_doubted_when_described_is_doubted_again_when_compared():
    """A double press names the colours of both garments: a name the closet doubted ("I'm not sure of the colour.")
    was said plainly in the comparison. Whether they match is the pixels' difference and stays as it was."""
    from dataclasses import replace

    from wardrobe.colours import Colour
    from wardrobe.matching import compare

    navy = Colour("navy blue", "navy", "blue", (0, 0, 128), 0.7, (13.0, 47.0, -64.0))
    black = Colour("black", "black", "black", (10, 10, 10), 0.7, (3.0, 0.0, 0.0))

    class Seen:
        def __init__(self, c):
            self.colours, self.pattern, self.embedding = [c], None, None

    doubted = replace(navy, unsure=True)
    assert compare(Seen(navy), Seen(navy), lang=EN).sentence == "They match: both navy blue."
    assert compare(Seen(navy), Seen(doubted), lang=EN).sentence == "They match: both navy blue. I'm not sure of the colour."
    assert compare(Seen(black), Seen(doubted), lang=EN).sentence == (
        "Different: this one is black, the first was navy blue. I'm not sure of the colour.")
    assert compare(Seen(black), Seen(navy), lang=EN).sentence == "Different: this one is black, the first was navy blue."
    said = compare(Seen(navy), Seen(doubted), lang=KO).sentence
    assert said.endswith(" 색은 정확하지 않을 수 있어요.") and compare(Seen(navy), Seen(doubted), lang=KO).kind == "match"


def test_a_colour_is_never_said_twice_in_the_languages_words():
    """A Korean review heard "청록색이 섞인 청록색 셔츠", "청록색이나 청록색" and "이 옷은 청록색이고, 첫 번째 옷은
    청록색이에요" (said as different): two CSS3 names can be one word in a language. And in English a hedged main
    colour was followed on a long press by "There is also some black." (phrase.colour_words)."""
    from tests.lang_table import compare_said
    from wardrobe.colours import Colour

    def css(name: str, family: str, share: float, lab=(25.0, 5.0, -30.0), hedge=None, hedge_family=None) -> Colour:
        return Colour(name, name, family, (0, 0, 0), share, lab, hedge, hedge_family)

    assert KO.colour("navy blue", "blue") == KO.colour("midnight blue", "blue")  # one word: 남색
    shirt = [Alternative("shirt", 0.9)]
    two = [css("navy blue", "blue", 0.6), css("midnight blue", "blue", 0.3)]
    assert phrase.sentence(shirt, two, [], lang=KO) == "남색 셔츠입니다."
    hedged = [css("navy blue", "blue", 0.7, hedge="midnight blue", hedge_family="blue")]
    assert phrase.sentence(shirt, hedged, [], lang=KO) == "남색 셔츠입니다."
    extra = [css("navy blue", "blue", 0.6), css("white", "white", 0.3, (95.0, 0.0, 0.0)),
             css("midnight blue", "blue", 0.1)]
    assert "남색도" not in phrase.sentence(shirt, extra, [], detail=True, lang=KO)
    apart = compare_said([css("navy blue", "blue", 0.7, (15.0, 5.0, -30.0))],
                         [css("midnight blue", "blue", 0.7, (35.0, 5.0, -30.0))], None, KO)
    assert apart == "색이 달라요. 이 옷은 첫 번째 옷보다 더 어두운 남색이에요." or "둘 다 남색이지만" in apart, apart
    black_too = [css("navy blue", "blue", 0.6, hedge="black", hedge_family="black"),
                 css("white", "white", 0.3, (95.0, 0.0, 0.0)), css("black", "black", 0.1, (5.0, 0.0, 0.0))]
    said = phrase.sentence(shirt, black_too, [], detail=True, lang=EN)
    assert said.startswith("A navy blue or black shirt with white.") and "also some black" not in said, said


def test_a_doubted_main_colour_is_not_read_into_a_two_colour_pattern():
    """A Korean review: "검정이나 남색과 흰색 줄무늬 셔츠" (and in English "a navy blue or black and white striped
    shirt") can be heard as black, or as navy and white; the second colour goes after the garment then."""
    from tests.lang_table import colour

    shirt = [phrase.Alternative("shirt", 0.9)]
    hedged = [colour("navy blue", hedge="black"), colour("white", 0.3, (95.0, 0.0, 0.0))]
    assert phrase.sentence(shirt, hedged, [], pattern="striped") == "A striped shirt, navy blue or black with white."
    assert phrase.sentence(shirt, hedged, [], pattern="striped", lang=KO) == "흰색이 섞인 남색이나 검정 줄무늬 셔츠입니다."
    plain = [colour("navy blue"), colour("white", 0.3, (95.0, 0.0, 0.0))]
    assert phrase.sentence(shirt, plain, [], pattern="striped", lang=KO) == "남색과 흰색 줄무늬 셔츠입니다."
