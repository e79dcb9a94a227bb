"""Pure ASGI middleware (BaseHTTPMiddleware would cost a large share of throughput on every request)."""

import logging
import math
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.client_ip import client_ip
from api.dependencies import API_ROOT
from api.errors import problem
from api.verified_token import VerifiedToken, store_verified_token
from auth.bearer import parse_bearer
from auth.jwt import AccessClaims, InvalidTokenError
from config import IPNetwork, Settings
from infrastructure.rate_limits import RateLimit, RateLimiter
from observability.logging import request_id_var
from observability.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS, HTTP_REQUESTS_IN_FLIGHT, RATE_LIMITED

access_logger = logging.getLogger("shop.access")
logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
UNMATCHED_ROUTE = "unmatched"
# nginx's code for a request the client abandoned: kept apart from the 4xx and 5xx that were actually answered.
CLIENT_CLOSED_REQUEST = 499
# Metric labels take the method from this set only: any token is a valid HTTP method, and one time series per
# made-up method would let a client grow the metrics without bound.
METRIC_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

API_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI and ReDoc run inline bootstrap scripts, load styles, and ReDoc starts web workers from blobs.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc", "/static-offline-docs")
# Set on every response, in place of any the app set; the policy and Cache-Control only where the app set none.
_SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_REPLACED = frozenset({b"x-request-id"} | {name for name, _ in _SECURITY_HEADERS})
_CSP = b"content-security-policy"
_CACHE_CONTROL = b"cache-control"
_NO_STORE = b"no-store"


def _state(scope: Scope) -> dict[str, Any]:
    return scope.setdefault("state", {})


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or UNMATCHED_ROUTE


def _drop_trailing_slash(scope: Scope) -> None:
    """Serve `/api/v1/products/` as `/api/v1/products` instead of redirecting to it.

    The router would answer 307 with an absolute URL built from the Host header (plain http behind a TLS proxy),
    and many clients do not follow a 307 on POST.
    """
    path: str = scope["path"]
    if len(path) > 1 and path.endswith("/"):
        scope["path"] = path.rstrip("/") or "/"
        raw_path = scope.get("raw_path")
        if raw_path:
            scope["raw_path"] = raw_path.rstrip(b"/") or b"/"


def _with_context_headers(
    headers: Sequence[tuple[bytes, bytes]], request_id: str, csp: str, path: str
) -> list[tuple[bytes, bytes]]:
    """The response's raw headers with the request id and the security headers, in one pass over them.

    What MutableHeaders would do with one assignment a header, each of which scans and lower-cases every header.
    """
    names = {name.lower() for name, _ in headers}
    result = (
        [(name, value) for name, value in headers if name.lower() not in _REPLACED]
        if names & _REPLACED
        else list(headers)
    )
    result.append((b"x-request-id", request_id.encode("latin-1")))
    result.extend(_SECURITY_HEADERS)
    if _CSP not in names:
        result.append((_CSP, csp.encode("latin-1")))
    if _CACHE_CONTROL not in names and path.startswith(API_ROOT):
        result.append((_CACHE_CONTROL, _NO_STORE))
    return result


# The labelled series of the request metrics, looked up once each: labels() validates and locks on every call.
_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _count(method: str, handler: str, status: int, elapsed: float) -> None:
    key = (method, handler, status)
    series = _SERIES.get(key)
    if series is None:
        series = _SERIES[key] = (
            HTTP_REQUESTS.labels(method=method, handler=handler, status=str(status)),
            HTTP_REQUEST_DURATION.labels(method=method, handler=handler),
        )
    requests, duration = series
    requests.inc()
    duration.observe(elapsed)


class RequestContextMiddleware:
    """Outermost layer: request id, security headers, one access-log line and the metrics of every request.

    It also turns an unhandled exception into a problem+json 500, so that even that response carries the
    request id and security headers, and never a traceback. It settles who the client is, once, for the rate
    limiter and the log alike (api/client_ip.py).

    A client that leaves before its response is complete (mid-body, typically) is no server error: the request is
    counted and logged as 499, at INFO, and nothing more is sent. Starlette raises ClientDisconnect where the body
    is read by hand (login); where FastAPI parses it, it turns that into a 400 it tries to send, so the disconnect
    is watched for here, on `receive`, rather than judged by the exception.

    HEAD is answered as GET without the body (RFC 9110, 9.3.2): the app is shown GET, so every GET route, docs
    and metrics included, answers HEAD with GET's status and headers, Content-Length too, while the routes, their
    405s and /openapi.json stay as they are (FastAPI would list a HEAD operation for each route that took it).
    The server keeps its own scope, still HEAD, and leaves the body out itself, as Starlette's own HEAD routes
    rely on (uvicorn, httpx's ASGI transport).
    """

    def __init__(self, app: ASGIApp, *, trusted_proxies: Sequence[IPNetwork]) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The ASGI spec makes each request's state a copy of the lifespan state, but not every host does so
        # (asgi-lifespan's test wrapper shares one dict). The rate limiter leaves verified token claims there for
        # the auth dependency: in a shared dict the next request, with a forged token or none, would inherit them.
        scope["state"] = dict(scope.get("state") or {})
        _drop_trailing_slash(scope)
        request_headers = Headers(scope=scope)
        supplied = request_headers.get(REQUEST_ID_HEADER)
        request_id = supplied if supplied and _CLIENT_REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex
        client = client_ip(scope, request_headers, self.trusted_proxies)
        _state(scope).update(request_id=request_id, client_ip=client)
        token = request_id_var.set(request_id)
        path: str = scope["path"]
        method: str = scope["method"]
        app_scope = {**scope, "method": "GET"} if method == "HEAD" else scope
        csp = DOCS_CSP if path.startswith(DOCS_PATHS) else API_CSP
        status = 500
        response_started = response_complete = disconnected = failed = False

        async def watching_receive() -> Message:
            nonlocal disconnected
            message = await receive()
            # After a complete response, a disconnect is only the connection ending.
            disconnected = disconnected or (message["type"] == "http.disconnect" and not response_complete)
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started, response_complete
            if disconnected:
                return
            if message["type"] == "http.response.body":
                response_complete = not message.get("more_body", False)
            elif message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = _with_context_headers(message.get("headers", ()), request_id, csp, path)
            await send(message)

        started = time.perf_counter()
        HTTP_REQUESTS_IN_FLIGHT.inc()
        try:
            await self.app(app_scope, watching_receive, send_with_headers)
        except ClientDisconnect:
            disconnected = True
        except Exception:
            # A fault of ours even when the client has gone meanwhile: counted as the 500 it is.
            failed = True
            logger.exception("unhandled error")
            if response_started:
                raise
            await problem(500, "An unexpected error occurred", request_id=request_id)(scope, receive, send_with_headers)
        finally:
            HTTP_REQUESTS_IN_FLIGHT.dec()
            if disconnected and not failed:
                status = CLIENT_CLOSED_REQUEST
            elapsed = time.perf_counter() - started
            metric_method = method if method in METRIC_METHODS else "other"
            handler = _route_template(app_scope)
            _count(metric_method, handler, status, elapsed)
            if access_logger.isEnabledFor(logging.INFO):
                access_logger.info(
                    "request",
                    extra={
                        "method": method,
                        "path": path,
                        "route": handler,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "user_id": _state(scope).get("user_id"),
                        "client": client,
                    },
                )
            request_id_var.reset(token)


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, except that unlisted origins get no CORS headers at all.

    Starlette answers a refused preflight in plain text with the allowed methods and headers, and adds its
    exposed-headers list to every response that names an origin, listed or not.
    """

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        origin = request_headers.get("Origin")
        if origin is not None and not self.is_allowed_origin(origin=origin):
            await send(message)
            return
        await super().send(message, send, request_headers)

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        return problem(400, bytes(response.body).decode(), code="cors_preflight_refused")


class RequestTooLargeError(HTTPException):
    """A streamed body passed the limit.

    An HTTPException because FastAPI turns any other exception raised while it parses a body into a 400; this one it
    re-raises, and the app's handler answers it with the same 413 problem as `_refuse`.
    """

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, too_large_detail(max_bytes), headers={"Connection": "close"})


def too_large_detail(max_bytes: int) -> str:
    return f"The request body is larger than {max_bytes} bytes"


class BodySizeLimitMiddleware:
    """413 for bodies over the limit: at once by Content-Length, or as soon as a streamed body passes it."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        # isascii: str.isdigit() also accepts digits such as "²" that int() refuses.
        if declared is not None and (not (declared.isascii() and declared.isdigit()) or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        if declared is None and "transfer-encoding" not in headers and scope.get("http_version", "1.1")[0] == "1":
            # An HTTP/1 request without either has no body (RFC 9112, 6.3), as nearly every GET: nothing to count.
            await self.app(scope, receive, send)
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestTooLargeError(self.max_bytes)
            return message

        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except RequestTooLargeError:
            if response_started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            too_large_detail(self.max_bytes),
            code="payload_too_large",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


class RateLimitMiddleware:
    """Counts each API request against its client: the user when the bearer token is valid, else the client IP.

    The auth paths (login, register, refresh, password reset, e-mail verification: main.AUTH_LIMITED_PATHS) count
    against the stricter auth limit, per client IP. A valid token is verified here once and handed to the auth
    dependency (api/verified_token.py), with its revocation status when the limiter checked it in the same Redis
    call.
    """

    def __init__(self, app: ASGIApp, *, settings: Settings, auth_paths: frozenset[str]) -> None:
        self.app = app
        self.auth_paths = auth_paths
        self.default_limit = RateLimit.parse(settings.rate_limit_default)
        self.auth_limit = RateLimit.parse(settings.rate_limit_auth)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(API_ROOT) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        # Built by the lifespan, which runs after the middleware stack is assembled.
        limiter: RateLimiter = scope["app"].state.rate_limiter
        address: str = _state(scope)["client_ip"]
        claims = None
        if path.rstrip("/") in self.auth_paths:
            limit, key, name = self.auth_limit, f"auth:{address}", "auth"
        else:
            claims = _verified_claims(scope)
            key = f"user:{claims.user_id}" if claims else f"ip:{address}"
            limit, name = self.default_limit, "default"

        decision = await limiter.hit(limit, key, jti=claims.jti if claims else None)
        if claims is not None:
            revoked = decision.revoked if decision is not None else None
            store_verified_token(scope, VerifiedToken(claims=claims, revoked=revoked))
        if decision is None:
            await self.app(scope, receive, send)
            return
        reset = max(0, math.ceil(decision.reset_after))
        rate_headers = {
            "RateLimit-Limit": str(decision.limit),
            "RateLimit-Remaining": str(decision.remaining),
            "RateLimit-Reset": str(reset),
        }
        raw_rate_headers = [(name_.lower().encode(), value.encode()) for name_, value in rate_headers.items()]
        if not decision.allowed:
            RATE_LIMITED.labels(limit=name).inc()
            retry_after = str(max(1, reset))
            response = problem(
                429,
                f"Too many requests; retry in {retry_after} seconds",
                code="rate_limited",
                headers={**rate_headers, "Retry-After": retry_after},
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # No route sets these: appended as they are, without MutableHeaders' scan for an earlier one.
                message["headers"] = [*message.get("headers", ()), *raw_rate_headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _verified_claims(scope: Scope) -> AccessClaims | None:
    token = parse_bearer(Headers(scope=scope).get("authorization"))
    if token is None:
        return None
    try:
        # The auth service's cache of verified tokens: the auth dependency would verify the same token again.
        return scope["app"].state.auth.tokens.verify(token)
    except InvalidTokenError:
        return None
