"""api/conditional.py: entity-tag lists read as RFC 9110 writes them, and compared the way each header asks."""

import pytest
from fastapi.exceptions import RequestValidationError
from hypothesis import given
from hypothesis import strategies as st

from api.conditional import EntityTags, etag, parse_entity_tags


@pytest.mark.parametrize(
    ("lines", "strong", "weak"),
    [
        (['"7"'], {"7"}, set()),
        (['W/"7"'], set(), {"7"}),
        (['"1", W/"2" ,"3"'], {"1", "3"}, {"2"}),
        (['"1"', '"2"'], {"1", "2"}, set()),
        # Commas and W/ may sit inside a tag; empty list elements are allowed.
        (['"a,b", "W/x"'], {"a,b", "W/x"}, set()),
        ([' , "5",, '], {"5"}, set()),
        (['""'], {""}, set()),
        ([""], set(), set()),
        (['"caf\xe9"'], {"caf\xe9"}, set()),
    ],
)
def test_lists_of_tags(lines, strong, weak) -> None:
    assert parse_entity_tags(lines, header="If-Match") == EntityTags(
        any=False, strong=frozenset(strong), weak=frozenset(weak)
    )


@pytest.mark.parametrize("lines", [["*"], [" * "]])
def test_star(lines) -> None:
    assert parse_entity_tags(lines, header="If-None-Match").any


@pytest.mark.parametrize(
    "value",
    ["7", '"7', '7"', 'w/"7"', 'W/ "7"', '"7" "8"', '"a b"', '"a"b"', '*, "7"', '"tab\t"', '"\x7f"', "**"],
)
def test_malformed_lists_are_a_validation_error_on_that_header(value) -> None:
    with pytest.raises(RequestValidationError) as raised:
        parse_entity_tags([value], header="If-Match")
    assert [error["loc"] for error in raised.value.errors()] == [("header", "If-Match")]


def test_star_beside_a_second_line_is_malformed() -> None:
    with pytest.raises(RequestValidationError):
        parse_entity_tags(["*", '"7"'], header="If-Match")


def test_weak_comparison_ignores_the_weak_marker() -> None:
    current = etag(7)
    assert current == '"7"'
    assert parse_entity_tags(['W/"7"'], header="If-None-Match").match_weakly(current)
    assert parse_entity_tags(['"6", "7"'], header="If-None-Match").match_weakly(current)
    assert not parse_entity_tags(['"07"', '"6"'], header="If-None-Match").match_weakly(current)


def test_a_long_malformed_header_is_refused() -> None:
    # A pattern that backtracks over the blanks would hang here rather than answer.
    value = '"1",' + " " * 20_000 + "x"
    with pytest.raises(RequestValidationError):
        parse_entity_tags([value], header="If-Match")


# Properties

# An entity tag's opaque part: any visible character but a double quote, latin-1 included (RFC 9110, 8.8.3).
OPAQUE = st.text(
    st.sampled_from("!#/,W*7") | st.characters(codec="latin-1", min_codepoint=0x21, exclude_characters='"\x7f')
)
BLANKS = st.sampled_from(["", " ", "\t", " \t "])
# A list element: a strong or weak tag, or None for an empty element.
ELEMENTS = st.lists(st.none() | st.tuples(st.booleans(), OPAQUE), max_size=6)


def written(element: tuple[bool, str] | None) -> str:
    if element is None:
        return ""
    weak, opaque = element
    return f'{"W/" if weak else ""}"{opaque}"'


@given(ELEMENTS, st.data())
def test_a_header_listing_any_tags_reads_back_as_them(elements, data):
    # Blanks around each element, and the list split into lines anywhere: the lines of a header are one list.
    lines: list[list[str]] = [[]]
    for element in elements:
        if lines[-1] and data.draw(st.booleans()):
            lines.append([])
        lines[-1].append(data.draw(BLANKS) + written(element) + data.draw(BLANKS))
    tags = [element for element in elements if element is not None]
    assert parse_entity_tags([",".join(line) for line in lines], header="If-Match") == EntityTags(
        any=False,
        strong=frozenset(opaque for weak, opaque in tags if not weak),
        weak=frozenset(opaque for weak, opaque in tags if weak),
    )


def read(lines: list[str]) -> tuple[EntityTags | None, list[tuple[str, ...]]]:
    """The tags of an If-None-Match header, or where its refusal points."""
    try:
        return parse_entity_tags(lines, header="If-None-Match"), []
    except RequestValidationError as refused:
        return None, [error["loc"] for error in refused.errors()]


@given(st.lists(st.text(st.sampled_from('"W/, \t*7') | st.characters(codec="latin-1")), min_size=1, max_size=3))
def test_any_header_text_is_read_or_refused_on_that_header(lines):
    tags, refused_at = read(lines)
    if tags is None:
        assert refused_at == [("header", "If-None-Match")]
    else:
        # Nothing is read that the header does not say.
        text = ",".join(lines)
        assert tags.any == (text.strip(" \t") == "*")
        assert all(f'"{opaque}"' in text for opaque in tags.strong | tags.weak)
        assert all(f'W/"{opaque}"' in text for opaque in tags.weak)
