"""The order status machine: exactly the contract's transitions, and the docs describe that same table."""

import itertools

import pytest

from config import Settings
from main import create_app
from models import OrderStatus
from services.order_status import (
    ALLOWED_TRANSITIONS,
    EXPIRY,
    OWNER_CANCELLABLE,
    RESTOCKING_STATUSES,
    can_transition,
    describe_transitions,
)

# Written out from API.md, not derived from the code under test.
CONTRACT_TRANSITIONS = {
    ("pending", "paid"),
    ("pending", "cancelled"),
    ("paid", "shipped"),
    ("paid", "cancelled"),
    ("shipped", "delivered"),
}
STATUS_PAIRS = list(itertools.product(OrderStatus, repeat=2))


@pytest.mark.parametrize(("current", "target"), STATUS_PAIRS, ids=[f"{a.value}->{b.value}" for a, b in STATUS_PAIRS])
def test_transition_is_allowed_exactly_when_the_contract_allows_it(current, target):
    assert can_transition(current, target) is ((current.value, target.value) in CONTRACT_TRANSITIONS)


def test_every_status_has_an_entry():
    # A status missing from the table would make can_transition raise KeyError (a 500) instead of refusing.
    assert set(ALLOWED_TRANSITIONS) == set(OrderStatus)


def test_only_cancelling_puts_stock_back():
    assert set(RESTOCKING_STATUSES) == {OrderStatus.CANCELLED}


def test_expiry_is_the_machine_s_cancel_of_a_pending_order():
    source, target = EXPIRY
    assert (source, target) == (OrderStatus.PENDING, OrderStatus.CANCELLED)
    assert can_transition(source, target)
    assert target in RESTOCKING_STATUSES


def test_owners_cancel_only_what_the_machine_lets_go_to_cancelled():
    assert set(OWNER_CANCELLABLE) == {OrderStatus.PENDING}
    assert all(can_transition(status, OrderStatus.CANCELLED) for status in OWNER_CANCELLABLE)


def _parse_description(text: str) -> set[tuple[str, str]]:
    """Read "a → b | c; d → e" back into pairs."""
    pairs = set()
    for clause in text.split(";"):
        source, _, targets = clause.partition("→")
        pairs |= {(source.strip(), target.strip()) for target in targets.split("|")}
    return pairs


def test_description_states_the_contract_table():
    assert _parse_description(describe_transitions()) == CONTRACT_TRANSITIONS


def test_patch_status_documentation_uses_the_description():
    app = create_app(Settings(environment="test", database_url="sqlite+aiosqlite:///:memory:"))
    operation = app.openapi()["paths"]["/api/v1/orders/{id}/status"]["patch"]
    assert describe_transitions() in operation["description"]
    assert "invalid_status_transition" in operation["description"]
