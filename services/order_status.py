"""The order status machine, defined once as data."""

from models.order import OrderStatus

ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}

# Transitions after which the reserved stock goes back on the shelf.
RESTOCKING_STATUSES = frozenset({OrderStatus.CANCELLED})


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in ALLOWED_TRANSITIONS[current]


def describe_transitions() -> str:
    """The machine in words, for the API documentation."""
    return "; ".join(
        f"{source.value} → {' | '.join(sorted(target.value for target in targets))}"
        for source, targets in ALLOWED_TRANSITIONS.items()
        if targets
    )
