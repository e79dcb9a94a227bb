"""List cursors: where a keyset page goes on, signed with the app's key and bound to one list and its query.

A cursor is base64url(JSON of the last item's sort key) "." base64url(HMAC-SHA256). The MAC also covers a digest
of the list's path and of its normalised filters and sort, so a cursor that was altered, that is sent to another
list, or that comes back with other filters or another sort fails the check: 400 `invalid_cursor`. Written on the
standard library's hmac: the format is this small, and a token library (a JWT, itsdangerous) would add headers and
claims, and read base64 leniently, where a cursor must have exactly one spelling.
"""

import base64
import hashlib
import hmac
import json
import re
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from api.schemas import Page, ResponseT, page_of
from database.pagination import CursorRequest, ListRequest, PageRequest, SortKey
from database.pagination import Page as PageResult
from services.errors import InvalidCursorError

# Part of every MAC: a change of what cursors mean changes it, so an older cursor is refused, not misread.
CURSOR_DOMAIN = b"shop list cursor v1"
# Far above any cursor issued (a sort key holds at most a 200-character name), far below the URL limits.
MAX_CURSOR_LENGTH = 4096
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")

# Sort-key values travel as [tag, text]: exact for every type a sort column has (a Decimal as its digits, a
# timestamp with its microseconds), where JSON numbers would be binary floats.
_TAGS: dict[type, str] = {int: "i", str: "s", Decimal: "d", datetime: "t"}
_LOADERS: dict[str, Any] = {"i": int, "s": str, "d": Decimal, "t": datetime.fromisoformat}


def _text(value: Any) -> str:
    return value.isoformat(timespec="microseconds") if isinstance(value, datetime) else str(value)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not _BASE64URL.fullmatch(text):
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # One spelling per cursor: base64 lets the last character's unused bits vary without changing the bytes.
    if _b64(raw) != text:
        raise ValueError("not canonical base64url")
    return raw


def _canonical(value: Any) -> Any:
    if is_dataclass(value):
        return asdict(value)
    if isinstance(value, Decimal):
        # 10, 10.0 and 10.00 are one bound.
        return format(value.normalize(), "f")
    raise TypeError(f"{type(value).__name__} is not a filter value")


def list_scope(list_path: str, filters: dict[str, Any]) -> bytes:
    """The digest a cursor is bound to: the list and every filter of its query (the sort included)."""
    document = json.dumps(
        {"list": list_path, "filters": filters}, sort_keys=True, separators=(",", ":"), default=_canonical
    )
    return hashlib.sha256(document.encode()).digest()


class CursorCodec:
    def __init__(self, secret: str) -> None:
        # A key of its own, derived from the signing key, so that no cursor's MAC can pass for a token's signature.
        self._key = hmac.new(secret.encode(), CURSOR_DOMAIN, hashlib.sha256).digest()

    def _mac(self, scope: bytes, payload: str) -> bytes:
        return hmac.new(self._key, scope + b"." + payload.encode("ascii"), hashlib.sha256).digest()

    def encode(self, scope: bytes, key: SortKey) -> str:
        document = json.dumps([[_TAGS[type(value)], _text(value)] for value in key], separators=(",", ":"))
        payload = _b64(document.encode())
        return f"{payload}.{_b64(self._mac(scope, payload))}"

    def decode(self, scope: bytes, cursor: str) -> SortKey:
        """The sort key in `cursor`, if this service issued it for `scope`; otherwise InvalidCursorError."""
        try:
            if len(cursor) > MAX_CURSOR_LENGTH:
                raise ValueError("too long")
            payload, mac = cursor.split(".")
            document = _unb64(payload)
            if not hmac.compare_digest(_unb64(mac), self._mac(scope, payload)):
                raise ValueError("wrong MAC")
            return tuple(_LOADERS[tag](text) for tag, text in json.loads(document))
        except (ValueError, KeyError, TypeError):
            raise InvalidCursorError(
                "This cursor was not issued for this list with these filters and this sort; "
                "start again with cursor= (empty)"
            ) from None


@dataclass(frozen=True, slots=True)
class PageQuery:
    """A list request's `page`, `size` and `cursor`, before the route binds them to the list's filters."""

    codec: CursorCodec
    list_path: str
    size: int
    page: int | None
    cursor: str | None

    def bind(self, **filters: Any) -> "Paging":
        """The paging of this list under `filters`, which a cursor must have been issued for (or 400)."""
        scope = list_scope(self.list_path, filters)
        request: ListRequest
        if self.cursor is None:
            request = PageRequest(page=self.page or 1, size=self.size)
        else:
            # An empty cursor starts at the first item.
            after = self.codec.decode(scope, self.cursor) if self.cursor else None
            request = CursorRequest(size=self.size, after=after)
        return Paging(codec=self.codec, scope=scope, request=request)


@dataclass(frozen=True, slots=True)
class Paging:
    codec: CursorCodec
    scope: bytes
    request: ListRequest

    def page_of(self, schema: type[ResponseT], result: PageResult[Any]) -> Page[ResponseT]:
        """The API's page envelope, its `next_cursor` bound like the cursor this request came with."""
        next_cursor = None if result.next_key is None else self.codec.encode(self.scope, result.next_key)
        return page_of(schema, result, next_cursor=next_cursor)
