"""The database session or connection of a request: opened by a dependency, released as soon as its route returns.

A `yield` dependency would do it, but FastAPI runs each one's exit inside an anyio cancel scope and two context
managers of its own: about a tenth of a catalogue read's CPU. So the API's route class (api/routing.py) runs every
route through `DatabaseResources.run`, and the dependencies open what they need into it. Either way the resource
goes back before a byte of the response is sent: a client that reads slowly keeps no pooled connection.
"""

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.types import Scope

from database.connection import is_unavailable
from services.errors import DatabaseUnavailableError

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_SCOPE_KEY = "shop.database_resources"


def unavailable(error: Exception) -> DatabaseUnavailableError | None:
    """The 503 a lost database is told as; None for any other failure."""
    if not is_unavailable(error):
        return None
    # The driver's own words (no SQL, no parameters): the 503 alone would not tell operators why.
    logger.warning("database unavailable: %s", getattr(error, "orig", None) or error)
    return DatabaseUnavailableError("The database cannot be reached right now; try again shortly")


class DatabaseResources:
    """What a request's dependencies opened on the database, closed when its route has returned or raised."""

    __slots__ = ("_stack",)

    def __init__(self) -> None:
        # Made by the first `open`: routes that need no database (health, metrics) open nothing.
        self._stack: AsyncExitStack | None = None

    async def open(self, resource: AbstractAsyncContextManager[_T]) -> _T:
        """Enter `resource` (a session, or a connection from the engine) for the rest of the route."""
        if self._stack is None:
            self._stack = AsyncExitStack()
        return await self._stack.enter_async_context(resource)

    async def run(self, call: Callable[[Request], Awaitable[_T]], request: Request) -> _T:
        """`call(request)`, closing afterwards what it opened; a lost database on the way, closing included, is 503."""
        request.scope[_SCOPE_KEY] = self
        try:
            try:
                return await call(request)
            finally:
                if self._stack is not None:
                    await self._stack.aclose()
        except Exception as error:
            lost = unavailable(error) if self._stack is not None else None
            if lost is not None:
                raise lost from error
            raise


def database_resources(scope: Scope) -> DatabaseResources:
    """The resources of the request of `scope`: routes that use the database are built by the API's route class."""
    resources: Any = scope.get(_SCOPE_KEY)
    if resources is None:
        raise RuntimeError("a route that uses the database needs the API's route class (api.routing.api_router)")
    return resources
