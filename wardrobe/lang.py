"""The words the closet says, per language: one TOML file each in wardrobe/data/lang/, assembled here.

A file holds the sentence patterns, the garment, colour, pattern and occasion words, the problems, the daemon's
messages and its spoken help. A pattern is text with {slots}; a slot may name a filter after a bar:
- `{thing|a}`: the English indefinite article ("a", "an", nothing for a plural garment), from [grammar];
- `{thing|이에요/예요}`: a Korean particle or ending chosen by the last syllable: the first form after a final
  consonant (batchim), the second after a vowel ("으로/로" also takes the second after ㄹ).
Adding a language is one new file: `available()` finds it, and a test checks it has every key English has.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

from wardrobe.errors import ConfigError

DEFAULT = "en"
SLOT = re.compile(r"\{(\w+)(?:\|([^{}]*))?\}")
HANGUL_FIRST, HANGUL_LAST, JONG_COUNT = 0xAC00, 0xD7A3, 28
RIEUL_JONG = 8
"""The final consonant index of ㄹ: "으로/로" takes "로" after it (서울로, 물로)."""


def final_consonant(text: str) -> int | None:
    """The batchim index of the last Hangul syllable (0: ends in a vowel), None when it ends in no Hangul."""
    letters = text.rstrip(" .,!?")
    if not letters:
        return None
    code = ord(letters[-1])
    if not HANGUL_FIRST <= code <= HANGUL_LAST:
        return None
    return (code - HANGUL_FIRST) % JONG_COUNT


def particle(text: str, forms: str) -> str:
    """text with the particle or ending its last syllable takes: particle("셔츠", "이에요/예요") -> "셔츠예요"."""
    after_consonant, after_vowel = forms.split("/", 1)
    jong = final_consonant(text)
    consonant = bool(jong) and not (after_consonant.startswith("으") and jong == RIEUL_JONG)
    return text + (after_consonant if consonant else after_vowel)


@dataclass(frozen=True)
class Language:
    """One language file, read."""

    code: str
    data: dict

    @property
    def name(self) -> str:
        """The language's own name for itself ("English", "한국어")."""
        return self.data["language"]["name"]

    @property
    def espeak_voice(self) -> str:
        """espeak-ng's voice for this language."""
        return self.data["language"]["espeak_voice"]

    @property
    def piper(self) -> bool:
        """Whether the bundled Piper voice speaks this language (else espeak-ng, unless speech.model is set)."""
        return bool(self.data["language"]["piper"])

    def text(self, section: str, key: str) -> str:
        """One fixed sentence: text("daemon", "ready") -> "Ready."."""
        return self.data[section][key]

    def list(self, section: str, key: str) -> list[str]:
        """A list of sentences (the spoken help)."""
        return list(self.data[section][key])

    def render(self, section: str, key: str, plural: frozenset[str] = frozenset(), /, **slots: str) -> str:
        """A sentence pattern with its slots filled; `plural` names the slots holding a plural garment."""
        return self.fill(self.data[section][key], plural, **slots)

    def fill(self, template: str, plural: frozenset[str] = frozenset(), /, **slots: str) -> str:
        """Fill a pattern's slots (filters applied) and tidy the spaces an empty slot leaves."""

        def one(m: re.Match) -> str:
            value, how = str(slots[m.group(1)]), m.group(2)
            if how is None or not value:
                return value
            if how == "a":
                return self.article(value, m.group(1) in plural)
            return particle(value, how)

        return re.sub(r" {2,}", " ", SLOT.sub(one, template)).strip()

    def article(self, noun_phrase: str, plural: bool) -> str:
        """'a navy T-shirt', 'an orange coat', 'black trousers'."""
        g = self.data["grammar"]
        if plural:
            return noun_phrase
        return (g["article_before_vowel"] if noun_phrase[:1].lower() in g["vowels"] else g["article"]) + " " + \
            noun_phrase

    def is_plural(self, garment: str) -> bool:
        """Whether this language says the garment as a plural ("trousers": no article)."""
        return garment in self.data.get("grammar", {}).get("plural", ())

    def garment(self, code: str) -> str:
        """A garment class's name ("coat or jacket" -> "코트나 재킷"); an unknown class is said as it is."""
        return self.data["garments"].get(code, code)

    def colour(self, word: str, family: str) -> str:
        """A colour word said in this language. The basic and plain words are in the file; a descriptive CSS3
        name in words ("dark slate gray") is said as it is ("css3") or as a shade of its family ("shade":
        [shades] gives the words for "dark", "light" ...)."""
        words = self.data["colours"]
        if word in words:
            return words[word]
        if self.data["language"]["descriptive"] == "css3":
            return word
        shade = self.data["shades"].get(word.split(" ", 1)[0], "")
        return f"{shade} {words[family]}".strip()

    def pattern(self, code: str) -> str:
        """A fabric pattern's word."""
        return self.data["patterns"][code]

    def garment_words(self) -> set[str]:
        """Words that already say what a garment is, in this language (the garment names included)."""
        return {*self.data["grammar"].get("garment_words", ()), *self.data["garments"].values()}


@cache
def load(code: str = DEFAULT) -> Language:
    """The packaged language file for a code ("en", "ko"); ConfigError naming the choices otherwise."""
    if code not in available():
        raise ConfigError(f"unknown language {code!r}; choose from {', '.join(available())}")
    text = resources.files("wardrobe.data").joinpath("lang", f"{code}.toml").read_text(encoding="utf-8")
    return Language(code, tomllib.loads(text))


@lru_cache(maxsize=1)
def available() -> tuple[str, ...]:
    """The language codes with a file in the package."""
    folder = resources.files("wardrobe.data").joinpath("lang")
    return tuple(sorted(f.name.removesuffix(".toml") for f in folder.iterdir() if f.name.endswith(".toml")))


def english() -> Language:
    """The default language."""
    return load(DEFAULT)
