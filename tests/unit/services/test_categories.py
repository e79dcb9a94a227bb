"""services/categories.py: the contract's rule for deriving a slug from a category name."""

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from services.categories import derive_slug

SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Garden Tools & More", "garden-tools-more"),
        ("Tools", "tools"),
        ("  Leading and trailing  ", "leading-and-trailing"),
        ("--Dashes--Inside--", "dashes-inside"),
        ("a___b...c", "a-b-c"),
        ("Kids' Toys (3+)", "kids-toys-3"),
        ("Model 2024", "model-2024"),
        ("already-a-slug", "already-a-slug"),
        ("UPPER lower MiXeD", "upper-lower-mixed"),
        # Non-ASCII letters are "other characters": dropped like punctuation, not transliterated.
        ("Äpfel & Birnen", "pfel-birnen"),
        ("Café Crème", "caf-cr-me"),
        ("Straße", "stra-e"),
        ("日本 Tea", "tea"),
        ("ＡＢＣ", ""),  # full-width letters are not ASCII either
        ("İstanbul", "stanbul"),  # İ lower-cases to an ASCII i plus a combining dot, but İ itself is not ASCII
        ("\u212a2", "2"),  # the Kelvin sign lower-cases to an ASCII k, but is not ASCII itself
        ("!!!", ""),
        ("", ""),
    ],
)
def test_derive_slug(name: str, slug: str) -> None:
    assert derive_slug(name) == slug


@given(st.text())
def test_derived_slug_is_valid_or_empty_and_idempotent(name: str) -> None:
    slug = derive_slug(name)
    assert slug == "" or SLUG.fullmatch(slug)
    assert derive_slug(slug) == slug


@given(st.text())
@example("\u0130\u212a")  # both lower-case to ASCII letters; rare enough that random text seldom has them
def test_derived_slug_keeps_exactly_the_ascii_letters_and_digits_in_order(name: str) -> None:
    kept = "".join(character.lower() for character in name if character.isascii() and character.isalnum())
    assert derive_slug(name).replace("-", "") == kept
