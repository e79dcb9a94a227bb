"""The one docs asset served differently from fastapi_offline's copy: ReDoc's bundle, without its outside logo."""

from pathlib import Path

import fastapi_offline
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

STATIC_URL = "/static-offline-docs"  # fastapi_offline's default
REDOC_BUNDLE = "redoc.standalone.js"
# ReDoc's side menu ends with "API docs by Redocly" and a logo from cdn.redoc.ly. An empty data: URL is no image,
# so the bundle's own onError handler drops the logo, as it does when cdn.redoc.ly cannot be reached; but the
# browser asks no outside host for it. (A change to the bundle itself, as ReDoc has no option for this.)
_OUTSIDE_LOGO = b'"https://cdn.redoc.ly/redoc/logo-mini.svg"'
_NO_LOGO = b'"data:,"'
_REDOC_JS = (
    (Path(fastapi_offline.__file__).parent / "static" / REDOC_BUNDLE).read_bytes().replace(_OUTSIDE_LOGO, _NO_LOGO)
)


async def _redoc_bundle(_request: Request) -> Response:
    return Response(_REDOC_JS, media_type="text/javascript; charset=utf-8")


# For the app's routes ahead of fastapi_offline's static mount, which would serve the file as it is.
redoc_bundle_route = Route(f"{STATIC_URL}/{REDOC_BUNDLE}", _redoc_bundle, methods=["GET"], include_in_schema=False)
