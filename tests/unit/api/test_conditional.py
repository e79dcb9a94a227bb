"""api/conditional.py: entity-tag lists read as RFC 9110 writes them, and compared the way each header asks."""

import pytest
from fastapi.exceptions import RequestValidationError

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
