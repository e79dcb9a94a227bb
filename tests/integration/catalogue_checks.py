"""Assertions shared by the catalogue's integration tests: problem details, validation errors, catalogue state."""

import re
from http import HTTPStatus
from typing import Any

from httpx import AsyncClient, Response

PROBLEM_MEMBERS = {"type", "title", "status", "detail", "code", "request_id"}
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def assert_problem(response: Response, status: int, code: str | None = None) -> dict[str, Any]:
    """`response` is RFC 9457 problem details with all six members, for `status` (and `code`, when given)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body.keys() >= PROBLEM_MEMBERS, body
    assert body["type"] == "about:blank"
    assert body["title"] == HTTPStatus(status).phrase
    assert body["status"] == status
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert SNAKE_CASE.fullmatch(body["code"]), body["code"]
    assert body["request_id"]
    assert body["request_id"] == response.headers["x-request-id"]
    if code is not None:
        assert body["code"] == code, body
    return body


def assert_invalid(response: Response, *loc: str | int) -> None:
    """A 422 whose errors all point into the request, one of them at `loc` (or under it)."""
    body = assert_problem(response, 422)
    assert body["errors"], body
    for error in body["errors"]:
        assert error["loc"][0] in {"body", "query", "path", "header"}, error
        assert isinstance(error["msg"], str)
        assert isinstance(error["type"], str)
    assert any(tuple(error["loc"][: len(loc)]) == loc for error in body["errors"]), (loc, body["errors"])


async def catalogue(client: AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """Everything a client can see of the catalogue (up to 100 of each), to compare before and after a request."""
    categories = await client.get("/api/v1/categories", params={"size": 100}, headers=headers)
    products = await client.get("/api/v1/products", params={"size": 100}, headers=headers)
    assert categories.status_code == products.status_code == 200
    return {"categories": categories.json(), "products": products.json()}
