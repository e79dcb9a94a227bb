"""Every router of the API: request JSON read with exact decimals (never binary floats), clean operation ids."""

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from api.openapi import operation_id


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except ArithmeticError:
        # An exponent beyond what Decimal holds (1e10000000000000000000): as unreadable as a 5000-digit integer.
        raise ValueError(f"number out of range: {text[:20]}") from None


def loads_exact(body: bytes) -> Any:
    """Parse JSON with every non-integral number (and NaN, Infinity) as a Decimal.

    A float would turn `1.000…0001` into 1.0 before any validator sees it; as a Decimal it keeps all its
    digits, so "at most two decimals" is judged on what was sent, and integer fields refuse `1.0` and `1e3`.
    """
    return json.loads(body, parse_float=_decimal, parse_constant=Decimal)


class ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_exact(await self.body())
        return self._json


class ExactJSONRoute(APIRoute):
    """FastAPI reads a body through `Request.json()`; its documented hook is a route class with its own Request."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            # Nothing to parse: routes without a body keep FastAPI's handler and its request as they are.
            return handler

        async def exact_json_handler(request: Request) -> Response:
            return await handler(ExactJSONRequest(request.scope, request.receive))

        return exact_json_handler


def api_router(**options: Any) -> APIRouter:
    """A router of this API: request JSON read exactly, and operation ids named after the route functions."""
    return APIRouter(route_class=ExactJSONRoute, generate_unique_id_function=operation_id, **options)
