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

# What happens to a pending order not paid by its deadline: the move an admin's cancel makes.
EXPIRY = (OrderStatus.PENDING, OrderStatus.CANCELLED)

# The statuses from which an order's owner may cancel it; an admin may wherever the machine allows.
OWNER_CANCELLABLE = frozenset({OrderStatus.PENDING})


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in ALLOWED_TRANSITIONS[current]


def describe_transitions() -> str:
    """The machine in words, for the API documentation."""
    return "; ".join(
        f"{source.value} → {' | '.join(sorted(target.value for target in targets))}"
        for source, targets in ALLOWED_TRANSITIONS.items()
        if targets
    )
