"""Locust load test (`make load`): customers sign up, browse, filter, order, cancel and read their orders, reading
products and orders conditionally; an admin restocks with If-Match.

Run it against a server started with the same ADMIN_USERNAME and ADMIN_PASSWORD in its environment (the server
creates that admin at start-up; this file reads the two variables to sign in as it) and with rate limiting off
(RATE_LIMIT_ENABLED=false), since every simulated user comes from one address:

    ADMIN_USERNAME=admin ADMIN_EMAIL=admin@example.com ADMIN_PASSWORD=change-me-please RATE_LIMIT_ENABLED=false make run
    ADMIN_USERNAME=admin ADMIN_PASSWORD=change-me-please make load     # 50 users, 10/s, 60 s, headless

It seeds what it needs: at the start the admin creates a category and a catalogue, some of it with little stock.
Each customer signs up and logs in once (bcrypt runs on each: at BCRYPT_ROUNDS=12 sign-ups take a while on a small
machine), then browses and filters the catalogue, views products and its orders (sending the ETag it last saw as
If-None-Match: a 304 is a success), places orders, cancels some of them and reads its own orders. The admin user
puts stock back: it reads a product and writes the new stock with that read's ETag as If-Match. These are expected
business refusals, not failures, counted on their own lines ("BUSINESS <code>") and in the summary at the end: an
order refused with 409 `insufficient_stock`; a cancellation refused with 409 `invalid_status_transition` (the
order expired or was cancelled first); a restock refused with 412 `precondition_failed` (an order took stock
between the read and the write; nothing was overwritten). Anything else unexpected is a failure, and locust then
exits non-zero.
"""

import itertools
import os
import random
import threading
import time
import uuid
from typing import Any

import requests
from locust import HttpUser, between, events, task
from locust.env import Environment

API = "/api/v1"
PASSWORD = "load-test-password"
PRODUCTS = 40
SCARCE = 10  # products created with a handful of units, so that some orders are refused for lack of stock
PRICE_FILTERS = [("1.00", "50.00"), ("25.00", "200.00"), ("100.00", "1000.00")]
SORTS = ["id", "-id", "name", "price", "-price", "created_at", "-created_at"]

catalogue: dict[str, Any] = {"category_id": None, "product_ids": []}
refusals: dict[str, int] = {}
_refusals_lock = threading.Lock()
_run = uuid.uuid4().hex[:6]  # a fresh name space per run, so that runs against one database do not collide
_sequence = itertools.count(1)


def admin_credentials() -> dict[str, str]:
    username, password = os.environ.get("ADMIN_USERNAME"), os.environ.get("ADMIN_PASSWORD")
    if not (username and password):
        raise SystemExit("set ADMIN_USERNAME and ADMIN_PASSWORD to the admin the server was started with")
    return {"username": username, "password": password}


def count_refusal(environment: Environment, code: str, started: float) -> None:
    """Report an expected business refusal as its own, successful request type, and tally it."""
    with _refusals_lock:
        refusals[code] = refusals.get(code, 0) + 1
    environment.events.request.fire(
        request_type="BUSINESS",
        name=code,
        response_time=(time.perf_counter() - started) * 1000,
        response_length=0,
        exception=None,
        context={},
    )


@events.test_start.add_listener
def seed_catalogue(environment: Environment, **_: Any) -> None:
    """As the admin: one category and a catalogue of products, a few of them nearly sold out."""
    host = environment.host or ""
    session = requests.Session()
    response = session.post(f"{host}{API}/auth/login", json=admin_credentials(), timeout=60)
    response.raise_for_status()
    session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    response = session.post(f"{host}{API}/categories", json={"name": f"Load test {_run}"}, timeout=30)
    response.raise_for_status()
    catalogue["category_id"] = response.json()["id"]
    for number in range(PRODUCTS):
        body = {
            "name": f"Load {_run} item {number}",
            "description": "Seeded by tests/load_test.py",
            "price": f"{random.uniform(1, 500):.2f}",
            "stock": 3 if number < SCARCE else 100_000,
            "category_id": catalogue["category_id"],
        }
        response = session.post(f"{host}{API}/products", json=body, timeout=30)
        response.raise_for_status()
        catalogue["product_ids"].append(response.json()["id"])


@events.test_stop.add_listener
def report_refusals(**_: Any) -> None:
    total = sum(refusals.values())
    details = ", ".join(f"{code}: {count}" for code, count in sorted(refusals.items())) or "none"
    print(f"expected business refusals (not failures): {total} ({details})")


class Customer(HttpUser):
    """Signs up and logs in once, then shops."""

    weight = 49
    wait_time = between(0.5, 2)

    def on_start(self) -> None:
        self.etags: dict[str, str] = {}  # URL -> the ETag last received for it
        self.pending: list[int] = []  # orders this customer placed and has not tried to cancel
        username = f"load_{_run}_{next(_sequence)}"
        body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
        self.client.post(f"{API}/auth/register", json=body, name="/auth/register")
        response = self.client.post(
            f"{API}/auth/login", json={"username": username, "password": PASSWORD}, name="/auth/login"
        )
        self.client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    @task(4)
    def browse(self) -> None:
        params = {"page": random.randint(1, 3), "size": 20, "sort": random.choice(SORTS)}
        self.client.get(f"{API}/products", params=params, name="/products")

    @task(4)
    def filter_catalogue(self) -> None:
        low, high = random.choice(PRICE_FILTERS)
        params: dict[str, Any] = {"category_id": catalogue["category_id"], "min_price": low, "max_price": high}
        if random.random() < 0.5:
            params["in_stock"] = "true"
        if random.random() < 0.3:
            params["q"] = "item 1"
        self.client.get(f"{API}/products", params=params, name="/products?filters")

    def conditional_get(self, url: str, name: str) -> None:
        """GET with the ETag last seen for `url` as If-None-Match; 304 and 200 both succeed."""
        headers = {"If-None-Match": self.etags[url]} if url in self.etags else {}
        with self.client.get(url, headers=headers, name=name, catch_response=True) as response:
            if response.status_code in (200, 304):
                self.etags[url] = response.headers.get("ETag", self.etags.get(url, ""))
                response.success()
            else:
                response.failure(f"unexpected {response.status_code}: {response.text[:200]}")

    @task(3)
    def view_product(self) -> None:
        product_id = random.choice(catalogue["product_ids"])
        self.conditional_get(f"{API}/products/{product_id}", "/products/{id}")

    @task(1)
    def view_categories(self) -> None:
        self.client.get(f"{API}/categories", name="/categories")

    @task(2)
    def place_order(self) -> None:
        chosen = random.sample(catalogue["product_ids"], k=random.randint(1, 3))
        body = {"items": [{"product_id": pid, "quantity": random.randint(1, 2)} for pid in chosen]}
        started = time.perf_counter()
        with self.client.post(f"{API}/orders", json=body, name="/orders [POST]", catch_response=True) as response:
            if response.status_code == 201:
                self.pending.append(response.json()["id"])
                response.success()
            elif response.status_code == 409 and response.json().get("code") == "insufficient_stock":
                response.success()
                count_refusal(self.environment, "insufficient_stock", started)
            else:
                response.failure(f"unexpected {response.status_code}: {response.text[:200]}")

    @task(1)
    def cancel_order(self) -> None:
        if not self.pending:
            return
        order_id = self.pending.pop(random.randrange(len(self.pending)))
        started = time.perf_counter()
        url = f"{API}/orders/{order_id}/cancel"
        with self.client.post(url, name="/orders/{id}/cancel", catch_response=True) as response:
            if response.status_code == 200:
                response.success()
            elif response.status_code == 409 and response.json().get("code") == "invalid_status_transition":
                response.success()
                count_refusal(self.environment, "invalid_status_transition", started)
            else:
                response.failure(f"unexpected {response.status_code}: {response.text[:200]}")

    @task(2)
    def read_own_orders(self) -> None:
        self.client.get(f"{API}/orders", params={"size": 10}, name="/orders")

    @task(1)
    def view_own_order(self) -> None:
        if self.pending:
            self.conditional_get(f"{API}/orders/{random.choice(self.pending)}", "/orders/{id}")


class StockKeeper(HttpUser):
    """The admin, putting the scarce products back on the shelf now and then."""

    fixed_count = 1
    wait_time = between(2, 4)

    def on_start(self) -> None:
        response = self.client.post(f"{API}/auth/login", json=admin_credentials(), name="/auth/login")
        self.client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    @task
    def restock(self) -> None:
        product_id = random.choice(catalogue["product_ids"][:SCARCE])
        response = self.client.get(f"{API}/products/{product_id}", name="/products/{id}")
        product = response.json()
        body = {name: product[name] for name in ("name", "description", "price", "category_id")}
        body["stock"] = product["stock"] + random.randint(1, 5)
        started = time.perf_counter()
        # Conditional on the read: a stock level orders have changed since is refused, not written over.
        headers = {"If-Match": response.headers["ETag"]}
        url = f"{API}/products/{product_id}"
        with self.client.put(
            url, json=body, headers=headers, name="/products/{id} [PUT restock]", catch_response=True
        ) as written:
            if written.status_code == 200:
                written.success()
            elif written.status_code == 412:
                written.success()
                count_refusal(self.environment, "precondition_failed", started)
            else:
                written.failure(f"unexpected {written.status_code}: {written.text[:200]}")
