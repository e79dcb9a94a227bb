"""Schemathesis against our own /openapi.json: no 500s, and every response matches the schema it is documented by."""

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from main import create_app
from tests.conftest import Backend
from tests.helpers import PASSWORD, unique

# Small and derandomised: a fixed, quick sweep of every operation, not an open-ended fuzzing session.
EXAMPLES_PER_OPERATION = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
ADMIN = "fuzzadmin"


class Shop:
    """The app reached the way Schemathesis reaches it (its own ASGI client and event loop), with a few rows."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.http = asgi.get_client(app)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def login(self, username: str) -> dict[str, str]:
        tokens = self.request("POST", "/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        return {"Authorization": f"Bearer {tokens['access_token']}"}

    def throwaway(self) -> dict[str, str]:
        """The headers of a new account of its own, for a call that may end its sessions or change or erase it."""
        name = unique("fuzzed")
        self.request(
            "POST",
            "/api/v1/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
        )
        return self.login(name)

    def seed(self) -> None:
        """A category, a product, an order and a second account, so that ids in the low range exist."""
        self.admin_headers = self.login(ADMIN)
        category = self.request("POST", "/api/v1/categories", json={"name": "Seeded"}, headers=self.admin_headers)
        product = {"name": "Seeded product", "price": "5.00", "stock": 1000, "category_id": category["id"]}
        product = self.request("POST", "/api/v1/products", json=product, headers=self.admin_headers)
        order = {"items": [{"product_id": product["id"], "quantity": 1}]}
        self.request("POST", "/api/v1/orders", json=order, headers=self.admin_headers)
        account = {"username": "victim", "email": "victim@example.com", "password": PASSWORD}
        self.victim_id = self.request("POST", "/api/v1/auth/register", json=account)["id"]


@pytest.fixture
def shop(sqlite_backend: Backend) -> Iterator[Shop]:
    settings = sqlite_backend.settings(
        admin_username=ADMIN, admin_email=f"{ADMIN}@example.com", admin_password=PASSWORD
    )
    shop = Shop(create_app(settings))
    with shop.http:
        try:
            shop.seed()
            yield shop
        finally:
            # Schemathesis keeps a lifespan it started until the process exits; end ours with the test.
            asgi.shutdown_lifespans()


def fuzz(shop: Shop, operation: Any) -> None:
    path_parameters = None
    method = operation.method.upper()
    if operation.path in ("/api/v1/users/{id}", "/api/v1/users/{id}/sessions") and method in ("PATCH", "DELETE"):
        # Aim role and active-flag changes and sign-outs at a throw-away account, not at the admin making the calls.
        path_parameters = {"id": shop.victim_id}

    @given(case=operation.as_strategy(path_parameters=path_parameters))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        # Logging out revokes the token it is sent with: give each such call a token of its own. Writes to one's
        # own account may end every session of it, rename it or erase it: give them an account of their own.
        if operation.path == "/api/v1/auth/logout":
            headers = shop.login(ADMIN)
        elif operation.path.startswith("/api/v1/users/me") and method != "GET":
            headers = shop.throwaway()
        else:
            headers = shop.admin_headers
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()


# The app runs on Schemathesis' own loop thread, where its mail workers may be sending while Hypothesis draws the next
# case; the standard library's email package (Message-ID, MIME boundary) draws from the random module, a change that
# Hypothesis reports. Its own draws do not use that generator, so the sweep stays the same.
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies:hypothesis.errors.HypothesisDeprecationWarning"
)
def test_every_operation_answers_within_its_schema(shop: Shop):
    schema = schemathesis.openapi.from_asgi("/openapi.json", shop.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 24
    failures: list[str] = []
    for operation in operations:
        try:
            fuzz(shop, operation)
        except Exception as error:
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n\n".join(failures)
    # Every operation was called by a signed-in admin to the end: none of them ended the admin's sessions.
    assert shop.http.get("/api/v1/users/me", headers=shop.admin_headers).status_code == 200
