"""services/orders.py without a database: the fingerprint an idempotency key is stored with."""

import hashlib

from services.orders import OrderLine, fingerprint


def test_fingerprint_is_stable_and_tells_requests_apart():
    lines = [OrderLine(product_id=1, quantity=2), OrderLine(product_id=30, quantity=4)]
    # Stored with a key for 24 hours and compared by other processes: it must not depend on the process
    # (no hash()), so its canonical form is pinned.
    assert fingerprint(lines) == hashlib.sha256(b"[[1,2],[30,4]]").hexdigest()
    assert fingerprint([OrderLine(product_id=1, quantity=2), OrderLine(product_id=30, quantity=4)]) == fingerprint(
        lines
    )
    different = [
        [OrderLine(product_id=1, quantity=3), OrderLine(product_id=30, quantity=4)],
        [OrderLine(product_id=1, quantity=2), OrderLine(product_id=31, quantity=4)],
        [OrderLine(product_id=1, quantity=2)],
        [OrderLine(product_id=12, quantity=30), OrderLine(product_id=4, quantity=0)],
    ]
    assert len({fingerprint(lines), *(fingerprint(other) for other in different)}) == 1 + len(different)
