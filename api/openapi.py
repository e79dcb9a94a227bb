"""Helpers that keep the OpenAPI document honest about error responses, and give operations clean ids."""

from http import HTTPStatus
from typing import Any

from fastapi.routing import APIRoute

from api.errors import PROBLEM_MEDIA_TYPE
from api.schemas import Problem

RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": {"description": "Requests allowed in the window", "schema": {"type": "integer"}},
    "RateLimit-Remaining": {"description": "Requests left in the window", "schema": {"type": "integer"}},
    "RateLimit-Reset": {"description": "Seconds until the window frees a slot", "schema": {"type": "integer"}},
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for these statuses, each a problem+json body."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if status == 401:
            entry["headers"] = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}
        if status == 429:
            entry["headers"] = {
                "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}},
                **RATE_LIMIT_HEADERS,
            }
        documented[status] = entry
    return documented


PROTECTED = problems(401, 403, 422, 429)
LOCATION_HEADER = {"Location": {"description": "URL of the new resource", "schema": {"type": "string"}}}


def operation_id(route: APIRoute) -> str:
    """`listProducts` for the route function `list_products`: a name that generated clients can use as it is.

    FastAPI's default adds the path and the method (`list_products_api_v1_products_get`).
    """
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)
