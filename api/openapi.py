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

RETRY_AFTER_HEADER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}


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
            entry["headers"] = {**RETRY_AFTER_HEADER, **RATE_LIMIT_HEADERS}
        if status == 503:
            entry["description"] = "Service Unavailable: the database (or a server it needs) cannot be reached now"
            entry["headers"] = RETRY_AFTER_HEADER
        documented[status] = entry
    return documented


# Every operation behind a token reads the database (the caller's account, at least): 503 when it is unreachable.
PROTECTED = problems(401, 403, 422, 429, 503)
LOCATION_HEADER = {"Location": {"description": "URL of the new resource", "schema": {"type": "string"}}}

ETAG_HEADER = {
    "ETag": {
        "description": "Strong entity tag of this representation, for If-None-Match and If-Match",
        "schema": {"type": "string", "examples": ['"7"']},
        "required": True,
    }
}
# A GET of one resource: its ETag, and 304 when If-None-Match names it.
CONDITIONAL_READ: dict[int | str, dict[str, Any]] = {
    200: {"headers": ETAG_HEADER},
    304: {"description": "Not Modified: If-None-Match names the current ETag; no body", "headers": ETAG_HEADER},
}
# A PUT, PATCH or POST that answers with the changed resource: its new ETag, and 412 when If-Match fails.
CONDITIONAL_WRITE: dict[int | str, dict[str, Any]] = {200: {"headers": ETAG_HEADER}, **problems(412)}


def operation_id(route: APIRoute) -> str:
    """`listProducts` for the route function `list_products`: a name that generated clients can use as it is.

    FastAPI's default adds the path and the method (`list_products_api_v1_products_get`).
    """
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)
