"""RFC 9457 problem details for every error the service answers."""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from observability.logging import request_id_var
from services.errors import (
    AuthenticationError,
    ConflictError,
    InvalidCursorError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    ServiceUnavailableError,
    ShopError,
    TooManyRequestsError,
    UnknownReferenceError,
)

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
# A backing service that went away is usually back (or its connections replaced) within seconds.
RETRY_AFTER_SECONDS = 1


CODE_BY_STATUS = {
    400: "malformed_json",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


class UnsupportedMediaTypeError(ShopError):
    code = "unsupported_media_type"


STATUS_BY_ERROR: dict[type[ShopError], int] = {
    UnknownReferenceError: 400,
    InvalidCursorError: 400,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    PreconditionFailedError: 412,
    InvalidInputError: 422,
    UnsupportedMediaTypeError: 415,
    ServiceUnavailableError: 503,
    TooManyRequestsError: 429,
}


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
    **extra: Any,
) -> ProblemResponse:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code or CODE_BY_STATUS.get(status, "error"),
        "request_id": request_id or request_id_var.get() or "",
        **extra,
    }
    return ProblemResponse(body, status_code=status, headers=headers)


def status_for(error: ShopError) -> int:
    for error_class in type(error).__mro__:
        if error_class in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[error_class]
    return 500


def _authenticate_header(status: int) -> dict[str, str] | None:
    return {"WWW-Authenticate": "Bearer"} if status == 401 else None


async def _shop_error(_: Request, error: ShopError) -> ProblemResponse:
    status = status_for(error)
    if isinstance(error, InvalidInputError):
        issue = {"loc": ["body", error.field], "msg": error.detail, "type": error.code}
        return problem(422, error.detail, code=error.code, errors=[issue])
    if isinstance(error, ServiceUnavailableError):
        return problem(status, error.detail, code=error.code, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(error, TooManyRequestsError):
        return problem(status, error.detail, code=error.code, headers={"Retry-After": str(error.retry_after)})
    return problem(status, error.detail, code=error.code, headers=_authenticate_header(status))


def _json_safe(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


async def _validation_error(_: Request, error: RequestValidationError) -> ProblemResponse:
    issues = error.errors()
    if any(issue.get("type") == "json_invalid" for issue in issues):
        return problem(400, "The request body is not valid JSON", code="malformed_json")
    errors = [
        {"loc": [_json_safe(part) for part in issue["loc"]], "msg": issue["msg"], "type": issue["type"]}
        for issue in issues
    ]
    return problem(422, "The request failed validation", code="validation_error", errors=errors)


async def _http_error(_: Request, error: StarletteHTTPException) -> ProblemResponse:
    status = error.status_code
    detail = error.detail if isinstance(error.detail, str) else HTTPStatus(status).phrase
    if status == 404 and detail == HTTPStatus.NOT_FOUND.phrase:
        detail = "No such resource"
    headers = dict(error.headers or {})
    headers.update(_authenticate_header(status) or {})
    return problem(status, detail, headers=headers or None)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ShopError, _shop_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
