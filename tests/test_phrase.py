"""The spoken sentence."""

from __future__ import annotations

from dataclasses import replace

import pytest

from wardrobe.colours import Colour
from wardrobe.phrase import Alternative, clauses_for, sentence, yours

NAVY = Colour("navy blue", "midnightblue", "blue", (30, 35, 70), 0.7, (15.0, 5.0, -25.0))
WHITE = Colour("white", "whitesmoke", "white", (240, 240, 240), 0.3, (95.0, 0.0, 0.0))
ORANGE = Colour("orange", "darkorange", "orange", (240, 130, 20), 1.0, (65.0, 40.0, 70.0))


def test_sure():
    assert sentence([Alternative("T-shirt", 0.9)], [NAVY, WHITE], []) == "A navy blue T-shirt with white."


def test_probably_maybe():
    s = sentence([Alternative("coat or jacket", 0.6), Alternative("blazer", 0.3)], [NAVY], [])
    assert s == "Probably a navy blue coat or jacket, maybe a blazer."


def test_unsure_says_so_and_still_gives_the_colour():
    s = sentence([Alternative("shirt", 0.3), Alternative("blouse", 0.25)], [NAVY], [])
    assert s == "I'm not sure what this is, maybe a shirt or a blouse. The colour is navy blue."


def test_an_and_plurals():
    assert sentence([Alternative("coat or jacket", 0.95)], [ORANGE], []) == "An orange coat or jacket."
    assert sentence([Alternative("trousers", 0.95)], [NAVY], []) == "Navy blue trousers."


def test_problems_are_spoken_first_and_block_guessing():
    assert sentence([Alternative("T-shirt", 0.9)], [NAVY], ["too-dark"]) == "It's too dark, please turn on the light."
    assert "can't see a garment" in sentence([], [], ["no-garment"])
    # Blur is said first, as aiming help is: the guess after it is doubtful.
    assert sentence([Alternative("T-shirt", 0.9)], [NAVY], ["blurry"]) == \
        "The picture is blurry, please hold the garment still. A navy blue T-shirt."
    # Held so close that it fills the frame, a garment is not seen: the message says how far to hold it.
    assert sentence([], [], ["no-garment"]).endswith("in front of the camera, about an arm's length away.")


def test_no_model_names_colours_only():
    assert sentence([], [NAVY, WHITE], ["no-model"]) == \
        "The colour is navy blue with white. I can't tell what garment it is."


def test_detail_adds_confidence_and_alternative():
    s = sentence([Alternative("T-shirt", 0.9), Alternative("polo shirt", 0.15)], [NAVY, WHITE], [], detail=True)
    assert "90 percent sure it is a T-shirt" in s and "could also be a polo shirt" in s


def test_clauses_split_for_fast_first_audio():
    c = clauses_for([Alternative("coat or jacket", 0.6), Alternative("blazer", 0.3)], [NAVY], [])
    assert c == ["Probably a navy blue coat or jacket,", "maybe a blazer."]


def test_long_press_adds_a_confident_occasion_only():
    alts = [Alternative("shirt", 0.9)]
    long = sentence(alts, [NAVY], [], detail=True, occasion="usage:formal")
    assert long.endswith("It looks like formal wear.")
    assert "wear" not in sentence(alts, [NAVY], [], occasion="usage:formal")  # a short press never says it
    assert "looks like" not in sentence(alts, [NAVY], [], detail=True, occasion=None)
    assert sentence(alts, [NAVY], [], detail=True, occasion="usage:sports").endswith("It looks like sportswear.")


@pytest.mark.parametrize("pattern, expected", [
    (None, "A navy blue shirt with white."),
    ("striped", "A navy blue and white striped shirt."),
    ("checked", "A navy blue and white checked shirt."),
    ("solid", "A navy blue shirt with white."),  # "plain" beside a second colour contradicts it
    ("floral", "A navy blue and white flowered shirt."),
])
def test_a_sure_pattern_is_said_with_the_colours(pattern, expected):
    assert sentence([Alternative("shirt", 0.9)], [NAVY, WHITE], [], pattern=pattern) == expected


def test_a_pattern_on_one_colour_and_a_hedged_garment():
    s = sentence([Alternative("shirt", 0.6), Alternative("blouse", 0.3)], [NAVY], [], pattern="striped")
    assert s == "Probably a navy blue striped shirt, maybe a blouse."


@pytest.mark.parametrize("name, garment, expected", [
    ("red winter coat", "coat or jacket", "Your red winter coat."),  # said "coat coat or jacket" before
    ("blue jacket", "coat or jacket", "Your blue jacket."),
    ("navy jumper", "long-sleeved top", "Your navy jumper."),  # a garment word of its own, not the model's
    ("black work trousers", "trousers", "Your black work trousers."),
    ("favourite jeans", "trousers", "Your favourite jeans."),
    ("grandad's", "coat or jacket", "Your grandad's coat or jacket."),  # no garment word: the model's is added
    ("  wedding   shirt ", "shirt", "Your wedding shirt."),
    ("Sunday best", None, "Your Sunday best."),
])
def test_your_garment_is_named_once(name, garment, expected):
    assert yours(name, garment) == expected


def test_an_unsure_colour_is_said_right_after_it():
    """A colour the learned decision gave little chance is named, then called unsure at once (on a long press before
    the details, so it is not heard as being about a second colour); never when nothing is described (a blocking
    problem) or no colour was said. When the garment is unsure too, the colour itself is hedged."""
    from dataclasses import replace

    from wardrobe.lang import load

    doubted = replace(NAVY, unsure=True)
    sure = [Alternative("T-shirt", 0.9), Alternative("polo shirt", 0.15)]
    assert sentence(sure, [doubted, WHITE], []) == "A navy blue T-shirt with white. I'm not sure of the colour."
    assert sentence(sure, [NAVY, WHITE], []) == "A navy blue T-shirt with white."
    assert sentence(sure, [doubted], ["blurry"]) == \
        "The picture is blurry, please hold the garment still. A navy blue T-shirt. I'm not sure of the colour."
    assert sentence(sure, [doubted], ["too-dark"]) == "It's too dark, please turn on the light."
    long = clauses_for(sure, [doubted, WHITE], [], detail=True)
    assert long.index("I'm not sure of the colour.") == 1 and "90 percent sure" in long[2]
    unsure = clauses_for([Alternative("shirt", 0.3), Alternative("blouse", 0.25)], [doubted], [])
    assert unsure[-1] == "The colour might be navy blue."  # the doubt said once, on the colour itself
    assert "I'm not sure of the colour." not in unsure
    assert sentence(sure, [doubted], [], lang=load("ko")) == "남색 티셔츠입니다. 색은 정확하지 않을 수 있어요."


def test_a_doubted_colour_with_a_pattern_comes_after_the_garment():
    """A listener heard "Black or navy blue striped shoes." as navy-blue stripes."""
    hedged = replace(NAVY, or_name="black", or_family="black")
    shoes = [Alternative("shoes", 0.9)]
    assert sentence(shoes, [hedged], [], pattern="striped") == "Striped shoes, navy blue or black."
    assert sentence([Alternative("shirt", 0.9)], [hedged], [], pattern="checked") == "A checked shirt, navy blue or black."
    assert sentence([Alternative("shirt", 0.9)], [hedged], []) == "A navy blue or black shirt."  # no pattern: as before


def test_a_runner_up_after_a_colour_is_a_sentence_of_its_own():
    """"Probably a teal coat or jacket with black, maybe a hoodie." was heard as "black, maybe a hoodie"."""
    hedged = replace(NAVY, or_name="black", or_family="black")
    coat = [Alternative("coat or jacket", 0.6), Alternative("hoodie", 0.3)]
    assert clauses_for(coat, [NAVY, WHITE], []) == ["Probably a navy blue coat or jacket with white.",
                                                    "It could also be a hoodie."]
    assert sentence(coat, [hedged], [], pattern="striped") == \
        "Probably a striped coat or jacket, navy blue or black. It could also be a hoodie."
    assert sentence(coat, [NAVY], []) == "Probably a navy blue coat or jacket, maybe a hoodie."  # as the README says


def test_probably_means_more_likely_than_not():
    """"Probably a coat" beside "I'm 48 percent sure it is a coat" contradicted itself on a long press."""
    s = sentence([Alternative("coat or jacket", 0.48), Alternative("hoodie", 0.3)], [NAVY], [], detail=True)
    assert s.startswith("I'm not sure what this is, maybe a coat or jacket or a hoodie.") and "48 percent" in s
    assert sentence([Alternative("coat or jacket", 0.5)], [NAVY], []).startswith("Probably")


def test_a_plural_garment_is_these_on_a_long_press():
    s = sentence([Alternative("shoes", 0.97)], [NAVY], [], detail=True)
    assert "I'm 97 percent sure these are shoes." in s and "it is shoes" not in s
