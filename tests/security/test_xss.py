"""Stored XSS: product descriptions are sanitised; names are kept literally but only ever served as JSON."""

import re

import pytest
from sqlalchemy import text

from api.middleware import API_CSP
from tests.conftest import sqlite_only
from tests.helpers import create_product

# (payload, text that must survive sanitising)
DESCRIPTIONS = [
    ("<script>alert(1)</script>Sturdy", "Sturdy"),
    ("<img src=x onerror=alert(1)>", ""),
    ('<a href="javascript:alert(1)">manual</a>', "manual"),
    ('<a href="JaVaScRiPt:alert(1)">manual</a>', "manual"),
    ('<a href="jav&#x09;ascript:alert(1)">manual</a>', "manual"),
    ("<svg onload=alert(1)>", ""),
    ('<iframe src="javascript:alert(1)"></iframe>', ""),
    ('<div style="background:url(javascript:alert(1))">steel</div>', "steel"),
    ("<scr<script>ipt>alert(1)</script>", ""),
    ('<b onclick="alert(1)">bold</b>', "<b>bold</b>"),
    ('"><script>alert(1)</script>', ""),
    ("<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>", ""),
    ('<form action="javascript:alert(1)"><button>go</button></form>', "go"),
    ("<p>Plain <em>formatting</em> stays</p>", "<p>Plain <em>formatting</em> stays</p>"),
]
EXECUTABLE = re.compile(r"<script|<iframe|<svg|<object|<form|<style|javascript:|\son\w+\s*=|style\s*=", re.IGNORECASE)


# Sanitising happens before storage and reads are plain: one backend is enough.
pytestmark = sqlite_only


async def stored_description(client, product_id: int) -> str:
    async with client.app.state.database.sessionmaker() as session:
        query = text("SELECT description FROM products WHERE id = :id")
        return (await session.execute(query, {"id": product_id})).scalar_one()


@pytest.mark.parametrize(("payload", "kept"), DESCRIPTIONS, ids=[payload[:40] for payload, _ in DESCRIPTIONS])
async def test_descriptions_are_sanitised_on_create_and_replace(client, admin_headers, user_headers, payload, kept):
    created = await create_product(client, admin_headers, description=payload)
    replaced = await client.put(
        f"/api/v1/products/{created['id']}",
        json={"name": "Replaced", "price": "1.00", "stock": 1, "description": f"Again: {payload}"},
        headers=admin_headers,
    )
    assert replaced.status_code == 200
    first = created["description"]
    served = (await client.get(f"/api/v1/products/{created['id']}", headers=user_headers)).json()["description"]
    for description in (first, served):
        assert not EXECUTABLE.search(description), description
        assert kept in description, description
    assert served.startswith("Again: ")
    # What the database holds is the sanitised text, not the payload.
    assert await stored_description(client, created["id"]) == served


SCRIPT = "<script>alert(document.cookie)</script>"
IMAGE = "<img src=x onerror=alert(1)>"


@pytest.mark.parametrize("read", ["product", "category", "search"])
async def test_names_are_stored_literally_and_served_only_as_json(client, admin_headers, user_headers, read):
    category = await client.post("/api/v1/categories", json={"name": IMAGE, "slug": "images"}, headers=admin_headers)
    assert category.status_code == 201
    product = await create_product(client, admin_headers, name=SCRIPT, category_id=category.json()["id"])
    path = {
        "product": f"/api/v1/products/{product['id']}",
        "category": f"/api/v1/categories/{category.json()['id']}",
        "search": f"/api/v1/products?q={SCRIPT}",
    }[read]

    response = await client.get(path, headers=user_headers)

    assert response.status_code == 200
    body = response.json()
    served = body["items"][0]["name"] if read == "search" else body["name"]
    assert served == (IMAGE if read == "category" else SCRIPT)
    # A browser never renders it as HTML: JSON, no sniffing, and a CSP that runs nothing.
    assert response.headers["content-type"] == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == API_CSP
