"""Conditional requests (RFC 9110, section 13): strong ETags from row versions, If-None-Match and If-Match.

A resource's ETag is its version in quotes (`"7"`). Every change of the row bumps the version, on whichever
process makes it, so a tag read from any process is current on all of them until the next change.
"""

import re
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.responses import Response

from api.responses import ModelResponse
from services.preconditions import ExpectedVersions

ETAG = "ETag"
IF_MATCH = "If-Match"
IF_NONE_MATCH = "If-None-Match"

# Written by hand: Starlette has no entity-tag parser, and werkzeug's is not a dependency of the service.
# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = any visible character but DQUOTE (obs-text arrives as
# latin-1). A list separates its elements by commas and optional whitespace, and may hold empty elements
# (RFC 9110, 5.6.1). Each part of the pattern has one way to match, so a long bad header costs linear time.
_TAG = r'(W/)?"([\x21\x23-\x7e\x80-\xff]*)"'
_ELEMENT = rf"[ \t]*(?:{_TAG}[ \t]*)?"
_LIST = re.compile(rf"{_ELEMENT}(?:,{_ELEMENT})*")
_TAGS = re.compile(_TAG)
# The opaque part of a tag this service issues: a version, written as str(int) writes it.
_VERSION = re.compile(r"[1-9][0-9]{0,9}")


def etag(version: int) -> str:
    return f'"{version}"'


@dataclass(frozen=True, slots=True)
class EntityTags:
    """An If-Match or If-None-Match header: `*`, or the opaque parts of its tags."""

    any: bool
    strong: frozenset[str] = frozenset()
    weak: frozenset[str] = frozenset()

    def match_weakly(self, tag: str) -> bool:
        """If-None-Match's comparison: `W/"7"` matches `"7"`."""
        return self.any or tag.strip('"') in self.strong | self.weak


def parse_entity_tags(values: list[str], *, header: str) -> EntityTags:
    """Read every line of one conditional header as one list; malformed syntax is a 422 on that header."""
    joined = ",".join(values)
    if joined.strip(" \t") == "*":
        return EntityTags(any=True)
    if _LIST.fullmatch(joined) is None:
        raise RequestValidationError(
            [
                {
                    "type": "entity_tag_list",
                    "loc": ("header", header),
                    "msg": 'Send "*" or a comma-separated list of entity tags such as "7" or W/"7"',
                }
            ]
        )
    strong, weak = set(), set()
    for marker, opaque in _TAGS.findall(joined):
        (weak if marker else strong).add(opaque)
    return EntityTags(any=False, strong=frozenset(strong), weak=frozenset(weak))


def _header(request: Request, name: str) -> EntityTags | None:
    values = request.headers.getlist(name)
    return parse_entity_tags(values, header=name) if values else None


def if_none_match(request: Request) -> EntityTags | None:
    """The request's If-None-Match, every line of it; a malformed one is a 422.

    Read by the routes themselves, first thing, rather than through a dependency with a Header parameter: on the
    hottest reads each dependency and parameter FastAPI resolves costs measurable time. They declare the header in
    their OpenAPI operation with IF_NONE_MATCH_PARAMETERS instead, as FastAPI would write the Header parameter.
    """
    return _header(request, IF_NONE_MATCH)


IF_NONE_MATCH_DESCRIPTION = 'ETags the client holds (`"7"`, a list, or `*`): 304 without a body when one is current'
IF_NONE_MATCH_PARAMETERS: dict[str, Any] = {
    "parameters": [
        {
            "name": IF_NONE_MATCH,
            "in": "header",
            "required": False,
            "schema": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "description": IF_NONE_MATCH_DESCRIPTION,
                "title": IF_NONE_MATCH,
            },
            "description": IF_NONE_MATCH_DESCRIPTION,
        }
    ]
}


# The Header parameter below is for the OpenAPI document: FastAPI would hand over only the first of several
# lines, so the dependency reads every line from the request itself.


async def if_match_header(
    request: Request,
    _declared: Annotated[
        str | None,
        Header(
            alias=IF_MATCH,
            description='Carry out the write only if the resource\'s current ETag is one of these (`"7"`, a list, or '
            "`*`); otherwise 412 `precondition_failed` and nothing changes. Weak tags (`W/`) never match",
        ),
    ] = None,
) -> ExpectedVersions:
    """The versions the write accepts; None when any will do (no If-Match, or `*`)."""
    tags = _header(request, IF_MATCH)
    if tags is None or tags.any:
        return None
    # A tag of another shape was not issued here: it matches no version, and stays out of any SQL.
    return frozenset(int(opaque) for opaque in tags.strong if _VERSION.fullmatch(opaque))


IfMatch = Annotated[ExpectedVersions, Depends(if_match_header)]


class Versioned(Protocol):
    version: int


def tagged(schema: type[BaseModel], resource: Versioned, *, if_none_match: EntityTags | None = None) -> Response:
    """The resource as `schema` with its ETag; 304 with the ETag and no body when If-None-Match names it."""
    tag = etag(resource.version)
    if if_none_match is not None and if_none_match.match_weakly(tag):
        return Response(status_code=304, headers={ETAG: tag})
    return ModelResponse(schema.model_validate(resource), headers={ETAG: tag})
